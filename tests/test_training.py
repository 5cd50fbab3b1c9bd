"""comp train: models, metric, pipeline, hardware choice, checkpoints and resume."""

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
from comp.errors import CompError

runner = CliRunner()
REPORT_COUNTS = {  # (total, trainable) at 56x56x3, from the report
    "b1": (1_723_009, 1_723_009), "b2": (1_985_665, 1_985_665), "b3": (1_985_665, 1_985_665),
    "tl1": (24_899_969, 1_312_257), "tl2": (24_899_969, 9_193_473),
    "tl3": (24_899_969, 24_846_849),
}


@pytest.mark.parametrize("name", sorted(REPORT_COUNTS))
def test_parameter_counts_match_the_report(name: str) -> None:
    from comp.models import build_model, count_params

    assert count_params(build_model(name, (56, 56, 3), 2, weights="none")) == REPORT_COUNTS[name]


@pytest.mark.parametrize("classes", [2, 4])
def test_balanced_accuracy_metric_equals_sklearn(classes: int) -> None:
    from comp.metrics import balanced_accuracy
    from comp.models import BalancedAccuracy

    rng = np.random.default_rng(classes)
    y = rng.choice(classes, size=500, p=[0.6] + [0.4 / (classes - 1)] * (classes - 1))
    prob = rng.random((500, 1 if classes == 2 else classes)).astype(np.float32)
    pred = (prob[:, 0] >= 0.5).astype(int) if classes == 2 else prob.argmax(1)
    metric = BalancedAccuracy(classes)
    for s in range(0, 500, 124):  # several batches accumulate into one epoch figure
        yb = y[s:s + 124]
        yt = yb[:, None].astype(np.float32) if classes == 2 else np.eye(classes)[yb]
        metric.update_state(yt, prob[s:s + 124])
    want = balanced_accuracy_score(y, pred)
    assert float(metric.result()) == pytest.approx(want, abs=1e-6)
    assert balanced_accuracy(y, pred) == pytest.approx(want, abs=1e-12)


def _train(ws: Path, ck: Path, model: str, **kw) -> dict:
    from comp.training import train

    cfg = TrainConfig(workspace=ws, model=model, epochs=kw.pop("epochs", 1), batch_size=8,
                      checkpoints=ck, weights="none", max_images=kw.pop("max_images", 24),
                      verbose=False, **kw)
    return train(cfg)


@pytest.mark.parametrize("model", ["logreg", "b1", "b2", "b3", "tl1", "tl2", "tl3"])
@pytest.mark.parametrize("which", ["binary", "four"])
def test_every_model_trains(model: str, which: str, workspace: Path, workspace4: Path,
                            tmp_path: Path) -> None:
    ws = workspace if which == "binary" else workspace4
    run = _train(ws, tmp_path, model)
    run_dir = Path(run["run_dir"])
    for name in ("best.keras", "last.keras", "history.csv", "curves.png", "run.json"):
        assert (run_dir / name).exists(), name
    history = pd.read_csv(run_dir / "history.csv")
    assert {"loss", "balanced_accuracy", "val_loss", "val_balanced_accuracy", "lr"} <= set(
        history.columns)
    assert run["status"] == "finished" and run["best_epoch"] == 1
    assert len(run["classes"]) == (2 if which == "binary" else 4)


def test_logreg_is_logistic_regression_on_gray_pixels() -> None:
    from comp.models import build_model, count_params

    model = build_model("logreg", (50, 50, 3), 2)
    assert count_params(model) == (50 * 50 + 1, 50 * 50 + 1)
    x = np.random.default_rng(0).integers(0, 256, (4, 50, 50, 3)).astype(np.float32)
    w, b = model.get_layer("output").get_weights()
    luma = (x @ np.array([0.299, 0.587, 0.114], np.float32)).reshape(4, -1) / 255
    want = 1 / (1 + np.exp(-(luma @ w + b)))
    np.testing.assert_allclose(np.asarray(model(x)), want, rtol=1e-4, atol=1e-6)


def test_run_names_are_unique(workspace: Path, tmp_path: Path) -> None:
    a = _train(workspace, tmp_path, "b1", run_name="same", max_images=8)
    b = _train(workspace, tmp_path, "b1", run_name="same", max_images=8)
    assert a["run"] == "same" and b["run"] == "same-2"


def test_seed_makes_runs_reproducible(workspace: Path, tmp_path: Path) -> None:
    a = _train(workspace, tmp_path, "b1", seed=3, max_images=32, epochs=2)
    b = _train(workspace, tmp_path, "b1", seed=3, max_images=32, epochs=2)
    ha = pd.read_csv(Path(a["run_dir"]) / "history.csv")
    hb = pd.read_csv(Path(b["run_dir"]) / "history.csv")
    np.testing.assert_allclose(ha["loss"], hb["loss"], rtol=1e-5)


def test_weights_file_is_loaded(workspace: Path, tmp_path: Path) -> None:
    import keras

    from comp.models import build_model

    base = keras.applications.ResNet50(include_top=False, weights=None, input_shape=(32, 32, 3))
    path = tmp_path / "resnet50_notop.weights.h5"
    base.save_weights(path)
    model = build_model("tl1", (32, 32, 3), 2, weights=str(path))
    loaded = model.get_layer("resnet50").get_weights()
    for want, got in zip(base.get_weights(), loaded, strict=True):
        np.testing.assert_array_equal(want, got)


def test_missing_imagenet_weights_say_what_to_do(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from comp.models import RESNET_NOTOP, resolve_weights

    monkeypatch.setattr("keras.config.keras_home", lambda: str(tmp_path), raising=False)
    with pytest.raises(CompError, match=f"put {RESNET_NOTOP} in .*--weights none"):
        resolve_weights("imagenet")
    with pytest.raises(CompError, match="file not found"):
        resolve_weights(str(tmp_path / "nope.h5"))


def test_tpu_without_tpu_is_one_line(workspace: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", "-w", str(workspace), "--checkpoints", str(tmp_path),
                                 "--tpu", "auto", "--epochs", "1"])
    assert result.exit_code == 1
    assert result.output.startswith("error: --tpu: no TPU found")
    assert result.output.strip().count("\n") == 0


def test_augmentation_keeps_shapes_and_changes_pixels() -> None:
    from comp.training import make_dataset

    x = np.random.default_rng(0).integers(0, 256, (16, 32, 32, 3), np.uint8)
    y = np.arange(16) % 2
    plain = next(iter(make_dataset(x, y, 2, 16, False, False, 0)))[0].numpy()
    aug = next(iter(make_dataset(x, y, 2, 16, False, True, 0)))[0].numpy()
    assert aug.shape == plain.shape == (16, 32, 32, 3) and aug.dtype == np.float32
    np.testing.assert_array_equal(plain, x.astype(np.float32))
    assert np.abs(aug - plain).mean() > 1.0


CHILD = """
import sys, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from pathlib import Path
from comp.config import TrainConfig
from comp.training import train
run = train(TrainConfig(workspace=Path(sys.argv[1]), model="b1", epochs=1, batch_size=8,
                        checkpoints=Path(sys.argv[2]), max_images=32, verbose=False))
print("HARDWARE", run["hardware"])
"""


def test_mirrored_strategy_on_two_logical_cpus(workspace: Path, tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-c", CHILD, str(workspace), str(tmp_path)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "HARDWARE 2 logical CPUs (MirroredStrategy)" in out.stdout


def test_resume_after_a_crash(workspace: Path, tmp_path: Path) -> None:
    """Kill a training process after its first epoch; --resume finishes the run from there with
    the optimizer, plateau state and epoch counter restored."""
    cmd = [sys.executable, "-m", "comp.cli", "train", "-w", str(workspace), "--model", "b1",
           "--epochs", "3", "--batch-size", "8", "--max-images", "48", "--checkpoints",
           str(tmp_path), "--name", "crash", "--plateau-patience", "1"]
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
    state = json.loads((run_dir / "state.json").read_text())
    assert state["epoch"] == 1 and "plateau" in state
    result = runner.invoke(app, ["train", "--resume", "crash", "--checkpoints", str(tmp_path)])
    assert result.exit_code == 0, result.output
    history = pd.read_csv(run_dir / "history.csv")
    assert history["epoch"].tolist() == [1, 2, 3]
    import keras

    model = keras.models.load_model(run_dir / "last.keras")
    steps = int(np.ceil(48 / 8))
    assert int(model.optimizer.iterations) == 3 * steps
    result = runner.invoke(app, ["train", "--resume", "crash", "--checkpoints", str(tmp_path)])
    assert result.exit_code == 1 and "already has 3 epochs" in result.output
    result = runner.invoke(app, ["train", "--resume", "nope", "--checkpoints", str(tmp_path)])
    assert result.exit_code == 1 and "no run to resume" in result.output


def test_augmentation_geometry_by_hand() -> None:
    """With no rotation and no zoom the transform is the identity or an exact mirror."""
    import tensorflow as tf

    import comp.training as training

    x = np.random.default_rng(1).integers(0, 256, (64, 9, 9, 1)).astype(np.float32)
    old = training.ROTATION_DEGREES, training.ZOOM
    training.ROTATION_DEGREES, training.ZOOM = 0.0, 0.0
    try:
        out = training.augment_batch(tf.constant(x), tf.random.Generator.from_seed(0)).numpy()
    finally:
        training.ROTATION_DEGREES, training.ZOOM = old
    same = np.all(out == x, axis=(1, 2, 3))
    mirrored = np.all(out == x[:, :, ::-1], axis=(1, 2, 3))
    assert (same | mirrored).all() and 10 < mirrored.sum() < 54
