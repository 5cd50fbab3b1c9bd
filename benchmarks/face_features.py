"""FaceNet's input side against its cost and what its features know.

The first 2,000 CelebA faces of ../shared/data/celeba-first10k, stored as comp stores them
for the CelebA tasks (50x50 RGB, bilinear), are enlarged to each side, standardised and
passed through comp's FaceNet (`comp.train.features.extract`); per side: milliseconds per
image (batches of 64, the wall time of the whole extraction) and the balanced accuracy of a
linear probe (standardised features, L2 logistic regression C=0.05, balanced class weights)
over 5 identity-grouped folds, for four attributes. The pixels themselves (gray 50x50,
the same probe) are the baseline.

    python benchmarks/face_features.py [--images 2000] [--sides 160,128,96]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from comp.train.features import extract  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "celeba-first10k"
ATTRIBUTES = ("Eyeglasses", "Male", "Heavy_Makeup", "Smiling")


def probe(x: np.ndarray, y: np.ndarray, groups: np.ndarray) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.model_selection import GroupKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(
        C=0.05, max_iter=2000, class_weight="balanced"))
    pred = cross_val_predict(model, x, y, groups=groups, cv=GroupKFold(5))
    return float(balanced_accuracy_score(y, pred))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--sides", default="160,128,96")
    args = parser.parse_args()
    if not SHARED.exists():
        print(f"skipping: {SHARED} not found")
        return
    from PIL import Image

    attributes = pd.read_csv(SHARED / "attributes.csv", dtype={"id": str}).head(args.images)
    meta = pd.read_csv(SHARED / "meta.csv", dtype={"id": str}).set_index("id")
    groups = meta.loc[attributes["id"], "celeba_identity"].to_numpy()
    images = np.stack([np.asarray(Image.open(SHARED / "images" / f"{i}.jpg").convert("RGB")
                                  .resize((50, 50), Image.BILINEAR))
                       for i in attributes["id"]])
    gray = images.astype(np.float32).mean(axis=3).reshape(len(images), -1)
    rows = [("pixels (gray 50x50)", "-", [probe(gray, attributes[a].to_numpy(), groups)
                                          for a in ATTRIBUTES])]
    for side in (int(s) for s in args.sides.split(",")):
        started = time.perf_counter()
        features = extract(images, name="facenet", side=side)
        ms = (time.perf_counter() - started) / len(images) * 1000
        rows.append((f"FaceNet at {side} px", f"{ms:.1f}",
                     [probe(features, attributes[a].to_numpy(), groups) for a in ATTRIBUTES]))
        print(rows[-1], flush=True)
    print(f"\n| input | ms per image | {' | '.join(ATTRIBUTES)} |")
    print("|---|---|" + "---|" * len(ATTRIBUTES))
    for name, ms, scores in rows:
        print(f"| {name} | {ms} | " + " | ".join(f"{s:.3f}" for s in scores) + " |")


if __name__ == "__main__":
    main()
