"""Options are checked once, where a config is built: choices, ranges, one line each."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from comp.cli import app
from comp.config import (
    Conflicts,
    Fit,
    Model,
    PrepareConfig,
    SubmitConfig,
    Target,
    TrainConfig,
    as_record,
    parse_size,
)
from comp.errors import CompError

runner = CliRunner()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"fit": "foo"}, "--fit must be one of crop, stretch, face. Received: 'foo'"),
    ({"conflicts": "keep"}, "--conflicts must be one of drop, majority"),
    ({"duplicates": "none"}, "--duplicates must be one of keep-one, keep-all"),
    ({"on_size_mismatch": "pad"}, "--on-size-mismatch must be one of fail, resize"),
    ({"max_distance": -1}, "--max-distance must be at least 0"),
    ({"max_distance": 40}, "--max-distance must be at most 16"),
    ({"pixel_threshold": -1.0}, "--pixel-threshold must be a number from 0 to 255"),
    ({"pixel_threshold": float("nan")}, "--pixel-threshold must be a number from 0 to 255"),
    ({"workers": 0}, "--workers must be at least 1"),
    ({"split": (0.9, 0.2, 0.1)}, "--split must be three fractions >= 0 that add up to 1"),
    ({"split": (0.0, 0.5, 0.5)}, "with a training share above 0"),
])
def test_prepare_options_are_refused_with_the_option_named(kwargs: dict, message: str) -> None:
    with pytest.raises(CompError) as err:
        PrepareConfig(**kwargs)
    assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"model": "b4"}, "--model must be one of logreg, b1, b2, b3, tl1, tl2, tl3"),
    ({"epochs": 0}, "--epochs must be at least 1"),
    ({"batch_size": 0}, "--batch-size must be at least 1"),
    ({"learning_rate": float("nan")}, "--lr must be a positive number"),
    ({"learning_rate": -1e-3}, "--lr must be a positive number"),
    ({"plateau_factor": 1.5}, "--plateau-factor must be between 0 and 1"),
    ({"dropout": 1.0}, "--dropout must be from 0 to below 1"),
    ({"width": 0.0}, "--width must be from 0.125 to 8"),
    ({"width": float("inf")}, "--width must be from 0.125 to 8"),
    ({"input_scale": 9.0}, "--input-scale must be above 0 and at most 8"),
    ({"augment_strength": -1.0}, "--augment-strength must be from 0 to 4"),
    ({"input_scale": 0.0}, "--input-scale must be above 0 and at most 8"),
])
def test_train_options_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(CompError, match=message.replace("(", r"\(")):
        TrainConfig(**kwargs)


def test_choices_accept_their_spellings() -> None:
    cfg = PrepareConfig(fit="STRETCH", conflicts="majority")  # type: ignore[arg-type]
    assert cfg.fit is Fit.STRETCH and cfg.conflicts is Conflicts.MAJORITY
    assert TrainConfig(model="B3").model is Model.B3  # type: ignore[arg-type]
    assert SubmitConfig(target="test").target is Target.TEST  # type: ignore[arg-type]
    with pytest.raises(CompError, match="--folds must be at least 2"):
        SubmitConfig(folds=1)
    record = as_record(PrepareConfig(challenge=Path("c"), split=(0.5, 0.25, 0.25)))
    assert record["fit"] == "crop" and record["challenge"] == "c"
    assert record["split"] == [0.5, 0.25, 0.25]


@pytest.mark.parametrize(("text", "want"), [("56x56", (56, 56)), ("50", (50, 50)),
                                            ("64X32", (64, 32)), (None, None)])
def test_parse_size(text: str | None, want: tuple[int, int] | None) -> None:
    assert parse_size(text) == want


@pytest.mark.parametrize("text", ["56x", "axb", "4x4", "1x2x3"])
def test_parse_size_refuses(text: str) -> None:
    with pytest.raises(CompError, match="--size must look like 56x56"):
        parse_size(text)


def _params(command: str) -> dict:
    import typer

    return {p.name: p for p in typer.main.get_command(app).commands[command].params}


def test_cli_defaults_and_choices_come_from_the_config() -> None:
    """The CLI's defaults are the config's (one source), and its choices are the enums'."""
    import dataclasses

    for command, cfg, renamed in (
            ("prepare", PrepareConfig, {}),
            ("train", TrainConfig, {"lr": "learning_rate", "name": "run_name"}),
            ("submit", SubmitConfig, {"run": "runs", "sample": "sample_submission"})):
        params = _params(command)
        for field in dataclasses.fields(cfg):
            name = next((k for k, v in renamed.items() if v == field.name), field.name)
            if name not in params or field.name in ("split", "classes", "size", "runs"):
                continue
            want = field.default
            got = params[name].default
            assert str(got) == str(want), (command, name, got, want)
    assert _params("prepare")["split"].default == "0.595,0.105,0.3"


def _refusal(*args: str) -> str:
    """The usage error of a command line, with the error box's frame and wrapping removed."""
    result = runner.invoke(app, list(args))
    assert result.exit_code == 2
    return " ".join(result.output.replace("│", " ").split())


@pytest.mark.parametrize(("args", "choices"), [
    (["prepare", "x", "--fit", "foo"], Fit),
    (["prepare", "x", "--conflicts", "foo"], Conflicts),
    (["train", "--model", "foo"], Model),
    (["submit", "--target", "foo"], Target),
])
def test_cli_choices_are_the_enums(args: list[str], choices: type) -> None:
    listed = ", ".join(f"'{m.value}'" for m in choices)
    assert f"'foo' is not one of {listed}" in _refusal(*args)


def test_cli_refuses_out_of_range_numbers(tmp_path: Path) -> None:
    assert "--max-distance" in _refusal("prepare", str(tmp_path), "--max-distance", "-1")
    assert "--workers" in _refusal("prepare", str(tmp_path), "--workers", "0")
    assert "--epochs" in _refusal("train", "--epochs", "0")
    assert not (tmp_path / "ws").exists()
