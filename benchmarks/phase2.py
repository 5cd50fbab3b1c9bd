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
        --test DIR [--answers CSV] [--no-keras]
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
    args = parser.parse_args()
    common = ["-w", str(args.workspace), "--checkpoints", str(args.checkpoints),
              *[a for run in args.run for a in ("--run", run)], "--submissions",
              str(args.submissions)]
    # phase 1 fits and caches the decision rule (not timed)
    subprocess.run([sys.executable, "-m", "comp.cli", "submit", *common], check=True)
    from comp.runs import RunDir
    from comp.specs import spec

    models = sum(len(RunDir(args.checkpoints / run).members()) for run in args.run)
    features = any(spec(RunDir(args.checkpoints / run).load_record().model).features
                   for run in args.run)
    target = ("none: a feature run computes the new images' frozen features" if features
              else f"< {15 if models == 1 else 30} s")
    csv, seconds, info = _phase2(args, common, keras_only=False)
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

    reference, keras_seconds, _ = _phase2(args, common, keras_only=True)
    a, b = pd.read_csv(csv, dtype=str), pd.read_csv(reference, dtype=str)
    both = a.merge(b, on=a.columns[0], suffixes=("", "_keras"))
    label = a.columns[1]
    same = float((both[label] == both[f"{label}_keras"]).mean())
    print(f"\nthe same phase 2, Keras predicting: {keras_seconds:.1f} s; labels equal to Keras' "
          f"on {same:.4%} of the {len(a):,} images (target >= 99.9 %)")
    if args.answers:
        print(f"balanced accuracy against the answers, Keras predicting: "
              f"{score_against(reference, args.answers):.4f}")


KERAS_ONLY = ("import sys, runpy; import comp.submit.engine as e; e.OFF = True; "
              "sys.argv[0] = 'comp'; runpy.run_module('comp.cli', run_name='__main__')")


def _phase2(args: argparse.Namespace, common: list[str], *, keras_only: bool
            ) -> tuple[Path, float, dict]:
    """One timed phase 2 on cold test images: (its CSV, seconds, its manifest)."""
    import os

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


if __name__ == "__main__":
    main()
