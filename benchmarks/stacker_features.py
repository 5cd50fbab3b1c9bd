"""Does a LightGBM stacker pay on a feature run's embedding? A `facenet*` run's embedding is
its frozen features standardised (5,632 numbers for the five stages, 1,792 for the final pool),
which its own head already reads linearly. On the runs `benchmarks/real_data.py --recipe`
trained (its output folder), out-of-fold over every labelled image: the head alone against
the level-1 stacker `comp submit` would build (one LightGBM per fold model, cross-validated on
that model's own out-of-fold rows: `stacker.member_oof`), and against the same stacker on the
embedding's first 64 principal components; balanced accuracy at the arg-max, ROC AUC, and
the stacker's seconds on this machine.

    python benchmarks/stacker_features.py [--dataset smilesmiled]
        [--run comp-facenet-stages-flip --run comp-facenet]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from comp.runs import RunDir  # noqa: E402
from comp.submit import stacker  # noqa: E402
from comp.submit.evaluate import holdout_predictions, scored_rows  # noqa: E402
from comp.submit.predict import Predictions  # noqa: E402
from comp.workspace import Workspace  # noqa: E402

OUT = Path(__file__).resolve().parent / "out" / "leaderboard"


def scores(y: np.ndarray, prob: np.ndarray) -> str:
    from sklearn.metrics import balanced_accuracy_score, roc_auc_score

    auc = roc_auc_score(y, prob[:, 1]) if prob.shape[1] == 2 else roc_auc_score(
        y, prob, multi_class="ovr")
    return f"{balanced_accuracy_score(y, prob.argmax(1)):.4f} | {auc:.4f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", default="smilesmiled")
    parser.add_argument("--run", action="append")
    args = parser.parse_args()
    base = OUT / args.dataset
    if not (base / "ws-comp").exists():
        print(f"skipping: no {base}/ws-comp (run benchmarks/real_data.py --recipe first)")
        return
    ws = Workspace(base / "ws-comp")
    index, meta = ws.load_index(), ws.load_meta()
    print(f"{args.dataset}: out-of-fold over every labelled image, {os.cpu_count()} cores")
    print("| run | embedding | method | balanced accuracy (arg-max) | ROC AUC | seconds |")
    print("|---|---|---|---|---|---|")
    for name in args.run or ["comp-facenet-stages-flip", "comp-facenet"]:
        run = RunDir(base / "ck" / name)
        if not run.record.exists():
            print(f"| {name} | - | not trained | - | - | - |")
            continue
        rows = scored_rows(ws, index, run)
        y, fold = rows["label"].to_numpy(np.int64), rows["fold"].to_numpy(np.int64)
        groups = rows["split_group"].to_numpy()
        pred = holdout_predictions(ws, index, run, tta=False, fingerprint=meta.fingerprint)
        k, width = pred.prob.shape[1], pred.embedding.shape[1]
        print(f"| {name} | {width} | the head | {scores(y, pred.prob)} | - |")
        from sklearn.decomposition import PCA

        reduced = Predictions(pred.prob, PCA(64, random_state=0).fit_transform(
            pred.embedding).astype(np.float32))
        for label, p in (("LightGBM stacker (comp's level 1)", pred),
                         ("LightGBM on 64 principal components", reduced)):
            started = time.perf_counter()
            oof = stacker.member_oof(p, y, fold, groups, num_classes=k, seed=0)
            seconds = time.perf_counter() - started
            shown = scores(y, oof) if oof is not None else "- | -"
            print(f"| {name} | {width} | {label} | {shown} | {seconds:.1f} |", flush=True)


if __name__ == "__main__":
    main()
