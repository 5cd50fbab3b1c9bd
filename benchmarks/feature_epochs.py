"""How many epochs (and how large a batch) the preset's FaceNet head needs, out-of-fold.

The preset's feature run (`facenet-stages-flip`: comp's head, a batch-normalised logistic
regression with dropout 0.2, on FaceNet's five stages flip-averaged, int8 features) trains
one head per fold for 40 epochs at batch 124; once its features are cached, that is all its
training costs. For each dataset (the workspace of `benchmarks/real_data.py`: its carved-off
test kept apart, 5 prepared folds; carved and prepared here when absent), the features are
computed once (a 1-epoch run, discarded), then the same run is trained by `comp train` at
each setting (epochs, batch size) and scored out-of-fold on every labelled image through
comp's own rule (`pick_rule`: 0.5 / arg-max, or the threshold or class offsets tuned on the
other folds where they beat it by their spread). Beside each setting: its score minus the
first setting's with a 95 % paired bootstrap interval (2,000 resamples of the labelled
images), and its training wall time (the five heads, their checkpoints and records; the
features read from the cache).

    python benchmarks/feature_epochs.py [--dataset smilesmiled ...] [--setting 40/124 ...]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from real_data import DATASETS, OUT, SHARED, _prepare, carve, paired_bootstrap  # noqa: E402

from comp.config import TrainConfig  # noqa: E402
from comp.runs import RunDir  # noqa: E402
from comp.submit.evaluate import holdout_predictions  # noqa: E402
from comp.submit.select import _decide  # noqa: E402
from comp.train import extractor, train  # noqa: E402
from comp.workspace import Workspace  # noqa: E402

MODEL = "facenet-stages-flip"
RUNS = Path(__file__).resolve().parent / "out" / "feature-epochs"
DEFAULT_SETTINGS = ("40/124", "20/124", "12/124", "40/512")


def workspace(name: str, seed: int) -> Workspace:
    """real_data.py's workspace of this dataset (carved and prepared when absent)."""
    root = OUT / name / "ws-comp"
    if not Workspace(root).is_prepared():
        challenge, _ = carve(name, seed)
        _prepare(name, challenge, root, seed)
    return Workspace(root)  # read anew: the prepared version


def trained(ws: Workspace, name: str, *, epochs: int, batch: int, seed: int) -> float:
    """Seconds to train the run of this setting (a new one)."""
    ck = RUNS / name
    shutil.rmtree(ck / f"e{epochs}-b{batch}", ignore_errors=True)
    started = time.perf_counter()
    train(TrainConfig(workspace=ws.root, model=MODEL, epochs=epochs, batch_size=batch,
                      checkpoints=ck, run_name=f"e{epochs}-b{batch}", seed=seed,
                      progress=False))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", action="append", choices=tuple(DATASETS))
    parser.add_argument("--setting", action="append",
                        help="EPOCHS/BATCH; the first is the baseline (default: "
                             f"{' '.join(DEFAULT_SETTINGS)})")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    if not SHARED.exists():
        print(f"skipping: {SHARED} not found")
        return
    settings = [tuple(int(v) for v in s.split("/")) for s in args.setting or DEFAULT_SETTINGS]
    rows = []
    for name in args.dataset or tuple(DATASETS):
        ws = workspace(name, args.seed)
        started = time.perf_counter()
        trained(ws, name, epochs=1, batch=settings[0][1], seed=args.seed)  # the features
        print(f"{name}: features and a 1-epoch run {time.perf_counter() - started:.0f} s",
              flush=True)
        shutil.rmtree(RUNS / name / f"e1-b{settings[0][1]}", ignore_errors=True)
        index = ws.load_index()
        labelled = ws.labelled(index)
        y, fold = labelled["label"].to_numpy(), labelled["fold"].to_numpy()
        decisions = {}
        for epochs, batch in settings:
            seconds = trained(ws, name, epochs=epochs, batch=batch, seed=args.seed)
            run = RunDir(RUNS / name / f"e{epochs}-b{batch}")
            pred = holdout_predictions(ws, index, run, tta=False,
                                       fingerprint=ws.load_meta().fingerprint)
            _, score, decisions[epochs, batch] = _decide(pred.prob, y, fold, seed=args.seed)
            minus, low, high = paired_bootstrap(y, decisions[epochs, batch],
                                                decisions[settings[0]], seed=args.seed)
            best = [int(pd.read_csv(m.history)["val_balanced_accuracy"].idxmax()) + 1
                    for m in run.fold_dirs()]
            rows.append({"dataset": name, "images": len(y), "epochs": epochs, "batch": batch,
                         "score": score, "minus": minus, "low": low, "high": high,
                         "seconds": seconds, "best": float(np.mean(best))})
            print(f"RESULT {rows[-1]}", flush=True)
        extractor._RUNNERS.clear()  # each workspace's sessions (and their arenas) let go
    frame = pd.DataFrame(rows)
    print("\n| dataset (labelled images) | epochs / batch | out-of-fold balanced accuracy | "
          f"minus {settings[0][0]}/{settings[0][1]} [95 % paired bootstrap] | "
          "training (s) | best epoch (mean of 5) |")
    print("|---|---|---|---|---|---|")
    for r in frame.itertuples():
        print(f"| {r.dataset} ({r.images:,}) | {r.epochs} / {r.batch} | {r.score:.4f} | "
              f"{r.minus:+.4f} [{r.low:+.4f}, {r.high:+.4f}] | {r.seconds:.0f} | "
              f"{r.best:.1f} |")
    mean = frame.groupby(["epochs", "batch"], sort=False)[["minus", "seconds"]].mean()
    for (epochs, batch), r in mean.iterrows():
        print(f"| mean over datasets | {epochs} / {batch} | | {r['minus']:+.4f} | "
              f"{r['seconds']:.0f} | |")


if __name__ == "__main__":
    main()
