"""Which head on frozen FaceNet features: comp's (`comp train --model facenet`, one per fold,
40 epochs, trained here into benchmarks/out/feature-head/) against an L2 logistic regression
(scikit-learn, standardised features, C from 0.01, 0.05, 0.2 chosen on each training part's
own inner folds), on the same out-of-fold protocol.

Run after `python benchmarks/real_data.py --only DATASET --no-baselines --recipe`: it reads
that workspace (its prepared folds and its cached FaceNet features) and scores both heads the
same way:
`pick_rule` (the threshold or class offsets tuned out-of-fold where they beat 0.5 / arg-max
by their spread), on every labelled image.

    python benchmarks/feature_head.py --dataset celeba-eyeglasses [--dataset smilesmiled]
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from comp.config import TrainConfig  # noqa: E402
from comp.runs import RunDir  # noqa: E402
from comp.submit.evaluate import holdout_predictions  # noqa: E402
from comp.submit.select import pick_rule  # noqa: E402
from comp.train import train  # noqa: E402
from comp.train.features import features_of  # noqa: E402
from comp.workspace import Workspace  # noqa: E402

OUT = Path(__file__).resolve().parent / "out" / "leaderboard"
CS = (0.01, 0.05, 0.2)


def logistic_oof(x: np.ndarray, y: np.ndarray, fold: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    prob = np.zeros((len(y), int(y.max()) + 1))
    for k in np.unique(fold):
        fit = fold != k
        search = GridSearchCV(
            make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000)),
            {"logisticregression__C": CS}, scoring="balanced_accuracy",
            cv=StratifiedKFold(3, shuffle=True, random_state=seed))
        search.fit(x[fit], y[fit])
        prob[~fit] = search.predict_proba(x[~fit])
    return prob


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", action="append", required=True)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    print("| dataset (labelled images) | comp's head (out-of-fold) | logistic regression "
          "(out-of-fold) |")
    print("|---|---|---|")
    for name in args.dataset:
        ws = Workspace(OUT / name / "ws-comp")
        if not ws.is_prepared():
            print(f"skipping {name}: run benchmarks/real_data.py --only {name} "
                  "--no-baselines --recipe first")
            continue
        rows = ws.labelled(ws.load_index())
        y, fold = rows["label"].to_numpy(), rows["fold"].to_numpy()
        x = features_of(np.asarray(ws.load_store("train")[rows["row"].to_numpy()]),
                        name="facenet", cache_root=ws.root)
        ck = Path(__file__).resolve().parent / "out" / "feature-head" / name
        shutil.rmtree(ck, ignore_errors=True)
        train(TrainConfig(workspace=ws.root, model="facenet", epochs=40, checkpoints=ck,
                          run_name="head", seed=args.seed, progress=False))
        meta = ws.load_meta()
        pred = holdout_predictions(ws, ws.load_index(), RunDir(ck / "head"), tta=False,
                                   fingerprint=meta.fingerprint)
        head = pick_rule(pred.prob, y, fold, seed=args.seed)[1]
        logistic = pick_rule(logistic_oof(x, y, fold, args.seed), y, fold, seed=args.seed)[1]
        print(f"| {name} ({len(y):,}) | {head:.4f} | {logistic:.4f} |", flush=True)


if __name__ == "__main__":
    main()
