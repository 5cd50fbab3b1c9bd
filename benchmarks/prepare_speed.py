"""prepare's throughput on the demo challenge at the report's scale, next to its baselines.

Measured in one run, files already in the page cache:
  (a) a loop of `imagehash.dhash(PIL.Image.open(path))` over the training files (the plain
      one-process loop, and the same loop split over the processes);
  (b) PIL decoding alone (`np.asarray(Image.open(path).convert("RGB"))`) with the same
      number of processes as prepare: the floor;
  (c) `comp prepare` (decode into the store, dHash, duplicate search + pixel check, groups,
      conflicts, overlap of the validation set, splits, report).
Targets on 2 cores: (c) at most 1.3x the time of (b), at least 1.8x faster than (a).

    python benchmarks/prepare_speed.py [--demo DIR] [--workers 2]
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import shutil
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from comp.config import PrepareConfig  # noqa: E402
from comp.demo import DemoSpec, make_demo  # noqa: E402
from comp.images import list_images  # noqa: E402
from comp.prepare import prepare  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"


def _floor(paths: list[str]) -> int:
    from PIL import Image

    total = 0
    for p in paths:
        with Image.open(p) as im:
            total += np.asarray(im.convert("RGB")).shape[0]
    return total


def _imagehash(paths: list[str]) -> int:
    import imagehash
    from PIL import Image

    return sum(int(str(imagehash.dhash(Image.open(p))), 16) & 1 for p in paths)


class AnonPeak:
    """Peak private (anonymous) memory of this process, sampled every 20 ms: ru_maxrss also
    counts the pages of the memory-mapped store, which belong to the page cache."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            with open("/proc/self/status") as fh:
                for line in fh:
                    if line.startswith("RssAnon:"):
                        self.peak = max(self.peak, int(line.split()[1]) // 1024)

    def __enter__(self) -> AnonPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _pool_time(func, paths: list[str], workers: int) -> float:
    chunks = [paths[i:i + 512] for i in range(0, len(paths), 512)]
    started = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        pool.map(func, chunks)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--demo", type=Path, default=OUT / "demo116k")
    parser.add_argument("--train", type=int, default=116_157)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if not (args.demo / "train.csv").exists():
        print(f"generating the demo challenge in {args.demo} ...", flush=True)
        make_demo(args.demo, DemoSpec(train=args.train, val=5000, test=20_000))
    paths = list_images(args.demo / "train")
    for p in paths:  # every contender reads from the page cache
        Path(p).read_bytes()
    n = len(paths)
    floor = _pool_time(_floor, paths, args.workers)
    started = time.perf_counter()
    _imagehash(paths)  # the plain loop a competitor writes
    loop = time.perf_counter() - started
    loop_pool = _pool_time(_imagehash, paths, args.workers)
    ws = OUT / "ws-prepare-speed"
    shutil.rmtree(ws, ignore_errors=True)
    with AnonPeak() as anon:
        started = time.perf_counter()
        summary = prepare(PrepareConfig(challenge=args.demo, workspace=ws, workers=args.workers))
        ours = time.perf_counter() - started
    peak_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    peak_child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    val = summary.get("val_images", 0)
    print(f"\n{n:,} training images (+{val:,} validation images for comp prepare), "
          f"{args.workers} processes")
    print("| what | seconds | images/s | vs decode floor |")
    print("|---|---|---|---|")
    print(f"| PIL decode alone (floor) | {floor:.1f} | {n / floor:,.0f} | 1.00x |")
    print(f"| imagehash.dhash loop (1 process) | {loop:.1f} | {n / loop:,.0f} | "
          f"{loop / floor:.2f}x |")
    print(f"| imagehash.dhash loop ({args.workers} processes) | {loop_pool:.1f} | "
          f"{n / loop_pool:,.0f} | {loop_pool / floor:.2f}x |")
    print(f"| comp prepare (everything) | {ours:.1f} | {n / ours:,.0f} | {ours / floor:.2f}x |")
    print(f"\ncomp prepare is {ours / floor:.2f}x the decode floor (target <= 1.3x) and "
          f"{loop / ours:.2f}x faster than the imagehash loop (target >= 1.8x)")
    print(f"peak memory: main process {anon.peak:,.0f} MiB private ({peak_self:,.0f} MiB resident "
          f"with the memory-mapped store's pages), largest worker {peak_child:,.0f} MiB "
          f"(store {summary['store_mb']} MB)")
    print(f"found: {summary['duplicate_groups']} duplicate groups, {summary['conflict_groups']} "
          f"conflicts, {summary.get('val_in_train', 0)} of {val} val images in train")


if __name__ == "__main__":
    main()
