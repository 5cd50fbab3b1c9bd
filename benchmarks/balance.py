"""Class balancing on imbalanced real faces: `comp train --balance none|weights|oversample`,
each arm then `comp submit --test` (the threshold tuned for balanced accuracy in every arm),
scored on a carved-off test set as `real_data.py` carves it (20 %, stratified; grouped by
identity for CelebA). Datasets: CelebA Eyeglasses (6.7 % positive) and smilesmiled (28 %).
Each arm is one model on a 70/10/20 train/val/holdout split (`comp submit` tunes the
threshold on the holdout, cross-fitted over its folds), the
same seed and epochs; the difference to `none` with a paired bootstrap interval.

    python benchmarks/balance.py [--epochs 8] [--model res] [--only smilesmiled]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from real_data import DATASETS, carve, paired_bootstrap, trained_score  # noqa: E402

from comp import metrics  # noqa: E402

SPLIT = (0.7, 0.1, 0.2)  # train, val (early choice of epoch), holdout (the threshold)

ARMS = ("none", "weights", "oversample")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--model", default="res")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--only", choices=("celeba-eyeglasses", "smilesmiled"), action="append")
    args = parser.parse_args()
    rows = []
    for dataset in args.only or ("celeba-eyeglasses", "smilesmiled"):
        name = f"{dataset}-balance"
        DATASETS[name] = DATASETS[dataset]
        challenge, answers = carve(name, args.seed)
        y = answers["label"].to_numpy()
        print(f"{dataset}: {len(y):,} test images ({int(y.sum()):,} positive)", flush=True)
        preds = {}
        for balance in ARMS:
            pred, seconds, _, _ = trained_score(name, balance, challenge, answers,
                                                model=args.model, epochs=args.epochs,
                                                seed=args.seed, folds=1, balance=balance,
                                                prepare_extra={"split": SPLIT})
            preds[balance] = pred
            diff, low, high = paired_bootstrap(y, pred, preds["none"], seed=args.seed)
            rows.append((dataset, balance, metrics.balanced_accuracy(y, pred), diff, low,
                         high, seconds))
            print(f"RESULT {rows[-1]}", flush=True)
    print(f"\n{args.model}, {args.epochs} epochs, one model on a 70/10/20 split, "
          "threshold tuned on the holdout; balanced accuracy on the carved-off test:")
    print("| dataset | --balance | balanced accuracy | minus none [95 % paired bootstrap] | "
          "wall time (s) |\n|---|---|---|---|---|")
    for dataset, balance, score, diff, low, high, seconds in rows:
        print(f"| {dataset} | {balance} | {score:.4f} | {diff:+.4f} [{low:+.4f}, {high:+.4f}] | "
              f"{seconds:,.0f} |")


if __name__ == "__main__":
    main()
