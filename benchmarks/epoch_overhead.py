"""What an epoch's bookkeeping costs the training: comp's recorder against the former one,
side by side on the same model and the same training.

For each arm, `--epochs` epochs of `res` (56x56x3, `--images` random images, batch 124) are
trained with `Model.fit` one epoch at a time, and after each the arm's recorder writes the
epoch (history, curves, last/best checkpoints, resume state, run record, commit) into a
fresh run folder, with a validation score that improves on a fixed half of the epochs. Timed:
the seconds the training thread spends in the recorder per epoch (the overhead; for comp's
recorder its copy of the model and any wait for the previous epoch's writing, plus the last
epoch's), and the wall time per epoch, training included (the background writing competes for
the same cores).
  former   the recorder of commit 82833d1: every epoch saves last.keras, saves best.keras
           again when the epoch improved, draws curves.png, all in the training thread;
  comp     comp's: a copy of the model taken at the epoch's end, saved and committed by a
           background thread while the next epoch trains; best.keras a hard link; the
           curves every 10 s and at the last epoch.
Target: comp's overhead under 0.2 s per epoch on average.

    python benchmarks/epoch_overhead.py [--epochs 20] [--images 2000] [--repeats 2]
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FORMER = "82833d1"


def former_recorder() -> type:
    """The Recorder class of commit FORMER, loaded from git."""
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{FORMER}:comp/train/callbacks.py"],
                            check=True, capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "former_callbacks.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("former_callbacks", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["former_callbacks"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module.Recorder


def one_arm(recorder_class: type, *, epochs: int, x: np.ndarray, y: np.ndarray
            ) -> tuple[float, float]:
    """(mean seconds per epoch in the recorder, mean wall seconds per epoch)."""
    import keras

    from comp.runs import RunDir, RunRecord
    from comp.train.callbacks import TrainState
    from comp.train.models import build_res

    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    model = build_res(x.shape[1:], 2)
    model.compile(keras.optimizers.Adam(1e-3), keras.losses.BinaryCrossentropy())
    model.fit(x[:124], y[:124], epochs=1, verbose=0)  # built and compiled before timing
    run_dir = RunDir(Path(tempfile.mkdtemp()) / "run")
    run_dir.path.mkdir(parents=True)
    record = RunRecord(run="run", model="res", classes=["0", "1"],
                       input_shape=list(x.shape[1:]), fingerprint="0", workspace=".",
                       learning_rate=1e-3, augment=False, params=model.count_params(),
                       trainable_params=model.count_params(), images_train=len(x),
                       images_val=0, created="", config={})
    recorder = recorder_class(run_dir=run_dir, record=record, state=TrainState(),
                              plateau=None, epochs=epochs)
    recorder.set_model(model)
    recorder.set_params({"epochs": epochs})
    improving = np.random.default_rng(1).permutation(epochs) < epochs // 2
    score, inside = 0.5, 0.0
    started = time.perf_counter()
    for epoch in range(epochs):
        recorder.on_epoch_begin(epoch)
        history = model.fit(x, y, batch_size=124, epochs=1, verbose=0)
        score += 0.01 if improving[epoch] else -0.001
        logs = {"loss": history.history["loss"][0], "balanced_accuracy": 0.5,
                "val_loss": 0.5, "val_balanced_accuracy": score}
        t = time.perf_counter()
        recorder.on_epoch_end(epoch, logs)
        if epoch == epochs - 1 and hasattr(recorder, "close"):
            recorder.close()
        inside += time.perf_counter() - t
    wall = time.perf_counter() - started
    assert RunDir(run_dir.path).load_record().epochs_done == epochs
    return inside / epochs, wall / epochs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    from comp.train.callbacks import Recorder

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (args.images, 56, 56, 3), np.uint8)
    y = rng.integers(0, 2, (args.images, 1)).astype(np.float32)
    arms = {"former (82833d1)": former_recorder(), "comp": Recorder}
    best: dict[str, tuple[float, float]] = {}
    for _ in range(args.repeats):  # interleaved, so drift hits both alike
        for name, cls in arms.items():
            inside, wall = one_arm(cls, epochs=args.epochs, x=x, y=y)
            old = best.get(name)
            best[name] = (inside, wall) if old is None or wall < old[1] else old
            print(f"  {name}: {inside:.3f} s in the recorder, {wall:.2f} s per epoch",
                  flush=True)
    print(f"\n`res`, {args.images:,} images of 56x56x3 per epoch, {args.epochs} epochs, best "
          f"of {args.repeats} by wall time:")
    print("| recorder | seconds per epoch in the recorder | wall seconds per epoch |")
    print("|---|---|---|")
    for name, (inside, wall) in best.items():
        print(f"| {name} | {inside:.3f} | {wall:.2f} |")


if __name__ == "__main__":
    main()
