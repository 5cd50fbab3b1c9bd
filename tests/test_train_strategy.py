"""The hardware choice: where --tpu looks (stubbed resolvers), its refusal, MirroredStrategy on
two logical CPUs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score
from typer.testing import CliRunner

from comp.cli import app

runner = CliRunner()

def test_tpu_without_tpu_is_one_line(workspace: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", "-w", str(workspace), "--checkpoints", str(tmp_path),
                                 "--tpu", "--epochs", "1"])
    assert result.exit_code == 1
    assert result.output.startswith("error: --tpu: no TPU found (this TPU VM: ")
    assert "TPU_NAME / Colab: " in result.output
    assert result.output.strip().count("\n") == 0


class _Resolvers:
    """Stands in for TensorFlow's TPU calls: which TPUs exist, and what comp asked for."""

    def __init__(self, present: set[str | None]) -> None:
        self.present, self.asked, self.connected, self.initialised = present, [], [], []

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import tensorflow as tf

        stubs = self

        class Resolver:
            def __init__(self, tpu: str | None = None) -> None:
                stubs.asked.append(tpu)
                if tpu not in stubs.present:
                    raise ValueError(f"no TPU {tpu!r}")
                self.tpu = tpu

        monkeypatch.setattr(tf.distribute.cluster_resolver, "TPUClusterResolver", Resolver)
        monkeypatch.setattr(tf.config, "experimental_connect_to_cluster",
                            lambda r: self.connected.append(r.tpu))
        monkeypatch.setattr(tf.tpu.experimental, "initialize_tpu_system",
                            lambda r: self.initialised.append(r.tpu))


@pytest.mark.parametrize(("present", "name", "asked", "connected", "found"), [
    ({"local", None}, None, ["local"], [], "local"),  # a TPU VM: its own chips, first
    ({None}, None, ["local", None], [None], None),  # no TPU VM: TPU_NAME / Colab
    ({"my-tpu", "local"}, "my-tpu", ["my-tpu"], ["my-tpu"], "my-tpu"),  # a named one only
])
def test_tpu_is_looked_for_in_order(monkeypatch: pytest.MonkeyPatch, present, name, asked,
                                    connected, found) -> None:
    from comp.train.strategy import connect_tpu

    stubs = _Resolvers(present)
    stubs.install(monkeypatch)
    assert connect_tpu(name).tpu == found
    assert stubs.asked == asked and stubs.connected == connected
    assert stubs.initialised == [found]


def test_a_missing_named_tpu_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from comp.errors import CompError
    from comp.train.strategy import connect_tpu

    _Resolvers({"local"}).install(monkeypatch)
    with pytest.raises(CompError, match=r"--tpu: no TPU found \(my-tpu: no TPU 'my-tpu'\); "
                       "check the name"):
        connect_tpu("my-tpu")


def test_tpu_flag_trains_under_tpu_strategy_in_bfloat16(monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    import tensorflow as tf

    from comp.train.strategy import choose_hardware

    _Resolvers({"local"}).install(monkeypatch)
    made = []

    class Strategy:
        num_replicas_in_sync = 8

        def __init__(self, resolver) -> None:  # type: ignore[no-untyped-def]
            made.append(resolver.tpu)

    monkeypatch.setattr(tf.distribute, "TPUStrategy", Strategy)
    hw = choose_hardware(tpu=True)
    assert made == ["local"] and hw.policy == "mixed_bfloat16" and hw.replicas == 8
    assert hw.description == "TPU (8 cores)"


CHILD = """
import json, sys
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from pathlib import Path
import keras
from comp.config import TrainConfig
from comp.runs import RunDir
from comp.train import train
from comp.train.data import load_training_data, make_batches
from comp.train.layers import BalancedAccuracy
from comp.train.strategy import choose_hardware
from comp.workspace import Workspace
run = train(TrainConfig(workspace=Path(sys.argv[1]), model="b1", epochs=1, batch_size=8, folds=1,
                        checkpoints=Path(sys.argv[2]), max_images=64, progress=False))
# the metric, summed over both replicas' batches, against the same model's predictions
hw = choose_hardware()
data = load_training_data(Workspace(Path(sys.argv[1])), max_images=64, seed=42)
with hw.strategy.scope():
    model = keras.models.load_model(RunDir(Path(sys.argv[2]) / run.run).last, compile=False)
    model.compile(loss="binary_crossentropy", metrics=[BalancedAccuracy(2)])
ds = make_batches(data.x_val, data.y_val, num_classes=2, batch_size=6, shuffle=False, seed=0)
score = model.evaluate(ds, verbose=0, return_dict=True)["balanced_accuracy"]
prob = model.predict(data.x_val.astype(np.float32), verbose=0)[:, 0]
print("RESULT", json.dumps({"hardware": run.hardware, "replicas": hw.replicas,
                            "metric": float(score), "y": data.y_val.tolist(),
                            "pred": (prob >= 0.5).astype(int).tolist()}))
"""


def test_mirrored_strategy_on_two_logical_cpus(workspace: Path, tmp_path: Path) -> None:
    """Training runs under MirroredStrategy, and the balanced-accuracy metric aggregated over
    the two replicas equals scikit-learn's on the same predictions."""
    out = subprocess.run([sys.executable, "-c", CHILD, str(workspace), str(tmp_path)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    line = next(x for x in out.stdout.splitlines() if x.startswith("RESULT "))
    result = json.loads(line[len("RESULT "):])
    assert result["hardware"] == "2 logical CPUs (MirroredStrategy)" and result["replicas"] == 2
    assert len(result["y"]) > 6  # several batches, split across the replicas
    want = balanced_accuracy_score(result["y"], result["pred"])
    assert result["metric"] == pytest.approx(want, abs=1e-6)


LOG_LINE = re.compile(r"^([IWEF]\d{4} |WARNING: All log messages before absl)")


@pytest.mark.parametrize("verbose", [False, True])
def test_tensorflow_start_up_lines_stay_off_the_terminal(workspace: Path, tmp_path: Path,
                                                         verbose: bool) -> None:
    """Neither training nor prediction (submit) shows them, unless --verbose."""
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL",
                                                             "COMP_VERBOSE")}
    flag = ["--verbose"] if verbose else []
    commands = [["train", "-w", str(workspace), "--model", "b1", "--epochs", "1",
                 "--batch-size", "8", "--max-images", "16", "--checkpoints", str(tmp_path),
                 "--name", "quiet", "--folds", "1", *flag],
                ["submit", "-w", str(workspace), "--checkpoints", str(tmp_path), "--run",
                 "quiet", "--submissions", str(tmp_path / "subs"), "--no-ensemble", *flag]]
    for args in commands:
        out = subprocess.run([sys.executable, "-m", "comp.cli", *args], capture_output=True,
                             text=True, timeout=300, env=env)
        assert out.returncode == 0, out.stderr[-2000:]
        native = [x for x in out.stderr.splitlines() if LOG_LINE.match(x)]
        assert bool(native) == verbose, (args[0], out.stderr[-2000:])


JAX_CHILD = """
import json, sys
from pathlib import Path
import numpy as np
import jax
from comp.config import TrainConfig
from comp.runs import RunDir
from comp.submit.predict import predict_run
from comp.train import train
from comp.workspace import Workspace
run = train(TrainConfig(workspace=Path(sys.argv[1]), model="b1", epochs=2, batch_size=16,
                        folds=1, checkpoints=Path(sys.argv[2]), max_images=64, progress=False))
x = Workspace(Path(sys.argv[1])).load_store("train")[:32]
prob = predict_run(RunDir(Path(sys.argv[2]) / run.run).last, x).prob[:, 1]
print("RESULT", json.dumps({"hardware": run.hardware, "devices": len(jax.devices()),
                            "loss": [h["loss"] for h in __import__("pandas").read_csv(
                                RunDir(Path(sys.argv[2]) / run.run).history)
                                .to_dict("records")],
                            "prob": prob.tolist()}))
"""


def _jax_run(workspace: Path, out: Path, devices: int) -> dict:
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu",
           "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}
    done = subprocess.run([sys.executable, "-c", JAX_CHILD, str(workspace), str(out)],
                          capture_output=True, text=True, timeout=400, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def test_jax_data_parallel_on_two_cpu_devices_equals_one(workspace: Path,
                                                         tmp_path: Path) -> None:
    """JAX with two host devices: keras.distribution.DataParallel splits each global batch of
    16 into 8 + 8; the gradient is the global batch's mean either way, so two epochs give the
    same losses and the same predictions as one device, up to float summation order."""
    one = _jax_run(workspace, tmp_path / "one", 1)
    two = _jax_run(workspace, tmp_path / "two", 2)
    assert one["devices"] == 1 and two["devices"] == 2
    assert two["hardware"].endswith(", 2 devices, data parallel) on JAX")
    assert "devices" not in one["hardware"]
    np.testing.assert_allclose(two["loss"], one["loss"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(two["prob"], one["prob"], atol=1e-4)


TF_CHILD = """
import json, sys
from pathlib import Path
import tensorflow as tf
devices = int(sys.argv[3])
if devices > 1:
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * devices)
import pandas as pd
from comp.config import TrainConfig
from comp.runs import RunDir
from comp.submit.predict import predict_run
from comp.train import train
from comp.workspace import Workspace
run = train(TrainConfig(workspace=Path(sys.argv[1]), model="b1", epochs=2, batch_size=16,
                        folds=1, checkpoints=Path(sys.argv[2]), max_images=64, progress=False))
x = Workspace(Path(sys.argv[1])).load_store("train")[:32]
prob = predict_run(RunDir(Path(sys.argv[2]) / run.run).last, x).prob[:, 1]
history = pd.read_csv(RunDir(Path(sys.argv[2]) / run.run).history)
print("RESULT", json.dumps({"hardware": run.hardware, "loss": history["loss"].tolist(),
                            "prob": prob.tolist()}))
"""


def _tf_run(workspace: Path, out: Path, devices: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    done = subprocess.run([sys.executable, "-c", TF_CHILD, str(workspace), str(out),
                           str(devices)], capture_output=True, text=True, timeout=400, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def test_tensorflow_mirrored_on_two_cpus_trains_what_one_device_trains(
        workspace: Path, tmp_path: Path) -> None:
    """TensorFlow's MirroredStrategy over two logical CPUs splits each global batch of 16
    into 8 + 8 and sums the replicas' gradients of the global mean loss: two epochs of b1 (no
    dropout) give the same losses and predictions as one device, up to float order."""
    one = _tf_run(workspace, tmp_path / "one", 1)
    two = _tf_run(workspace, tmp_path / "two", 2)
    assert two["hardware"] == "2 logical CPUs (MirroredStrategy)"
    assert "MirroredStrategy" not in one["hardware"]
    np.testing.assert_allclose(two["loss"], one["loss"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(two["prob"], one["prob"], atol=1e-4)
