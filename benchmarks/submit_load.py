"""A two-run submit on an idle and on a loaded machine, side by side: LightGBM's threads
sized to the work and the free cores (`comp.threads`, today's path) against a fixed two
threads (the former path). Target: the loaded submit within 2x the idle one.

A 4,000-image demo challenge (`comp demo`'s generator) is prepared and two cross-fitted runs
trained once (`res` and `b1`, one epoch each: the rule's work does not depend on how good
they are). Each timed submit starts cold: the runs' out-of-fold predictions and cached rules
are removed first (the ONNX graphs stay, as after any earlier submit), so it predicts the
held-out images, cross-validates both runs' LightGBM stackers and their stack, chooses the
rule nested and writes the CSV. The load is spinning processes, started before the submit
and stopped after it: on half the cores, then on every core (another job using the whole
machine: a fair share then gives one thread of this process cores/(cores+1) of a core,
against every core when idle).

    python benchmarks/submit_load.py [--images 4000] [--out benchmarks/out/submit_load]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from comp import threads  # noqa: E402
from comp.config import PrepareConfig, SubmitConfig, TrainConfig  # noqa: E402
from comp.demo.generate import DemoSpec, make_demo  # noqa: E402
from comp.prepare.pipeline import prepare  # noqa: E402
from comp.submit.pipeline import submit  # noqa: E402
from comp.train.loop import train  # noqa: E402

RUNS = ("res", "b1")


def _spin() -> None:
    while True:
        pass


@contextmanager
def load(busy: int) -> Iterator[None]:
    """`busy` processes spinning on the CPU while the block runs."""
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_spin, daemon=True) for _ in range(busy)]
    for p in procs:
        p.start()
    time.sleep(1.0 if busy else 0.0)
    try:
        yield
    finally:
        for p in procs:
            p.terminate()
            p.join()


def setup(out: Path, images: int) -> tuple[Path, Path]:
    ws, ck = out / "ws", out / "ck"
    if all((ck / f"load-{m}" / "current").exists() for m in RUNS):
        return ws, ck
    shutil.rmtree(out, ignore_errors=True)
    make_demo(out / "challenge", DemoSpec(train=images, val=images // 10, test=images // 10))
    prepare(PrepareConfig(challenge=out / "challenge", workspace=ws))
    for model in RUNS:
        train(TrainConfig(workspace=ws, model=model, epochs=1, checkpoints=ck,
                          run_name=f"load-{model}", progress=False))
    return ws, ck


def cold_submit(ws: Path, ck: Path, out: Path) -> float:
    for model in RUNS:
        run = ck / f"load-{model}"
        shutil.rmtree(run / "submit", ignore_errors=True)
        for cache in run.glob("holdout*.npz"):
            cache.unlink()
    started = time.perf_counter()
    submit(SubmitConfig(workspace=ws, runs=tuple(f"load-{m}" for m in RUNS), checkpoints=ck,
                        submissions=out / "submissions"))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=4000)
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).resolve().parent / "out" / "submit_load")
    args = parser.parse_args()
    ws, ck = setup(args.out, args.images)
    cold_submit(ws, ck, args.out)  # the ONNX graphs exported once, as after any first submit
    sized = threads.threads_for
    seconds: dict[tuple[str, str], float] = {}
    for path, fn in (("sized to the work and free cores", sized),
                     ("fixed 2 threads (former)", lambda _cells: 2)):
        threads.threads_for = fn
        for state, busy in (("idle", 0), ("half loaded", max(1, threads.cores() // 2)),
                            ("loaded", threads.cores())):
            with load(busy):
                seconds[(path, state)] = cold_submit(ws, ck, args.out)
            print(f"{path}, {state}: {seconds[(path, state)]:.1f} s", flush=True)
    threads.threads_for = sized
    print(f"\ntwo-run submit ({', '.join(RUNS)}, cross-fitted, {args.images:,} demo images), "
          f"cold, {threads.cores()} cores; half loaded: spinning processes on half the cores; "
          f"loaded: one on every core (a fair share then gives one thread of this process "
          f"{threads.cores()}/{threads.cores() + 1} of a core, against {threads.cores()} idle "
          "cores)")
    print("| LightGBM threads | idle (s) | half loaded (s) | / idle | loaded (s) | / idle |")
    print("|---|---|---|---|---|---|")
    for path in dict.fromkeys(p for p, _ in seconds):
        idle, half, full = (seconds[(path, s)] for s in ("idle", "half loaded", "loaded"))
        print(f"| {path} | {idle:.1f} | {half:.1f} | {half / idle:.2f}x | {full:.1f} | "
              f"{full / idle:.2f}x |")


if __name__ == "__main__":
    main()
