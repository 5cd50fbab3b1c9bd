"""Every option of every command acts or is refused: a walk over the options the command line
declares, each typed once and followed to the call it makes (or to its one-line refusal)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from comp.cli import app
from comp.config import TrainConfig
from comp.native_log import VERBOSE_ENV

runner = CliRunner()


class Called(Exception):
    """What the command handed to the library: raised by the stand-in, read by the test."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__("called")
        self.args_, self.kwargs = args, kwargs

    @property
    def config(self) -> Any:
        return self.args_[0] if self.args_ else None


def _stand_in(*args: Any, **kwargs: Any) -> Any:
    raise Called(*args, **kwargs)


# command: (the function it calls, the arguments every call needs)
ENTRY = {
    "prepare": ("comp.prepare.prepare", ["{tmp}/c"]),
    "train": ("comp.train.train", []),
    "tune": ("comp.tune.tune", []),
    "evaluate": ("comp.submit.evaluate", ["r1"]),
    "submit": ("comp.submit.submit", []),
    "predict": ("comp.photos.predict", ["r1", "{tmp}/x.png"]),
    "audit": ("comp.audit.audit", []),
    "inspect": ("comp.inspect.inspect", []),
    "runs": ("comp.experiments.table", []),
    "demo": ("comp.demo.pipeline.run_demo", []),
    "demo-data": ("comp.demo.generate.make_demo", ["{tmp}/d"]),
}

# command -> option -> (what is typed, what the call must then hold)
P = Path
ACTS: dict[str, dict[str, tuple[list[str], Any]]] = {
    "prepare": {
        "challenge": ([], lambda c: c.challenge.name == "c"),
        "workspace": (["-w", "{tmp}/w"], lambda c: c.workspace.name == "w"),
        "train": (["--train", "{tmp}/t"], lambda c: c.train.name == "t"),
        "labels": (["--labels", "{tmp}/l.csv"], lambda c: c.labels.name == "l.csv"),
        "val": (["--val", "{tmp}/v"], lambda c: c.val.name == "v"),
        "test": (["--test", "{tmp}/t2"], lambda c: c.test.name == "t2"),
        "id_column": (["--id-column", "uid"], lambda c: c.id_column == "uid"),
        "label_column": (["--label-column", "g"], lambda c: c.label_column == "g"),
        "classes": (["--classes", "a,b"], lambda c: c.classes == ("a", "b")),
        "size": (["--size", "32x30"], lambda c: c.size == (32, 30)),
        "gray": (["--gray"], lambda c: c.gray is True),
        "fit": (["--fit", "stretch"], lambda c: c.fit == "stretch"),
        "faces": (["--faces"], lambda c: c.fit == "face"),
        "no_face": (["--no-face", "skip"], lambda c: c.no_face == "skip"),
        "max_distance": (["--max-distance", "6"], lambda c: c.max_distance == 6),
        "pixel_threshold": (["--pixel-threshold", "3"], lambda c: c.pixel_threshold == 3),
        "conflicts": (["--conflicts", "majority"], lambda c: c.conflicts == "majority"),
        "duplicates": (["--duplicates", "keep-all"], lambda c: c.duplicates == "keep-all"),
        "split": (["--split", "0.6,0.2,0.2"], lambda c: c.split == (0.6, 0.2, 0.2)),
        "folds": (["--folds", "3"], lambda c: c.folds == 3),
        "seed": (["--seed", "7"], lambda c: c.seed == 7),
        "groups": (["--groups", "m.csv:p"], lambda c: c.groups == "m.csv:p"),
        "skip_bad": (["--skip-bad"], lambda c: c.skip_bad is True),
        "exclude": (["--exclude", "{tmp}/e.csv"], lambda c: c.exclude.name == "e.csv"),
        "relabel": (["--relabel", "{tmp}/r.csv"], lambda c: c.relabel.name == "r.csv"),
        "workers": (["--workers", "3"], lambda c: c.workers == 3),
        "on_size_mismatch": (["--on-size-mismatch", "resize"],
                             lambda c: c.on_size_mismatch == "resize"),
    },
    "train": {
        "workspace": (["-w", "{tmp}/w"], lambda c: c.workspace.name == "w"),
        "model": (["--model", "b3"], lambda c: c.model == "b3"),
        "epochs": (["--epochs", "3"], lambda c: c.epochs == 3),
        "batch_size": (["--batch-size", "16"], lambda c: c.batch_size == 16),
        "lr": (["--lr", "0.01"], lambda c: c.learning_rate == 0.01),
        "augment": (["--no-augment"], lambda c: c.augment is False),
        "plateau_factor": (["--plateau-factor", "0.5"], lambda c: c.plateau_factor == 0.5),
        "plateau_patience": (["--plateau-patience", "3"], lambda c: c.plateau_patience == 3),
        "weights": (["--weights", "none"], lambda c: c.weights == "none"),
        "tpu": (["--tpu"], lambda c: c.tpu is True),
        "tpu_name": (["--tpu-name", "v"], lambda c: c.tpu_name == "v"),
        "seed": (["--seed", "7"], lambda c: c.seed == 7),
        "checkpoints": (["--checkpoints", "{tmp}/ck"], lambda c: c.checkpoints.name == "ck"),
        "name": (["--name", "mine"], lambda c: c.run_name == "mine"),
        "resume": (["--resume", "r1"], lambda c: c.resume == "r1"),
        "max_images": (["--max-images", "9"], lambda c: c.max_images == 9),
        "folds": (["--folds", "1"], lambda c: c.folds == 1),
        "schedule": (["--schedule", "plateau"], lambda c: c.schedule == "plateau"),
        "label_smoothing": (["--label-smoothing", "0.2"], lambda c: c.label_smoothing == 0.2),
        "params": (["--params", "{tmp}/p.json"], lambda c: c.mixup == 0.2),
        "l1": (["--l1", "0.01"], lambda c: c.l1 == 0.01),
        "l2": (["--l2", "0.01"], lambda c: c.l2 == 0.01),
        "init": (["--init", "he"], lambda c: c.init == "he"),
        "balance": (["--balance", "weights"], lambda c: c.balance == "weights"),
        "dropout": (["--dropout", "0.1"], lambda c: c.dropout == 0.1),
        "warmup_epochs": (["--warmup-epochs", "3"], lambda c: c.warmup_epochs == 3),
        "time_limit": (["--time-limit", "45m"], lambda c: c.time_limit == 2700),
        "preset": (["--preset", "best"], lambda c: (c.run_name, c.model, c.epochs)
                   == ("best-res", "res", 40)),
        "width": (["--width", "2"], lambda c: c.width == 2),
        "augment_strength": (["--augment-strength", "2"], lambda c: c.augment_strength == 2),
        "input_scale": (["--input-scale", "0.5"], lambda c: c.input_scale == 0.5),
        "mixup": (["--mixup", "0.4"], lambda c: c.mixup == 0.4),
    },
    "tune": {
        "workspace": (["-w", "{tmp}/w"], lambda c: c.workspace.name == "w"),
        "model": (["--model", "b1"], lambda c: c.model == "b1"),
        "trials": (["--trials", "3"], lambda c: c.trials == 3),
        "timeout": (["--timeout", "60"], lambda c: c.timeout == 60),
        "epochs": (["--epochs", "2"], lambda c: c.epochs == 2),
        "max_images": (["--max-images", "9"], lambda c: c.max_images == 9),
        "study": (["--study", "s"], lambda c: c.study == "s"),
        "startup": (["--startup", "2"], lambda c: c.startup == 2),
        "seed": (["--seed", "7"], lambda c: c.seed == 7),
    },
    "evaluate": {
        "runs": ([], lambda call: call.args_[2] == ["r1"]),
        "workspace": (["-w", "{tmp}/w"], lambda call: call.args_[0].name == "w"),
        "checkpoints": (["--checkpoints", "{tmp}/ck"], lambda call: call.args_[1].name == "ck"),
        "folds": (["--folds", "3"], lambda call: call.kwargs["folds"] == 3),
        "seed": (["--seed", "7"], lambda call: call.kwargs["seed"] == 7),
    },
    "submit": {
        "workspace": (["-w", "{tmp}/w"], lambda c: c.workspace.name == "w"),
        "run": (["--run", "a", "--run", "b"], lambda c: c.runs == ("a", "b")),
        "target": (["--target", "test"], lambda c: c.target == "test"),
        "test": (["--test", "{tmp}/t2"], lambda c: c.test.name == "t2"),
        "checkpoints": (["--checkpoints", "{tmp}/ck"], lambda c: c.checkpoints.name == "ck"),
        "submissions": (["--submissions", "{tmp}/s"], lambda c: c.submissions.name == "s"),
        "tta": (["--tta", "on"], lambda c: c.tta == "on"),
        "ensemble": (["--no-ensemble"], lambda c: c.ensemble is False),
        "leaks": (["--leaks", "never"], lambda c: c.leaks == "never"),
        "folds": (["--folds", "3"], lambda c: c.folds == 3),
        "seed": (["--seed", "7"], lambda c: c.seed == 7),
        "sample": (["--sample", "{tmp}/s.csv"], lambda c: c.sample_submission.name == "s.csv"),
        "id_column": (["--id-column", "uid"], lambda c: c.id_column == "uid"),
        "label_column": (["--label-column", "g"], lambda c: c.label_column == "g"),
        "on_size_mismatch": (["--on-size-mismatch", "resize"],
                             lambda c: c.on_size_mismatch == "resize"),
        "preset": (["--preset", "best"], lambda c: c.preset == "best"),
    },
    "predict": {
        "run": ([], lambda c: c.run == "r1"),
        "images": ([], lambda c: c.images[0].name == "x.png"),
        "workspace": (["-w", "{tmp}/w"], lambda c: c.workspace.name == "w"),
        "checkpoints": (["--checkpoints", "{tmp}/ck"], lambda c: c.checkpoints.name == "ck"),
        "out": (["--out", "{tmp}/o.csv"], lambda c: c.out.name == "o.csv"),
    },
    "audit": {
        "run": (["r1"], lambda c: c.run == "r1"),
        "workspace": (["-w", "{tmp}/w"], lambda c: c.workspace.name == "w"),
        "checkpoints": (["--checkpoints", "{tmp}/ck"], lambda c: c.checkpoints.name == "ck"),
        "rank_by": (["--rank-by", "normalized_margin"],
                    lambda c: c.rank_by == "normalized_margin"),
    },
    "inspect": {
        "runs": (["r1", "r2"], lambda c: c.runs == ("r1", "r2")),
        "workspace": (["-w", "{tmp}/w"], lambda c: c.workspace.name == "w"),
        "checkpoints": (["--checkpoints", "{tmp}/ck"], lambda c: c.checkpoints.name == "ck"),
        "top": (["--top", "7"], lambda c: c.top == 7),
        "folds": (["--folds", "3"], lambda c: c.folds == 3),
        "seed": (["--seed", "7"], lambda c: c.seed == 7),
    },
    "runs": {
        "workspace": (["-w", "{tmp}/w"], lambda call: call.args_[0].name == "w"),
        "checkpoints": (["--checkpoints", "{tmp}/ck"], lambda call: call.args_[1].name == "ck"),
        "submissions": (["--submissions", "{tmp}/s"], lambda call: call.args_[2].name == "s"),
        "sort": (["--sort", "oof"], lambda call: call.kwargs["sort"] == "oof"),
    },
    "demo": {
        "out": (["--out", "{tmp}/d"], lambda call: call.args_[0].name == "d"),
        "train": (["--train", "300"], lambda call: call.kwargs["n_train"] == 300),
        "epochs": (["--epochs", "2"], lambda call: call.kwargs["epochs"] == 2),
        "seed": (["--seed", "3"], lambda call: call.kwargs["seed"] == 3),
    },
    "demo-data": {
        "out": ([], lambda call: call.args_[0].name == "d"),
        "train": (["--train", "9000"], lambda call: call.args_[1].train == 9000),
        "val": (["--val", "20"], lambda call: call.args_[1].val == 20),
        "test": (["--test", "30"], lambda call: call.args_[1].test == 30),
        "size": (["--size", "32"], lambda call: call.args_[1].size == 32),
        "classes": (["--classes", "4"], lambda call: call.args_[1].classes == 4),
        "seed": (["--seed", "3"], lambda call: call.args_[1].seed == 3),
    },
}
# options that act on what is printed, each with the test that shows it
PRINTED = {"verbose": "test_verbose_lets_tensorflow_speak",
           "profile": "test_prepare_prints_a_short_summary_or_json",
           "json": "test_prepare_prints_a_short_summary_or_json",
           "lb": "tests/test_experiments.py"}


def test_every_option_of_every_command_is_walked() -> None:
    group = get_command(app)
    assert set(group.commands) == set(ENTRY)  # type: ignore[attr-defined]
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        declared = {p.name for p in command.params}
        assert declared - set(PRINTED) == set(ACTS[name]), name


CASES = [(command, option) for command, table in ACTS.items() for option in table]


@pytest.mark.parametrize(("command", "option"), CASES)
def test_each_option_reaches_the_call(command: str, option: str, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    target, needed = ENTRY[command]
    module, _, function = target.rpartition(".")
    monkeypatch.setattr(__import__(module, fromlist=[function]), function, _stand_in)
    (tmp_path / "p.json").write_text('{"mixup": 0.2}')
    typed, holds = ACTS[command][option]
    args = [a.format(tmp=tmp_path) for a in [command, *needed, *typed]]
    result = runner.invoke(app, args)
    assert isinstance(result.exception, Called), result.output
    assert holds(result.exception if command in ("evaluate", "runs", "demo", "demo-data")
                 else result.exception.config), (command, option)


def test_every_printed_option_has_its_test() -> None:
    here = Path(__file__).parent
    text = "".join(p.read_text() for p in here.glob("test_*.py"))
    for name in PRINTED.values():
        assert (here.parent / name).exists() if name.endswith(".py") else f"def {name}(" in text


def test_verbose_lets_tensorflow_speak(monkeypatch: pytest.MonkeyPatch) -> None:
    import comp.train

    monkeypatch.setenv(VERBOSE_ENV, "0")  # recorded, so the command's setting is undone after
    monkeypatch.delenv(VERBOSE_ENV)
    monkeypatch.setattr(comp.train, "train", _stand_in)
    runner.invoke(app, ["train"])
    assert VERBOSE_ENV not in os.environ
    runner.invoke(app, ["train", "--verbose"])
    assert os.environ.get(VERBOSE_ENV) == "1"


# -- options that would not act are refused, one line each ----------------------------------------

def _train_config(args: list[str], monkeypatch: pytest.MonkeyPatch) -> TrainConfig:
    import comp.train.loop as loop

    seen: list[TrainConfig] = []

    def check_only(cfg: TrainConfig, hold: Any, watch: Any = ()) -> Any:
        seen.append(cfg)
        loop.check_given(cfg, loop.Recipe.of(cfg))
        raise Called(cfg)

    monkeypatch.setattr(loop, "_train", check_only)
    result = runner.invoke(app, ["train", *args])
    if not isinstance(result.exception, Called):
        raise AssertionError(result.output.strip())
    return seen[0]


@pytest.mark.parametrize(("args", "words"), [
    (["--plateau-factor", "0.5"], "--plateau-factor applies to the plateau schedule; this run "
                                  "follows cosine (res's default)"),
    (["--model", "res", "--plateau-patience", "3"], "--plateau-patience applies to the plateau"),
    (["--model", "b1", "--weights", "none"], "--weights applies to the models with a pretrained "
                                             "base (tl1, tl2, tl3, mobilenetv2, efficientnetv2b0, "
                                             "convnexttiny); b1 has none"),
    (["--model", "b1", "--augment-strength", "2"], "--augment-strength scales the augmentation, "
                                                   "which is off for this run"),
    (["--no-augment", "--augment-strength", "2"], "--augment-strength scales the augmentation"),
    (["--resume", "r1", "--model", "b3"], "--resume r1 continues the run with its own options, "
                                          "so --model would not be used"),
    (["--resume", "r1", "--lr", "0.1"], "so --lr would not be used"),
    (["--resume", "r1", "--folds", "1"], "so --folds would not be used"),
    (["--model", "res", "--warmup-epochs", "1"], "--warmup-epochs freezes an ImageNet backbone "
                                                 "(mobilenetv2, efficientnetv2b0, convnexttiny) "
                                                 "for its first epochs; res has none"),
    (["--model", "mobilenetv2", "--weights", "none", "--warmup-epochs", "1"],
     "with --weights none the base is random"),
    (["--model", "mobilenetv2", "--epochs", "3", "--warmup-epochs", "3"],
     "--warmup-epochs 3 leaves no epoch to fine-tune the base in (--epochs 3)"),
    (["--model", "facenet", "--augment"], "--augment does not apply to facenet: it reads frozen "
                                          "facenet features"),
])
def test_an_option_that_would_not_act_is_refused(args: list[str], words: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(AssertionError) as refused:
        _train_config(args, monkeypatch)
    assert str(refused.value).startswith("error: ") and words in str(refused.value)


@pytest.mark.parametrize("args", [
    ["--model", "b1", "--plateau-factor", "0.5"],  # b1 follows the plateau schedule
    ["--schedule", "plateau", "--plateau-factor", "0.5"],
    ["--model", "tl1", "--weights", "none"],
    ["--model", "b3", "--augment-strength", "2"],
    ["--model", "convnexttiny", "--epochs", "3", "--warmup-epochs", "2"],
    ["--resume", "r1", "--epochs", "9", "-w", "elsewhere", "--checkpoints", "ck"],
])
def test_an_option_that_acts_is_taken(args: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = _train_config(args, monkeypatch)
    typed = {a[2:].replace("-", "_") for a in args if a.startswith("--")}
    assert cfg.given >= typed and "workspace" in cfg.given | {"workspace"}


def test_params_and_a_typed_option_setting_one_thing_are_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import comp.train

    monkeypatch.setattr(comp.train, "train", _stand_in)
    (tmp_path / "p.json").write_text('{"learning_rate": 0.01, "mixup": 0.2}')
    result = runner.invoke(app, ["train", "--params", str(tmp_path / "p.json"), "--lr", "0.1"])
    assert result.exit_code == 1
    assert "p.json sets learning_rate, and --lr on the command line sets it too" in result.output
    result = runner.invoke(app, ["train", "--params", str(tmp_path / "p.json"), "--resume", "r"])
    assert result.exit_code == 1 and "--resume r continues the run with its own options, so " \
        "the file's would not be used: drop --params" in result.output
    result = runner.invoke(app, ["train", "--params", str(tmp_path / "p.json"), "--l2", "0.1"])
    assert isinstance(result.exception, Called)
    assert result.exception.config.l2 == 0.1 and result.exception.config.mixup == 0.2


def test_prepare_prints_a_short_summary_or_json(tmp_path: Path) -> None:
    import json

    from tests.test_hostile import make_challenge

    make_challenge(tmp_path / "c")
    base = ["prepare", str(tmp_path / "c"), "-w", str(tmp_path / "ws"), "--workers", "1",
            "--split", "0.5,0.25,0.25"]
    result = runner.invoke(app, base)
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) <= 8 and lines[-1].startswith("report: ")
    assert lines[0].startswith("read 24 training images (24x24 RGB") and "classes: 0, 1" in lines[0]
    assert any(line.startswith("kept 24: train 12 (0: 6, 1: 6)") for line in lines)
    result = runner.invoke(app, [*base, "--profile"])
    assert "stages:" in result.output and "decode train" in result.output
    result = runner.invoke(app, [*base, "--json"])
    data = json.loads(result.output)
    assert data["kept"] == 24 and data["classes"] == ["0", "1"] and data["report"].endswith(".md")
