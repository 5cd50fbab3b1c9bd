"""comp tune: Optuna's study resumes after a kill, pruning stops a clearly worse trial, and
comp train --params uses the best parameters."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from comp.cli import app
from comp.errors import CompError
from comp.runs import RunDir

runner = CliRunner()
TUNE = ["tune", "--model", "b1", "--epochs", "2", "--max-images", "128", "--startup", "1"]


def _trials(ws: Path) -> list[tuple[int, str, float | None]]:
    import optuna

    study = optuna.load_study(study_name="b1", storage=f"sqlite:///{ws / 'tune' / 'b1.db'}")
    return [(t.number, t.state.name, t.value) for t in study.trials]


def test_a_killed_search_resumes_and_skips_finished_trials(workspace: Path,
                                                           tmp_path: Path) -> None:
    import shutil

    ws = tmp_path / "ws"
    shutil.copytree(workspace, ws, symlinks=True)
    env = {**{k: v for k, v in os.environ.items() if k != "COMP_FAULT"},
           "COMP_FAULT": "train:epoch-staged@3"}  # trial 1, first epoch: SIGKILL
    out = subprocess.run([sys.executable, "-m", "comp.cli", *TUNE, "-w", str(ws), "--trials",
                          "2"], capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == -9, out.stderr[-2000:]
    before = _trials(ws)
    assert [s for _, s, _ in before] == ["COMPLETE", "RUNNING"]
    result = runner.invoke(app, [*TUNE, "-w", str(ws), "--trials", "2"])
    assert result.exit_code == 0, result.output
    after = _trials(ws)
    assert after[0] == before[0]  # the finished trial is kept, not run again
    assert [s for _, s, _ in after] == ["COMPLETE", "FAIL", "COMPLETE"]
    best = json.loads((ws / "tune" / "b1-best.json").read_text())
    assert best["value"] == max(v for _, s, v in after if s == "COMPLETE")
    assert (ws / "tune" / "b1-history.png").stat().st_size > 1000
    result = runner.invoke(app, ["train", "-w", str(ws), "--model", "b1", "--params", "best",
                                 "--epochs", "1", "--max-images", "64", "--folds", "1",
                                 "--checkpoints", str(tmp_path / "ck"), "--name", "tuned"])
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "ck" / "tuned" / "current" / "run.json").read_text())
    for name, value in best["params"].items():
        assert record["config"][name] == value, name


def test_pruning_stops_a_clearly_worse_trial() -> None:
    import optuna

    from comp.tune import _reporter

    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.MedianPruner(
        n_startup_trials=1, n_warmup_steps=1))
    good = study.ask()
    for epoch, value in enumerate([0.80, 0.85, 0.90]):
        good.report(value, epoch)
    study.tell(good, 0.90)
    similar, worse = study.ask(), study.ask()
    for epoch, value in enumerate([0.81, 0.86, 0.91]):  # no worse than the median: goes on
        _reporter(similar).on_epoch_end(epoch, {"val_balanced_accuracy": value})
    watch = _reporter(worse)
    watch.on_epoch_end(0, {"val_balanced_accuracy": 0.50})  # warm-up epoch: never pruned
    with pytest.raises(optuna.TrialPruned):
        watch.on_epoch_end(1, {"val_balanced_accuracy": 0.52})


def test_params_file_errors_are_one_line(workspace: Path, tmp_path: Path) -> None:
    from comp.tune import load_params
    from comp.workspace import Workspace

    with pytest.raises(CompError, match="no tuned parameters; run `comp tune --model res`"):
        load_params("best", Workspace(tmp_path), "res")
    (tmp_path / "p.json").write_text('{"momentum": 0.3}')
    with pytest.raises(CompError, match="unknown parameter 'momentum'"):
        load_params(str(tmp_path / "p.json"), Workspace(workspace), "res")


def test_the_search_space_fits_each_model_and_store() -> None:
    from comp.tune import SPACE, space_for

    assert set(space_for("res", 56)) == set(SPACE)
    assert space_for("res", 56)["input_scale"].values == (1.0, 0.75, 0.5)  # 28x28 still >= 16
    assert space_for("res", 24)["input_scale"].values == (1.0, 0.75)  # 12x12 is below res's 16
    assert "input_scale" not in space_for("b1", 24)  # 18 < 22: only the store's own size
    logreg, tl3 = space_for("logreg", 50), space_for("tl3", 64)
    assert "width" not in logreg and "dropout" not in logreg
    assert "width" not in tl3 and "dropout" in tl3


def test_a_trial_is_scored_as_submit_scores_it(workspace: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A trial whose probabilities all lie below 0.5 but rank the val images perfectly:
    0.5 balanced accuracy at 0.5, and 1.0 with the threshold tuned out-of-fold, which is
    what the objective returns."""
    import numpy as np

    import comp.submit.predict as predict
    from comp.submit.predict import Predictions
    from comp.tune import trial_score
    from comp.workspace import Workspace

    ws = Workspace(workspace)
    index = ws.load_index()
    y = ws.split_rows("val", index)["label"].to_numpy()
    p1 = 0.2 + 0.1 * y
    monkeypatch.setattr(predict, "predict_run", lambda *a, **k: Predictions(
        np.stack([1 - p1, p1], axis=1), np.zeros((len(y), 2))))
    monkeypatch.setattr(RunDir, "load_record", lambda self: SimpleNamespace(
        model="res", feature_int8=""))
    assert trial_score(Path("unused"), ws.split("val", index), seed=0) == pytest.approx(1.0)


def test_a_feature_trial_is_scored_on_the_features_it_trained_on(
        workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A feature model's trial reads its val images through the int8 extractor its run
    record names (what it trained on), not the float32 one."""
    import numpy as np

    import comp.submit.predict as predict
    import comp.train.features as features
    from comp.submit.predict import Predictions
    from comp.tune import trial_score
    from comp.workspace import Workspace

    ws = Workspace(workspace)
    val = ws.split("val", ws.load_index())
    seen = {}

    def inputs(model: str, pixels: np.ndarray, *, ws: Workspace | None, int8: str = "",
               desc: str = "") -> np.ndarray:
        seen.update(model=model, int8=int8, images=len(pixels), ws=ws)
        return np.ones((len(pixels), 3), np.float32)

    def run(path: Path, x: np.ndarray, **kw: object) -> Predictions:
        seen["read"] = x.shape
        return Predictions(np.full((len(x), 2), 0.5), np.zeros((len(x), 2)))

    monkeypatch.setattr(features, "model_inputs", inputs)
    monkeypatch.setattr(predict, "predict_run", run)
    monkeypatch.setattr(RunDir, "load_record", lambda self: SimpleNamespace(
        model="facenet-stages-flip", feature_int8="int8-0123456789ab"))
    trial_score(Path("unused"), val, seed=0, ws=ws)
    assert seen == {"model": "facenet-stages-flip", "int8": "int8-0123456789ab",
                    "images": len(val[0]), "ws": ws, "read": (len(val[0]), 3)}


def test_train_warns_when_the_epochs_differ_from_the_tuned_ones(workspace: Path,
                                                                tmp_path: Path) -> None:
    params = tmp_path / "p.json"
    params.write_text(json.dumps({"params": {"learning_rate": 0.003}, "epochs": 5}))
    result = runner.invoke(app, ["train", "-w", str(workspace), "--model", "logreg",
                                 "--epochs", "1", "--folds", "1", "--max-images", "64",
                                 "--checkpoints", str(tmp_path / "ck"), "--params",
                                 str(params)])
    assert result.exit_code == 0, result.output
    assert "tuned with 5 epochs per trial; this run trains 1" in result.output


@pytest.mark.parametrize(("why", "words"), [
    ("database or disk is full", "the disk is full; free some space and run `comp tune` again"),
    ("database is locked", "another `comp tune` is using this study"),
    ("unable to open database file", "the study cannot be read or written"),
])
def test_a_failing_study_file_is_one_line_naming_it(why: str, words: str,
                                                    tmp_path: Path) -> None:
    """SQLite's own errors (as SQLAlchemy raises them under Optuna) become one line."""
    import sqlite3

    import sqlalchemy.exc

    from comp.tune import study_errors

    path = tmp_path / "res.db"
    with pytest.raises(CompError) as caught, study_errors(path):
        raise sqlalchemy.exc.OperationalError("INSERT INTO trials", {},
                                              sqlite3.OperationalError(why))
    assert str(caught.value).startswith(f"{path}: ") and words in str(caught.value)


def test_a_damaged_study_is_one_line_and_a_new_name_works(workspace: Path) -> None:
    folder = workspace / "tune"
    folder.mkdir(exist_ok=True)
    (folder / "damaged.db").write_bytes(b"SQLite format 3\x00" + b"\xff" * 300)
    base = ["tune", "-w", str(workspace), "--model", "logreg", "--trials", "1", "--epochs", "1"]
    result = CliRunner().invoke(app, [*base, "--study", "damaged"])
    assert result.exit_code == 1
    assert "damaged.db: the study is damaged (" in result.output
    assert "pass --study NEW_NAME" in result.output
    result = CliRunner().invoke(app, [*base, "--study", "fresh"])
    assert result.exit_code == 0, result.output
