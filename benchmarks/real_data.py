"""The whole pipeline on the shared real face datasets, with the seed methods side by side.

For each dataset, on the same prepared splits, in one run:
  logreg        logistic regression on grayscale pixels (`comp train --model logreg`), at 0.5;
  report's b3   b3, threshold 0.5, no ensemble, no leak override;
  comp best     the same b3 with the threshold tuned out-of-fold on the holdout, the LightGBM
                ensemble when its out-of-fold score is higher, and the leak override (which
                finds nothing on the holdout: duplicate groups never straddle the split).
Scores are balanced accuracy (and plain accuracy) on the holdout split; comp best's are
out-of-fold, so no holdout image is scored by a rule that was tuned on it.

    python benchmarks/real_data.py [--epochs 20] [--logreg-epochs 30] [--only smilesmiled]
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

from comp import metrics  # noqa: E402
from comp.config import PrepareConfig, TrainConfig  # noqa: E402
from comp.prepare import prepare  # noqa: E402
from comp.prepare.splits import assign_folds  # noqa: E402
from comp.runs import RunDir  # noqa: E402
from comp.submit import stacker  # noqa: E402
from comp.submit.decision import oof_decisions  # noqa: E402
from comp.submit.evaluate import holdout_predictions  # noqa: E402
from comp.train import train  # noqa: E402
from comp.workspace import Workspace  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
OUT = Path(__file__).resolve().parent / "out" / "real"

DATASETS = {
    # name: (folder, labels file, label column, prepare options)
    "smilesmiled": ("smilesmiled", "labels.csv", "label", {"gray": True}),
    "celeba-male": ("celeba-first10k", "labels.csv", "label",
                    {"gray": True, "size": (50, 50), "groups": "meta.csv:celeba_identity"}),
    "celeba-eyeglasses": ("celeba-first10k", "attributes.csv", "Eyeglasses",
                          {"size": (50, 50), "groups": "meta.csv:celeba_identity"}),
}


def _scores(y: np.ndarray, pred: np.ndarray) -> tuple[float, float]:
    return metrics.balanced_accuracy(y, pred), float((y == pred).mean())


def run_dataset(name: str, epochs: int, logreg_epochs: int, seed: int) -> list[dict]:
    folder, labels, column, options = DATASETS[name]
    root = SHARED / folder
    options = dict(options)
    if "groups" in options:
        file, col = options["groups"].split(":")
        options["groups"] = f"{root / file}:{col}"
    ws = OUT / name / "workspace"
    ck = OUT / name / "checkpoints"
    shutil.rmtree(OUT / name, ignore_errors=True)
    started = time.perf_counter()
    summary = prepare(PrepareConfig(train=root / "images", labels=root / labels,
                                    label_column=column, workspace=ws, seed=seed,
                                    **options)).summary
    prep_s = time.perf_counter() - started
    print(f"{name}: prepared {summary['images_read']} images in {prep_s:.0f} s "
          f"({summary['duplicate_groups']} duplicate groups, {summary['conflict_groups']} "
          f"conflicts, {summary.get('identity_groups', '-')} identity groups)", flush=True)
    w = Workspace(ws)
    index = w.load_index()
    _, y, rows = w.split("holdout", index)
    fingerprint = w.load_meta().fingerprint
    folds = assign_folds(rows["split_group"].to_numpy(), y, k=5, seed=seed)
    results = []
    for model, n_epochs in (("logreg", logreg_epochs), ("b3", epochs)):
        t = time.perf_counter()
        run = train(TrainConfig(workspace=ws, model=model, epochs=n_epochs, checkpoints=ck,
                                run_name=model, seed=seed, progress=False))
        train_s = time.perf_counter() - t
        pred = holdout_predictions(w, index, RunDir(ck / run.run), tta=False,
                                   fingerprint=fingerprint)
        ba, acc = _scores(y, metrics.predict_labels(pred.prob))
        label = "logreg (0.5)" if model == "logreg" else "report's b3 (0.5, no ensemble)"
        results.append({"dataset": name, "method": label, "balanced_accuracy": ba,
                        "accuracy": acc, "epochs": n_epochs, "seconds": train_s + prep_s})
        if model == "b3":
            t = time.perf_counter()
            cnn = oof_decisions(pred.prob, y, folds, num_classes=2)
            lgbm = stacker.oof_lgbm(stacker.stack_features(pred), y, folds, num_classes=2,
                                    seed=seed)
            ens = oof_decisions(lgbm, y, folds, num_classes=2)
            use = metrics.balanced_accuracy(y, ens) > metrics.balanced_accuracy(y, cnn)
            ba, acc = _scores(y, ens if use else cnn)
            results.append({"dataset": name, "method": "comp best (tuned threshold"
                            + (", LightGBM" if use else ", no LightGBM: CNN alone scored higher")
                            + ", leak override)", "balanced_accuracy": ba, "accuracy": acc,
                            "epochs": n_epochs,
                            "seconds": train_s + prep_s + time.perf_counter() - t})
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--logreg-epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--only", choices=sorted(DATASETS))
    args = parser.parse_args()
    if not SHARED.exists():
        print(f"skipping: the shared datasets are not at {SHARED}")
        return
    rows = []
    for name in DATASETS:
        if args.only and name != args.only:
            continue
        if not (SHARED / DATASETS[name][0] / "images").exists():
            print(f"skipping {name}: not in {SHARED}")
            continue
        done = run_dataset(name, args.epochs, args.logreg_epochs, args.seed)
        for r in done:
            print(f"RESULT {r}", flush=True)
        rows += done
    print("\n| dataset | method | balanced accuracy | accuracy | epochs | wall time (s) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['dataset']} | {r['method']} | {r['balanced_accuracy']:.4f} | "
              f"{r['accuracy']:.4f} | {r['epochs']} | {r['seconds']:.0f} |")


if __name__ == "__main__":
    main()
