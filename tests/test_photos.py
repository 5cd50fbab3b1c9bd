"""comp predict: photos from anywhere, prepared as the workspace was and decided by the run's
own rule, give what comp submit gives; bad files are reported one line each."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

import comp
from comp.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def trained(workspace: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    ck = tmp_path_factory.mktemp("predict")
    result = runner.invoke(app, ["train", "-w", str(workspace), "--model", "b1", "--epochs",
                                 "1", "--checkpoints", str(ck), "--name", "p", "--folds", "1",
                                 "--batch-size", "32"])
    assert result.exit_code == 0, result.output
    return ck


def test_predict_gives_what_submit_gives(workspace: Path, demo_dir: Path, trained: Path,
                                         tmp_path: Path) -> None:
    result = runner.invoke(app, ["submit", "-w", str(workspace), "--checkpoints", str(trained),
                                 "--run", "p", "--leaks", "never", "--submissions",
                                 str(tmp_path / "subs")])
    assert result.exit_code == 0, result.output
    submitted = pd.read_csv(next((tmp_path / "subs").glob("*.csv")), dtype=str)
    table = comp.predict("p", demo_dir / "val", workspace=workspace, checkpoints=trained)
    table["id"] = [Path(f).stem for f in table["file"]]
    merged = submitted.merge(table, on="id")
    assert len(merged) == len(submitted) == len(table)
    assert (merged["label"] == merged["class"]).all()
    np.testing.assert_allclose(table["p(0)"] + table["p(1)"], 1.0, rtol=1e-6)


def test_any_size_and_mode_and_bad_files_one_line_each(workspace: Path, demo_dir: Path,
                                                       trained: Path, tmp_path: Path) -> None:
    """A photo 5x larger as JPEG, the same photo in grayscale: predicted; a broken file, a
    text file and a missing path: one line each, the rest still predicted."""
    source = sorted((demo_dir / "val").iterdir())[0]
    with Image.open(source) as im:
        im.convert("RGB").resize((160, 160)).save(tmp_path / "big.jpg")
        im.convert("L").save(tmp_path / "gray.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n junk")
    (tmp_path / "notes.txt").write_text("x")
    out = tmp_path / "preds.csv"
    result = runner.invoke(app, ["predict", "p", str(tmp_path), str(tmp_path / "notes.txt"),
                                 str(tmp_path / "missing.jpg"), "-w", str(workspace),
                                 "--checkpoints", str(trained), "--out", str(out)])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    skipped = [x for x in lines if x.startswith("skipped: ")]
    assert len(skipped) == 3
    assert any("broken.png: cannot decode the image" in x for x in skipped)
    assert any("notes.txt: not an image file" in x for x in skipped)
    assert any("missing.jpg: not found" in x for x in skipped)
    table = pd.read_csv(out)
    assert [Path(f).name for f in table["file"]] == ["big.jpg", "gray.png"]
    assert set(table["class"].astype(str)) <= {"0", "1"}


def test_nothing_to_predict_is_one_line(workspace: Path, trained: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["predict", "p", str(tmp_path / "none.png"), "-w",
                                 str(workspace), "--checkpoints", str(trained)])
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1].startswith(
        "error: no image to predict (")


def _store_rule(workspace: Path, trained: Path):  # type: ignore[no-untyped-def]
    """The rule saved for run p, and its probabilities and classes on the val store."""
    from comp.runs import RunDir
    from comp.submit.pipeline import predict_rule
    from comp.submit.rule import last_rule
    from comp.workspace import Workspace

    ws = Workspace(workspace)
    saved = last_rule(RunDir(trained / "p"), trained, fingerprint=ws.load_meta().fingerprint)
    assert saved is not None
    decision, folder = saved
    ids = ws.load_index().query("source == 'val'").sort_values("row")["id"].astype(str)
    prob, labels = predict_rule(decision, folder, trained, ws.load_store("val"))
    return decision, pd.DataFrame({"id": ids.to_numpy(), "p1": prob[:, 1], "c": labels})


def _check_equal(workspace: Path, demo_dir: Path, trained: Path, subs: Path) -> str:
    submitted = pd.read_csv(next(subs.glob("*.csv")), dtype=str)
    table = comp.predict("p", demo_dir / "val", workspace=workspace, checkpoints=trained)
    table["id"] = [Path(f).stem for f in table["file"]]
    merged = submitted.merge(table, on="id")
    assert len(merged) == len(submitted) == len(table)
    assert (merged["label"] == merged["class"].astype(str)).all()
    decision, by_store = _store_rule(workspace, trained)
    both = by_store.merge(table, on="id")
    np.testing.assert_allclose(both["p(1)"], both["p1"], rtol=1e-5, atol=1e-6)
    # the probability printed is that of the class the rule chose, by the deciding model
    chosen = np.where(table["class"].astype(str) == "1", table["p(1)"], table["p(0)"])
    np.testing.assert_allclose(table["probability"], chosen)
    return decision.source


def test_predict_equals_submit_after_no_ensemble_and_seed_7(workspace: Path, demo_dir: Path,
                                                            trained: Path,
                                                            tmp_path: Path) -> None:
    result = runner.invoke(app, ["submit", "-w", str(workspace), "--checkpoints", str(trained),
                                 "--run", "p", "--leaks", "never", "--no-ensemble", "--seed",
                                 "7", "--submissions", str(tmp_path / "subs")])
    assert result.exit_code == 0, result.output
    assert _check_equal(workspace, demo_dir, trained, tmp_path / "subs") == "cnn"


def test_predict_equals_submit_with_a_kept_stacker(workspace: Path, demo_dir: Path,
                                                   trained: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from comp.config import Leaks, SubmitConfig
    from comp.submit import candidates, submit
    from comp.submit.select import Source

    real = candidates.build
    monkeypatch.setattr(candidates, "build", lambda *a, **k: [
        c for c in real(*a, **k) if c.source == Source.STACKER])  # the stacker must win
    submit(SubmitConfig(workspace=workspace, runs=("p",), checkpoints=trained,
                        submissions=tmp_path / "subs", leaks=Leaks.NEVER, seed=3))
    assert _check_equal(workspace, demo_dir, trained, tmp_path / "subs") == "stacker"


def test_a_damaged_rule_file_is_fitted_again_by_the_command_that_names_it(
        workspace: Path, trained: Path, tmp_path: Path) -> None:
    """inspect names `comp submit --run p` when the rule's out-of-fold file is damaged;
    that command then rebuilds it."""
    from comp.runs import RunDir
    from comp.submit.rule import OOF_FILE, last_rule, load_oof
    from comp.workspace import Workspace

    args = ["submit", "-w", str(workspace), "--checkpoints", str(trained), "--run", "p",
            "--leaks", "never", "--submissions", str(tmp_path / "subs")]
    assert runner.invoke(app, args).exit_code == 0
    fingerprint = Workspace(workspace).load_meta().fingerprint
    saved = last_rule(RunDir(trained / "p"), trained, fingerprint=fingerprint)
    assert saved is not None
    (saved[1] / OOF_FILE).write_bytes(b"cut")
    assert load_oof(saved[1]) is None
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert load_oof(saved[1]) is not None


def test_the_table_header_says_how_the_class_follows_from_the_probabilities() -> None:
    from types import SimpleNamespace

    from comp.photos import table_header

    def rule(name: str, threshold: float | None = None, classes=("0", "1")) -> str:
        return table_header(SimpleNamespace(rule=name, threshold=threshold, classes=classes))

    assert rule("threshold", 0.4760346) == ("file, class (1 when p(1) >= 0.4760), p(class): "
                                            "its probability")
    assert rule("0.5") == "file, class (1 when p(1) >= 0.5), p(class): its probability"
    assert "(the most probable)" in rule("arg-max", classes=("a", "b", "c", "d"))
    assert "so not always the most probable" in rule("offsets", classes=("a", "b", "c", "d"))
