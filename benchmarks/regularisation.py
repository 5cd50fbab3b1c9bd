"""The reports' regularisation and initialisation options against the plain models, on CelebA
gender at 50x50 grayscale (as the CelebA report ran it): logistic regression plain, with an
L1 and with an L2 penalty; b3 plain, with an L2 penalty, and with He initialisation. Test set
carved off as `real_data.py` carves it (20 %, grouped by identity); each arm one model on an
70/10/20 train/val/holdout split, `comp submit --test` with the threshold tuned on the
holdout (cross-fitted over its folds); the difference
to the plain model with a paired bootstrap interval.

    python benchmarks/regularisation.py [--epochs 12] [--logreg-epochs 30]
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

ARMS = (  # (model, label, options); the first of each model is its plain baseline
    ("logreg", "plain", {}),
    ("logreg", "--l1 1e-4", {"l1": 1e-4}),
    ("logreg", "--l2 1e-3", {"l2": 1e-3}),
    ("b3", "plain", {}),
    ("b3", "--l2 1e-4", {"l2": 1e-4}),
    ("b3", "--init he", {"init": "he"}),
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--logreg-epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    name = "celeba-male-regularisation"
    DATASETS[name] = DATASETS["celeba-male"]
    challenge, answers = carve(name, args.seed)
    y = answers["label"].to_numpy()
    plain, rows = {}, []
    for k, (model, label, options) in enumerate(ARMS):
        epochs = args.logreg_epochs if model == "logreg" else args.epochs
        pred, seconds, _, _ = trained_score(name, f"arm{k}", challenge, answers, model=model,
                                            epochs=epochs, seed=args.seed, folds=1,
                                            prepare_extra={"split": SPLIT},
                                            **options)
        plain.setdefault(model, pred)
        diff, low, high = paired_bootstrap(y, pred, plain[model], seed=args.seed)
        rows.append((model, label, epochs, metrics.balanced_accuracy(y, pred), diff, low, high,
                     seconds))
        print(f"RESULT {rows[-1]}", flush=True)
    print(f"\nCelebA Male, 50x50 gray, {len(y):,} carved-off test images; one model on an "
          "70/10/20 split, threshold tuned on the holdout:")
    print("| model | options | epochs | balanced accuracy | minus plain [95 % paired "
          "bootstrap] | wall time (s) |\n|---|---|---|---|---|---|")
    for model, label, epochs, score, diff, low, high, seconds in rows:
        print(f"| {model} | {label} | {epochs} | {score:.4f} | {diff:+.4f} [{low:+.4f}, "
              f"{high:+.4f}] | {seconds:,.0f} |")


if __name__ == "__main__":
    main()
