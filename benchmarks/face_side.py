"""How small an input FaceNet can see, and whether int8 weights cost anything, out-of-fold.

FaceNet was trained at 160 px; comp's stored faces are 50-64 px, so each image is enlarged
2.5-3x before the network sees it, and the network's arithmetic grows with the side squared.
For each task (as `benchmarks/face_layers.py` reads them: a sample of ../shared/data,
smilesmiled gray 64x64, CelebA 50x50 RGB grouped by identity), the features of the recipe's
view (`facenet`, the final pool) and of the preset's (`facenet-stages-flip`) are computed by
comp at each side (`features_of(..., side=)`, cached per layer in benchmarks/out/face-layers/),
and scored by the same linear probe (standardised features, L2 logistic regression, balanced
class weights, C=0.05, 5 folds, out-of-fold balanced accuracy), each side's difference from
160 px with a 95 % paired bootstrap interval.

int8 at 160 px: comp's int8 graph (`comp.train.features.int8_tag`: ONNX Runtime's static
quantization, QDQ, per-channel int8 weights, uint8 activations calibrated on 128 of the
sample's images), scored alike.

Cost: milliseconds per image of the network on 2 cores (random 56x56 images enlarged to the
side, batches of 64, best of two), TensorFlow's graph, comp's ONNX Runtime float32 graph and
its int8 one; with OpenVINO installed (`pip install openvino`), both ONNX graphs compiled by
OpenVINO's CPU plugin as well.

    python benchmarks/face_side.py [--images 3000] [--sides 160 128 112 96 80] [--no-int8]
        [--costs-only]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from face_layers import OUT, SHARED, celeba, interval, probe, smilesmiled  # noqa: E402

from comp.metrics import balanced_accuracy  # noqa: E402
from comp.train import extractor, features  # noqa: E402

VIEWS = ("facenet", "facenet-stages-flip")


class _Workspace:
    """What `int8_tag` reads of a workspace: its folder."""

    def __init__(self, root: Path) -> None:
        self.root = root


def costs(sides: list[int], folder: Path) -> list[str]:
    """Milliseconds per image of the network alone at each side: TensorFlow's graph, and
    comp's ONNX Runtime float32 and (at 160 px, the side it is calibrated for) int8 graphs;
    with OpenVINO installed, the same two ONNX graphs compiled by OpenVINO (2 threads) too."""
    pixels = np.random.default_rng(0).integers(0, 256, (256, 56, 56, 3), np.uint8)
    net = features.FACENET
    tag = features.int8_tag("facenet-stages-flip", pixels, ws=_Workspace(folder))
    engines = {"tf": extractor.tensorflow_runner(net, features.STAGES),
               "fp32": extractor.onnx_runner(net, folder),
               "int8": extractor.int8_runner(net, folder, tag)}
    columns = ["TensorFlow graph", "ONNX Runtime float32", "ONNX Runtime int8"]
    graphs = {"ov-fp32": extractor._fp32_path(net, folder),
              "ov-int8": folder / extractor.FOLDER / "engine" / f"{net.name}-{tag}.onnx"}
    engines.update({name: _openvino(path) for name, path in graphs.items()
                    if _openvino(None) is not None})
    if "ov-fp32" in engines:
        columns += ["OpenVINO float32", "OpenVINO int8 (the same graph)"]
    rows = ["| side | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for side in sides:
        x = extractor.prepared(pixels, side)
        best: dict[str, float] = {}
        for _ in range(2):
            for name, run in engines.items():
                if name.endswith("int8") and side != net.side:
                    continue
                run(x[:8])
                started = time.perf_counter()
                for s in range(0, len(x), features.BATCH):
                    run(x[s:s + features.BATCH])
                best[name] = min(best.get(name, np.inf),
                                 (time.perf_counter() - started) / len(x) * 1000)
        rows.append(f"| {side} px | " + " | ".join(
            f"{best[name]:.2f} ms" if name in best else "-" for name in engines) + " |")
        print(rows[-1], flush=True)
    return rows


def _openvino(path: Path | None):  # noqa: ANN202 - a callable on batches, or None
    """OpenVINO's CPU run of an ONNX graph (2 threads, latency hint), or None without
    OpenVINO (or, with `path` None, whether it is installed)."""
    try:
        import openvino
    except ImportError:
        return None
    if path is None:
        return openvino
    compiled = openvino.Core().compile_model(str(path), "CPU", {
        "INFERENCE_NUM_THREADS": 2, "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_PRECISION_HINT": "f32"})
    request = compiled.create_infer_request()
    return lambda x: request.infer({0: x})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=3000, help="per dataset")
    parser.add_argument("--sides", type=int, nargs="+", default=[160, 128, 112, 96, 80])
    parser.add_argument("--no-int8", action="store_true")
    parser.add_argument("--costs-only", action="store_true",
                        help="only the milliseconds per image (on a quiet machine)")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    if not SHARED.exists():
        print(f"skipping: {SHARED} not found")
        return
    cost_rows = costs(args.sides, Path(tempfile.mkdtemp()))
    if args.costs_only:
        return
    rows = []
    for name, load in (("smilesmiled", lambda: smilesmiled(args.images, args.seed)),
                       ("celeba", lambda: celeba(args.images))):
        images, tasks, groups = load()
        variants: dict[tuple[str, str], np.ndarray] = {}
        for side in args.sides:
            for view in VIEWS:
                variants[(view, f"{side}")] = features_at(images, view, name, side)
        if not args.no_int8:  # comp's int8 graph, calibrated on this sample's images
            tag = features.int8_tag("facenet-stages-flip", images, ws=_Workspace(OUT / name))
            for view in VIEWS:
                variants[(view, "160 int8")] = features.features_of(
                    images, name=view, cache_root=OUT / name, int8=tag)
        for task, y in tasks.items():
            keep = y >= 0
            for view in VIEWS:
                preds = {variant: probe(x[keep], y[keep], groups[keep])
                         for (v, variant), x in variants.items() if v == view}
                base = preds[f"{args.sides[0]}"]
                for variant, pred in preds.items():
                    low, high = interval(y[keep], pred, base, args.seed)
                    score = balanced_accuracy(y[keep], pred)
                    rows.append({"task": task, "view": view, "variant": variant,
                                 "images": int(keep.sum()), "score": score,
                                 "minus": score - balanced_accuracy(y[keep], base),
                                 "low": low, "high": high})
                    print(f"RESULT {rows[-1]}", flush=True)
    report(pd.DataFrame(rows), cost_rows)


def features_at(images: np.ndarray, view: str, name: str, side: int) -> np.ndarray:
    return features.features_of(images, name=view, cache_root=OUT / name, side=side)


def report(frame: pd.DataFrame, cost_rows: list[str]) -> None:
    for view, part in frame.groupby("view", sort=False):
        variants = list(dict.fromkeys(part["variant"]))
        print(f"\n{view}: out-of-fold balanced accuracy, the difference from "
              f"{variants[0]} px [95 % paired bootstrap]")
        print("| task | images | " + " | ".join(f"{v} px" for v in variants) + " |")
        print("|---|---|" + "---|" * len(variants))
        for task, rows in part.groupby("task", sort=False):
            cells = [f"{r.score:.4f}" if r.variant == variants[0] else
                     f"{r.score:.4f} ({r.minus:+.4f} [{r.low:+.4f}, {r.high:+.4f}])"
                     for r in rows.itertuples()]
            print(f"| {task} | {rows['images'].iloc[0]} | " + " | ".join(cells) + " |")
        mean = part.groupby("variant", sort=False)[["score", "minus"]].mean()
        print("| mean over tasks | | " + " | ".join(
            f"{mean.loc[v, 'score']:.4f} ({mean.loc[v, 'minus']:+.4f})" for v in variants)
              + " |")
    print("\nthe network alone, ms per image (2 cores, batches of 64, best of two)")
    print("\n".join(cost_rows))


if __name__ == "__main__":
    main()
