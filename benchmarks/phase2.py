"""Phase 2, fast: from `comp submit --test NEW_DIR` to a validated CSV, on a workspace prepared
and trained in phase 1 (the phase-1 submit has cached the decision rule and, on a CPU, the
ONNX graph of the run's models), new images cold. Target on 2 cores: under 15 s for a
20,000-image test set with a one-model run, under 30 s with a 5-fold cross-fitted run (five
models predict every image). The command runs with --profile, so its own stage timings
(ingest: decode, overlap, index; decision; prediction; CSV) print above the total.

Then, side by side, the same phase 2 with Keras predicting (ONNX Runtime switched off: the
reference), cold again: its time, and how many of the CSV's labels equal Keras' (target: at
least 99.9 %, the balanced accuracy the same to 0.001).

    python benchmarks/phase2.py --workspace W --checkpoints C --run RUN [--run RUN2 ...]
        --test DIR [--answers CSV] [--no-keras] [--make-test FACES --images N]

A feature run (FaceNet's features of the new images) is timed the same way; the reference
then also computes the features by TensorFlow's graph (today's path before ONNX Runtime).
`--make-test ../shared/data/smilesmiled --images 20000` first writes N new faces into --test
(each a labelled face of that dataset shifted by up to 3 pixels and its brightness scaled by
0.85-1.15, so no feature of it is cached) and their labels into --answers, when --test is
absent.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workspace", type=Path, required=True)
    parser.add_argument("--checkpoints", type=Path, required=True)
    parser.add_argument("--run", required=True, action="append",
                        help="a run the submit reads; repeat it for several (a recipe)")
    parser.add_argument("--test", type=Path, required=True)
    parser.add_argument("--answers", type=Path)
    parser.add_argument("--submissions", type=Path,
                        default=Path(__file__).resolve().parent / "out" / "submissions")
    parser.add_argument("--no-keras", action="store_true",
                        help="skip the second phase 2 with Keras predicting")
    parser.add_argument("--make-test", type=Path,
                        help="a ../shared/data folder to make --test from (when absent)")
    parser.add_argument("--images", type=int, default=20000)
    parser.add_argument("--reference-run", action="append",
                        help="the runs of the reference phase 2 (default: --run), e.g. a "
                             "float32 feature run against an int8 one")
    parser.add_argument("--phase1-test", type=Path,
                        help="the test folder of phase 1's submit, for a workspace prepared "
                             "without val images")
    args = parser.parse_args()
    if args.make_test and not args.test.exists():
        make_test(args.make_test, args.test, args.answers, images=args.images)
    common = _common(args, args.run)
    reference_common = _common(args, args.reference_run or args.run)
    # phase 1 fits and caches the decision rule (not timed)
    first = ["--test", str(args.phase1_test)] if args.phase1_test else []
    subprocess.run([sys.executable, "-m", "comp.cli", "submit", *common, *first], check=True)
    if args.reference_run:
        subprocess.run([sys.executable, "-m", "comp.cli", "submit", *reference_common, *first],
                       check=True)
    cached = _keep_features(args.workspace)
    from comp.runs import RunDir
    from comp.specs import spec

    models = sum(len(RunDir(args.checkpoints / run).members()) for run in args.run)
    features = any(spec(RunDir(args.checkpoints / run).load_record().model).features
                   for run in args.run)
    target = ("none: a feature run computes the new images' frozen features" if features
              else f"< {15 if models == 1 else 30} s")
    csv, seconds, info = _phase2(args, common, keras_only=False, features=cached)
    print(f"\nphase 2: {info['images']:,} new test images -> {csv} in {seconds:.1f} s from "
          f"command to validated CSV with {models} model(s) (new images evicted from the page "
          f"cache; target {target}); leaks: {info['leaks']['applied']} "
          f"({info['leaks']['matched']} matched, {info['leaks']['changed']} changed)",
          flush=True)
    if args.answers:
        from comp.submit.submission import score_against

        print(f"balanced accuracy against the answers: {score_against(csv, args.answers):.4f}")
    if args.no_keras:
        return
    import pandas as pd

    reference, keras_seconds, _ = _phase2(args, reference_common, keras_only=True,
                                          features=cached)
    a, b = pd.read_csv(csv, dtype=str), pd.read_csv(reference, dtype=str)
    both = a.merge(b, on=a.columns[0], suffixes=("", "_keras"))
    label = a.columns[1]
    same = float((both[label] == both[f"{label}_keras"]).mean())
    runs = " + ".join(args.reference_run or args.run)
    print(f"\nthe reference phase 2 ({runs}; Keras predicting, TensorFlow's graph computing "
          f"float32 features): {keras_seconds:.1f} s; labels equal to the reference on "
          f"{same:.4%} of the {len(a):,} images (target >= 99.9 % for the same runs)")
    if args.answers:
        print(f"balanced accuracy against the answers, Keras predicting: "
              f"{score_against(reference, args.answers):.4f}")


KERAS_ONLY = ("import sys, runpy; import comp.submit.engine as e; e.OFF = True; "
              "import comp.train.extractor as f; f.ONNX = False; "
              "sys.argv[0] = 'comp'; runpy.run_module('comp.cli', run_name='__main__')")


def _common(args: argparse.Namespace, runs: list[str]) -> list[str]:
    return ["-w", str(args.workspace), "--checkpoints", str(args.checkpoints),
            *[a for run in runs for a in ("--run", run)], "--submissions",
            str(args.submissions)]


def _keep_features(workspace: Path) -> Path | None:
    """A copy of the workspace's cached frozen features before phase 2, so that every timed
    phase 2 computes the new images' features (put back before each)."""
    import shutil
    import tempfile

    folder = workspace / "features"
    if not folder.is_dir():
        return None
    copy = Path(tempfile.mkdtemp()) / "features"
    shutil.copytree(folder, copy)
    return copy


def _phase2(args: argparse.Namespace, common: list[str], *, keras_only: bool,
            features: Path | None) -> tuple[Path, float, dict]:
    """One timed phase 2 on cold test images (and cold features): (its CSV, seconds, its
    manifest)."""
    import os
    import shutil

    if features is not None:
        shutil.rmtree(args.workspace / "features")
        shutil.copytree(features, args.workspace / "features")

    for path in args.test.iterdir():  # cold: evict just those files from the page cache
        fd = os.open(path, os.O_RDONLY)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)
    command = ([sys.executable, "-c", KERAS_ONLY] if keras_only
               else [sys.executable, "-m", "comp.cli"])
    started = time.perf_counter()
    subprocess.run([*command, "submit", *common, "--test", str(args.test), "--profile"],
                   check=True)  # prints its stage table
    seconds = time.perf_counter() - started
    manifest = max(args.submissions.glob("*.json"), key=lambda p: p.stat().st_mtime_ns)
    info = json.loads(manifest.read_text())
    return Path(info["csv"]), seconds, info


def make_test(source: Path, test: Path, answers: Path | None, *, images: int) -> None:
    """N new faces made from a labelled dataset's images (shifted, brightness scaled)."""
    import numpy as np
    import pandas as pd
    from PIL import Image

    labels = pd.read_csv(source / "labels.csv", dtype={"id": str})
    rng = np.random.default_rng(0)
    picks = rng.integers(0, len(labels), images)
    tmp = test.with_name(test.name + ".partial")
    tmp.mkdir(parents=True, exist_ok=True)
    rows = []
    for k, at in enumerate(picks):
        image = Image.open(source / "images" / f"{labels['id'][at]}.jpg")
        pixels = np.asarray(image, np.float32)
        dy, dx = rng.integers(-3, 4, 2)
        pixels = np.roll(pixels, (dy, dx), axis=(0, 1)) * rng.uniform(0.85, 1.15)
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), image.mode).save(
            tmp / f"new_{k}.jpg", quality=90)
        rows.append((f"new_{k}", labels["label"][at]))
    tmp.rename(test)
    if answers is not None:
        pd.DataFrame(rows, columns=["id", "label"]).to_csv(answers, index=False)
    print(f"made {images:,} new faces from {source} in {test}")


if __name__ == "__main__":
    main()
