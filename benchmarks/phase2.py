"""Phase 2, fast: from `comp submit --test NEW_DIR` to a validated CSV, on a workspace prepared
and trained in phase 1 (the phase-1 submit has cached the decision rule), new images cold.
Target on 2 cores: under 30 s for a 20,000-image test set with a one-model run, under 45 s
with a 5-fold cross-fitted run (five models predict every image). The command runs with --profile,
so its own stage timings (ingest: decode, overlap, index; decision; prediction; CSV) print
above the total.

    python benchmarks/phase2.py --workspace W --checkpoints C --run RUN [--run RUN2 ...]
        --test DIR [--answers CSV]
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
    args = parser.parse_args()
    common = ["-w", str(args.workspace), "--checkpoints", str(args.checkpoints),
              *[a for run in args.run for a in ("--run", run)], "--submissions",
              str(args.submissions)]
    # phase 1 fits and caches the decision rule (not timed)
    subprocess.run([sys.executable, "-m", "comp.cli", "submit", *common], check=True)
    # the new images are cold: evict just those files from the page cache
    import os

    for path in args.test.iterdir():
        fd = os.open(path, os.O_RDONLY)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)
    cold = True
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "comp.cli", "submit", *common, "--test",
                    str(args.test), "--profile"], check=True)  # prints its stage table
    seconds = time.perf_counter() - started
    manifest = max(args.submissions.glob("*.json"), key=lambda p: p.stat().st_mtime_ns)
    info = json.loads(manifest.read_text())
    from comp.runs import RunDir

    models = sum(len(RunDir(args.checkpoints / run).members()) for run in args.run)
    print(f"\nphase 2: {info['images']:,} new test images -> {info['csv']} in {seconds:.1f} s "
          f"from command to validated CSV with {models} model(s) (new images evicted from the "
          f"page cache: {cold}; target < {30 if models == 1 else 45} s); "
          f"{info['leaks']['overridden']} leaks overridden")
    if args.answers:
        from comp.submit.submission import score_against

        print(f"balanced accuracy against the answers: "
              f"{score_against(Path(info['csv']), args.answers):.4f}")


if __name__ == "__main__":
    main()
