"""An ImageNet backbone beside the best recipe, on the leaderboard's carved-off test.

Run after `python benchmarks/real_data.py --only DATASET --no-baselines --recipe`, on the
workspace and runs it left in benchmarks/out/leaderboard/DATASET (the same carved-off test,
the same 5 prepared folds): `comp train --model mobilenetv2 --weights WEIGHTS` (torchvision's
ImageNet MobileNetV2, the warm-up then fine-tuning, 5 fold models), then three submits, each
`comp submit --test`: the default (`comp-res` alone; its rule cached), the backbone alone,
and the three runs together (`comp-res`, `comp-facenet`, the backbone). Balanced accuracy on
the test, minus the default with a paired bootstrap interval, and wall times.

    python benchmarks/backbone.py --dataset celeba-eyeglasses --weights WHEEL_OR_PTH
        [--epochs 8] [--input-scale 1] [--reuse]

`--reuse` keeps a finished `comp-mobilenetv2` run of an earlier call (same workspace) and
reports its training time as the sum of its epochs' seconds (history.csv of each fold).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from real_data import OUT, _submitted, paired_bootstrap  # noqa: E402

from comp import metrics  # noqa: E402
from comp.config import TrainConfig  # noqa: E402
from comp.train import train  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--weights", required=True)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--input-scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--reuse", action="store_true",
                        help="keep a finished comp-mobilenetv2 run instead of training again")
    args = parser.parse_args()
    root = OUT / args.dataset
    ws, ck, challenge = root / "ws-comp", root / "ck", root / "challenge"
    if not (ck / "comp-res").exists() or not (ck / "comp-facenet").exists():
        print(f"skipping: run benchmarks/real_data.py --only {args.dataset} --no-baselines "
              f"--recipe first (no comp-res and comp-facenet runs in {ck})")
        return
    answers = pd.read_csv(root / "answers.csv", dtype={"id": str})
    y = answers["label"].to_numpy()
    run = "comp-mobilenetv2"
    if args.reuse and (ck / run / "current" / "run.json").exists():
        trained = _epoch_seconds(ck / run)
        print(f"reusing {ck / run} (its epochs took {trained:.0f} s in all)", flush=True)
    else:
        started = time.perf_counter()
        train(TrainConfig(workspace=ws, model="mobilenetv2", weights=args.weights,
                          epochs=args.epochs, input_scale=args.input_scale, checkpoints=ck,
                          run_name=run, seed=args.seed, progress=False))
        trained = time.perf_counter() - started
    arms = {"comp default (res)": ("comp-res",), "mobilenetv2 alone": (run,),
            "res + facenet + mobilenetv2": ("comp-res", "comp-facenet", run)}
    preds = {}
    for label, runs in arms.items():
        pred, seconds, how = _submitted(ws, ck, runs, challenge, answers, args.seed,
                                        label.split()[0].replace("+", ""))
        preds[label] = pred
        extra = trained if run in runs else 0.0
        print(f"  {label}: {metrics.balanced_accuracy(y, pred):.4f} (submit {seconds:.0f} s"
              f"{f', training {extra:.0f} s' if extra else ''}); {how}", flush=True)
    base = preds["comp default (res)"]
    print("\n| method | test balanced accuracy | minus the default [95 % interval] |")
    print("|---|---|---|")
    for label, pred in preds.items():
        diff, low, high = paired_bootstrap(y, pred, base, seed=args.seed)
        print(f"| {label} | {metrics.balanced_accuracy(y, pred):.4f} | {diff:+.4f} "
              f"[{low:+.4f}, {high:+.4f}] |")


def _epoch_seconds(run_dir: Path) -> float:
    """The training time of a finished run: its folds' epoch seconds, summed."""
    return float(sum(pd.read_csv(h)["seconds"].sum()
                     for h in sorted(run_dir.glob("fold-*/current/history.csv"))))


if __name__ == "__main__":
    main()
