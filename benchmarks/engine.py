"""Phase 2's arithmetic, Keras against ONNX Runtime: a trained run's fold models predicting
N images in one graph, side by side, interleaved repeats (best of each); the ONNX export
(once per checkpoint, cached in the run's engine/ folder) timed apart. Agreement: the largest
probability difference, and the share of images whose label at 0.5 (arg-max) is the same.

    python benchmarks/engine.py --checkpoints benchmarks/out/leaderboard/smilesmiled/ck
        --run comp-res [--images 20000] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from comp.runs import RunDir  # noqa: E402
from comp.submit.predict import predict_models  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--checkpoints", type=Path, required=True)
    parser.add_argument("--run", required=True)
    parser.add_argument("--images", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    run = RunDir(args.checkpoints / args.run)
    if not run.record.exists():
        print(f"skipping: no run {run.path}")
        return
    record = run.load_record()
    paths = [m.best for m in run.members()]
    x = np.random.default_rng(0).integers(0, 256, (args.images, *record.input_shape),
                                          np.uint8)
    shutil.rmtree(run.engine, ignore_errors=True)
    started = time.perf_counter()
    predict_models(paths, x[:8], engine=run.engine)
    export = time.perf_counter() - started
    best: dict[str, float] = {}
    probs: dict[str, np.ndarray] = {}
    for _ in range(args.repeats):
        for name, folder in (("Keras", None), ("ONNX Runtime", run.engine)):
            started = time.perf_counter()
            preds = predict_models(paths, x, engine=folder)
            seconds = time.perf_counter() - started
            best[name] = min(best.get(name, np.inf), seconds)
            probs[name] = np.stack([p.prob for p in preds])
    diff = float(np.abs(probs["Keras"] - probs["ONNX Runtime"]).max())
    same = float((probs["Keras"].argmax(-1) == probs["ONNX Runtime"].argmax(-1)).mean())
    print(f"run {args.run}: {len(paths)} models of {record.model}, input "
          f"{'x'.join(map(str, record.input_shape))}, {args.images:,} images, best of "
          f"{args.repeats}; export and first session {export:.1f} s (once per checkpoint)")
    print("| engine | seconds | ms per image (all models) | speed-up |")
    print("|---|---|---|---|")
    for name, seconds in best.items():
        print(f"| {name} | {seconds:.1f} | {seconds / args.images * 1000:.3f} | "
              f"{best['Keras'] / seconds:.2f}x |")
    print(f"largest probability difference {diff:.2e}; same label on {same:.4%} of "
          "images x models")


if __name__ == "__main__":
    main()
