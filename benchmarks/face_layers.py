"""Which FaceNet view a feature model should read: the final pool (identity), the last block
of each stage side by side, each with or without the flipped image averaged in.

For each task, a sample of labelled faces of ../shared/data is read as comp stores them
(smilesmiled: gray 64x64; CelebA: 50x50 RGB, folds grouped by identity), every view's
features computed by comp (`comp.train.features.features_of`, cached per layer in
benchmarks/out/face-layers/), and each view scored by the same linear probe: standardised
features, L2 logistic regression (balanced class weights, C=0.05), 5 folds, out-of-fold
balanced accuracy (a K-class task: arg-max). Beside each view: its difference from the final
pool with a 95 % paired bootstrap interval (2,000 resamples of the images), and the cost of
its features per image (one pass, or two with the flip; measured on the first 256 images
with nothing cached, each view alone).

    python benchmarks/face_layers.py [--images 3000] [--only smilesmiled]
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
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from comp.metrics import balanced_accuracy  # noqa: E402
from comp.train.features import VIEWS, features_of  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
OUT = Path(__file__).resolve().parent / "out" / "face-layers"
HAIR = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair")
CELEBA_TASKS = ("Male", "Eyeglasses", "Smiling", "Young", HAIR)
BOOTSTRAP = 2000
TIMED = 256


def smilesmiled(n: int, seed: int) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    from PIL import Image

    labels = pd.read_csv(SHARED / "smilesmiled" / "labels.csv", dtype={"id": str})
    labels = labels.sample(n=min(n, len(labels)), random_state=seed).reset_index(drop=True)
    images = np.stack([np.asarray(Image.open(SHARED / "smilesmiled" / "images" / f"{i}.jpg")
                                  .convert("L").resize((64, 64), Image.BILINEAR))[..., None]
                       for i in labels["id"]])
    return images, {"smilesmiled": labels["label"].to_numpy()}, np.arange(len(labels))


def celeba(n: int) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    from PIL import Image

    root = SHARED / "celeba-first10k"
    attributes = pd.read_csv(root / "attributes.csv", dtype={"id": str}).head(n)
    meta = pd.read_csv(root / "meta.csv", dtype={"id": str}).set_index("id")
    groups = pd.factorize(meta.loc[attributes["id"], "celeba_identity"])[0]
    images = np.stack([np.asarray(Image.open(root / "images" / f"{i}.jpg").convert("RGB")
                                  .resize((50, 50), Image.BILINEAR))
                       for i in attributes["id"]])
    tasks = {}
    for task in CELEBA_TASKS:
        if isinstance(task, tuple):
            onehot = attributes[list(task)].to_numpy()
            tasks["CelebA hair (4 classes)"] = np.where(onehot.sum(axis=1) == 1,
                                                        onehot.argmax(axis=1), -1)
        else:
            tasks[f"CelebA {task}"] = attributes[task].to_numpy()
    return images, tasks, groups


def probe(x: np.ndarray, y: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Out-of-fold predictions of the linear probe."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(
        C=0.05, max_iter=3000, class_weight="balanced"))
    return cross_val_predict(model, x, y, groups=groups, cv=GroupKFold(5), n_jobs=1)


def interval(y: np.ndarray, a: np.ndarray, b: np.ndarray, seed: int) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(BOOTSTRAP):
        i = rng.integers(0, len(y), len(y))
        diffs.append(balanced_accuracy(y[i], a[i]) - balanced_accuracy(y[i], b[i]))
    low, high = np.percentile(diffs, [2.5, 97.5])
    return float(low), float(high)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=3000, help="per dataset")
    parser.add_argument("--only", choices=("smilesmiled", "celeba"), action="append")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    if not SHARED.exists():
        print(f"skipping: {SHARED} not found")
        return
    sets = {"smilesmiled": lambda: smilesmiled(args.images, args.seed),
            "celeba": lambda: celeba(args.images)}
    rows, costs = [], {}
    for name, load in sets.items():
        if args.only and name not in args.only:
            continue
        images, tasks, groups = load()
        for view in VIEWS:  # cost: each view alone, its graph loaded, nothing cached
            features_of(images[:8], name=view, cache_root=None)
            with tempfile.TemporaryDirectory() as cold:
                started = time.perf_counter()
                features_of(images[:TIMED], name=view, cache_root=Path(cold))
                costs.setdefault(view, []).append(
                    (time.perf_counter() - started) / TIMED * 1000)
        features = {view: features_of(images, name=view, cache_root=OUT / name)
                    for view in VIEWS}
        for task, y in tasks.items():
            keep = y >= 0
            preds = {view: probe(x[keep], y[keep], groups[keep])
                     for view, x in features.items()}
            base = preds["facenet"]
            for view, pred in preds.items():
                low, high = interval(y[keep], pred, base, args.seed)
                rows.append({"task": task, "view": view, "images": int(keep.sum()),
                             "score": balanced_accuracy(y[keep], pred),
                             "minus": balanced_accuracy(y[keep], pred)
                             - balanced_accuracy(y[keep], base), "low": low, "high": high})
                print(f"RESULT {rows[-1]}", flush=True)
    frame = pd.DataFrame(rows)
    print("\n| task | images | " + " | ".join(VIEWS) + " |")
    print("|---|---|" + "---|" * len(VIEWS))
    for task, part in frame.groupby("task", sort=False):
        cells = [f"{r.score:.4f}" if r.view == "facenet" else
                 f"{r.score:.4f} ({r.minus:+.4f} [{r.low:+.4f}, {r.high:+.4f}])"
                 for r in part.itertuples()]
        print(f"| {task} | {part['images'].iloc[0]} | " + " | ".join(cells) + " |")
    mean = frame.groupby("view", sort=False)[["score", "minus"]].mean()
    print("| mean over tasks | | " + " | ".join(
        f"{mean.loc[v, 'score']:.4f} ({mean.loc[v, 'minus']:+.4f})" for v in VIEWS) + " |")
    print("| ms per image (features, 2 cores) | | " + " | ".join(
        f"{np.mean(costs[v]):.1f}" for v in VIEWS) + " |")


if __name__ == "__main__":
    main()
