"""comp train: every model trains, run folders, reproducibility, resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import balanced_accuracy_score
from typer.testing import CliRunner

from comp.cli import app
from comp.config import TrainConfig
from comp.runs import RunDir, RunRecord

pytestmark = pytest.mark.backends  # CI runs these under TensorFlow and JAX

runner = CliRunner()

def _train(ws: Path, ck: Path, model: str, **kw) -> RunRecord:
    from comp.train import train

    cfg = TrainConfig(workspace=ws, model=model, epochs=kw.pop("epochs", 1), batch_size=8,
                      folds=kw.pop("folds", 1),
                      checkpoints=ck, weights="none", max_images=kw.pop("max_images", 24),
                      progress=False, **kw)
    return train(cfg)


@pytest.mark.parametrize("model", ["logreg", "b1", "b2", "b3", "tl1", "tl2", "tl3", "res"])
@pytest.mark.parametrize("which", ["binary", "four"])
def test_every_model_trains(model: str, which: str, workspace: Path, workspace4: Path,
                            tmp_path: Path) -> None:
    ws = workspace if which == "binary" else workspace4
    run = _train(ws, tmp_path, model)
    run_dir = tmp_path / run.run
    files = RunDir(run_dir)
    for path in (files.best, files.last, files.history, files.curves, files.record,
                 files.state):
        assert path.exists(), path.name
    history = pd.read_csv(files.history)
    assert {"loss", "balanced_accuracy", "val_loss", "val_balanced_accuracy", "lr"} <= set(
        history.columns)
    assert run.status == "finished" and run.best_epoch == 1
    assert len(run.classes) == (2 if which == "binary" else 4)


def test_run_names_are_unique(workspace: Path, tmp_path: Path) -> None:
    a = _train(workspace, tmp_path, "b1", run_name="same", max_images=8)
    b = _train(workspace, tmp_path, "b1", run_name="same", max_images=8)
    assert a.run == "same" and b.run == "same-2"


@pytest.mark.parametrize("model", ["b1", "b3"])  # b3: augmentation and dropout
def test_seed_makes_runs_reproducible(model: str, workspace: Path, tmp_path: Path) -> None:
    a = _train(workspace, tmp_path, model, seed=3, max_images=32, epochs=2)
    b = _train(workspace, tmp_path, model, seed=3, max_images=32, epochs=2)
    ha = pd.read_csv(RunDir(tmp_path / a.run).history)
    hb = pd.read_csv(RunDir(tmp_path / b.run).history)
    np.testing.assert_allclose(ha["loss"], hb["loss"], rtol=1e-5)


def test_resume_after_a_crash(workspace: Path, tmp_path: Path) -> None:
    """Kill a training process after its first epoch; --resume finishes the run from there with
    the optimizer, plateau state and epoch counter restored."""
    cmd = [sys.executable, "-m", "comp.cli", "train", "-w", str(workspace), "--model", "b1",
           "--epochs", "3", "--batch-size", "8", "--max-images", "48", "--checkpoints",
           str(tmp_path), "--name", "crash", "--plateau-patience", "1", "--folds", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout is not None
    deadline = time.time() + 240
    for line in proc.stdout:
        if line.startswith("epoch   1/3") or time.time() > deadline:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    run_dir = tmp_path / "crash"
    state = json.loads(RunDir(run_dir).state.read_text())
    assert state["epoch"] == 1 and "plateau" in state
    result = runner.invoke(app, ["train", "--resume", "crash", "--checkpoints", str(tmp_path)])
    assert result.exit_code == 0, result.output
    history = pd.read_csv(RunDir(run_dir).history)
    assert history["epoch"].tolist() == [1, 2, 3]
    import keras

    model = keras.models.load_model(RunDir(run_dir).last)
    steps = int(np.ceil(48 / 8))
    assert int(model.optimizer.iterations) == 3 * steps
    result = runner.invoke(app, ["train", "--resume", "crash", "--checkpoints", str(tmp_path)])
    assert result.exit_code == 1 and "already has 3 epochs" in result.output
    result = runner.invoke(app, ["train", "--resume", "nope", "--checkpoints", str(tmp_path)])
    assert result.exit_code == 1 and "no run to resume" in result.output


def _plateau_model(lr: float):
    import keras

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="mse")
    return model


@pytest.mark.parametrize("saved_wait", [0, 1])
def test_learning_rate_drops_on_a_plateau_and_resumes_its_counters(saved_wait: int) -> None:
    """patience 2, factor 0.5: the rate halves after two epochs without a better val loss;
    a resumed run that had already waited one epoch halves it after one more."""
    from comp.native_log import load_keras

    load_keras()
    from comp.train.callbacks import ResumablePlateau

    saved = {"wait": saved_wait, "best": 1.0, "cooldown_counter": 0} if saved_wait else {}
    plateau = ResumablePlateau(saved=saved, monitor="val_loss", factor=0.5, patience=2,
                               verbose=0)
    model = _plateau_model(1e-2)
    plateau.set_model(model)
    plateau.on_train_begin()
    rates = []
    for epoch, loss in enumerate([1.0, 1.0, 1.0, 1.0, 1.0]):
        plateau.on_epoch_end(epoch, {"val_loss": loss})
        rates.append(float(model.optimizer.learning_rate))
    if saved_wait:  # best 1.0 already seen; wait 1 -> 2 at epoch 1 -> halve
        assert rates == pytest.approx([5e-3, 5e-3, 2.5e-3, 2.5e-3, 1.25e-3])
    else:  # epoch 1 sets best; waits at epochs 2, 3 -> halve at 3; again at 5
        assert rates == pytest.approx([1e-2, 1e-2, 5e-3, 5e-3, 2.5e-3])
    assert plateau.counters()["wait"] == 0


def test_best_checkpoint_holds_the_best_epochs_weights(workspace: Path, tmp_path: Path) -> None:
    """best.keras scores, on the validation images, exactly the best epoch's figure in
    history.csv; last.keras the last epoch's."""
    from comp.train.data import load_training_data
    from comp.workspace import Workspace

    run = _train(workspace, tmp_path, "b1", epochs=4, max_images=64, learning_rate=3e-3)
    run_dir = RunDir(tmp_path / run.run)
    history = pd.read_csv(run_dir.history)
    assert run.best_epoch == int(history["val_balanced_accuracy"].idxmax()) + 1
    data = load_training_data(Workspace(workspace), max_images=64, seed=42)
    import keras

    for path, epoch in ((run_dir.best, run.best_epoch), (run_dir.last, 4)):
        model = keras.models.load_model(path)
        prob = model.predict(data.x_val.astype(np.float32), verbose=0)[:, 0]
        got = balanced_accuracy_score(data.y_val, prob >= 0.5)
        want = history.loc[history["epoch"] == epoch, "val_balanced_accuracy"].iloc[0]
        assert got == pytest.approx(want, abs=1e-6), path.name


@pytest.mark.parametrize("model", ["b1", "b3"])
def test_a_resumed_run_trains_as_an_uninterrupted_one(model: str, workspace: Path,
                                                      tmp_path: Path) -> None:
    """Each epoch's shuffle and augmentation depend on (seed, epoch), and the optimizer and
    plateau state come back from the checkpoint: stopping after epoch 1 and resuming gives the
    same epochs 2-3 as never stopping."""
    from comp.train import train

    options = {"augment": True, "max_images": 48, "learning_rate": 3e-3}
    whole = _train(workspace, tmp_path, model, epochs=3, run_name="whole", **options)
    _train(workspace, tmp_path, model, epochs=1, run_name="part", **options)
    train(TrainConfig(checkpoints=tmp_path, resume="part", epochs=3, progress=False))
    a = pd.read_csv(RunDir(tmp_path / whole.run).history)
    b = pd.read_csv(RunDir(tmp_path / "part").history)
    assert b["epoch"].tolist() == [1, 2, 3]
    for column in ("loss", "val_loss", "val_balanced_accuracy"):
        np.testing.assert_allclose(b[column], a[column], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("balance", ["weights", "oversample"])
def test_balanced_training_runs_and_is_recorded(balance: str, workspace: Path,
                                                tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", "-w", str(workspace), "--model", "b1", "--epochs",
                                 "1", "--batch-size", "32", "--max-images", "256", "--folds",
                                 "1", "--checkpoints", str(tmp_path), "--name", "b",
                                 "--balance", balance])
    assert result.exit_code == 0, result.output
    record = json.loads((RunDir(tmp_path / "b").record).read_text())
    assert record["config"]["balance"] == balance and record["status"] == "finished"


def test_penalties_and_init_are_recorded(workspace: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", "-w", str(workspace), "--model", "logreg",
                                 "--epochs", "1", "--max-images", "128", "--folds", "1",
                                 "--checkpoints", str(tmp_path), "--name", "reg", "--l1",
                                 "0.001", "--l2", "0.01", "--init", "he"])
    assert result.exit_code == 0, result.output
    record = json.loads((RunDir(tmp_path / "reg").record).read_text())
    assert (record["config"]["l1"], record["config"]["l2"], record["config"]["init"]) == \
        (0.001, 0.01, "he")
