"""prepare's throughput on the demo challenge at the report's scale, next to its baselines.

Measured in one run, files already in the page cache, on the files comp prepare reads
(training and validation images):
  (a) a loop of `imagehash.dhash(PIL.Image.open(path))` (the plain one-process loop, and the
      same loop split over the processes);
  (b) decoding alone, with the same number of processes as prepare: PIL
      (`np.asarray(Image.open(path).convert("RGB"))`) and libpng through imagecodecs (the
      decoder comp itself uses for 8-bit PNGs: the true floor of its decode stage);
  (c) `comp prepare` (decode into the store, dHash, duplicate search + pixel check, groups,
      conflicts, overlap of the validation set, splits, report), with its own stage timings
      (the `--profile` table).
Targets on 2 cores: (c) at most 1.3x the time of the libpng floor, at least 1.8x faster than
the one-process loop of (a).

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
from comp.demo.generate import DemoSpec, make_demo  # noqa: E402
from comp.prepare import prepare  # noqa: E402
from comp.prepare.files import list_images  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"


def _floor(paths: list[str]) -> int:
    from PIL import Image

    total = 0
    for p in paths:
        with Image.open(p) as im:
            total += np.asarray(im.convert("RGB")).shape[0]
    return total


def _libpng_floor(paths: list[str]) -> int:
    import imagecodecs

    from comp.prepare.image import read_bytes

    return sum(imagecodecs.png_decode(read_bytes(p)).shape[0] for p in paths)


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
    paths = list_images(args.demo / "train") + list_images(args.demo / "val")
    for p in paths:  # every contender reads from the page cache
        Path(p).read_bytes()
    n = len(paths)
    floor = _pool_time(_floor, paths, args.workers)
    libpng = _pool_time(_libpng_floor, paths, args.workers)
    started = time.perf_counter()
    _imagehash(paths)  # the plain loop a competitor writes
    loop = time.perf_counter() - started
    loop_pool = _pool_time(_imagehash, paths, args.workers)
    ws = OUT / "ws-prepare-speed"
    shutil.rmtree(ws, ignore_errors=True)
    with AnonPeak() as anon:
        started = time.perf_counter()
        result = prepare(PrepareConfig(challenge=args.demo, workspace=ws, workers=args.workers))
        ours = time.perf_counter() - started
    summary = result.summary
    peak_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    peak_child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    val = summary.val_images
    print(f"\n{n:,} images ({n - val:,} training + {val:,} validation), "
          f"{args.workers} processes")
    print("| what | seconds | images/s | vs libpng decode | vs PIL decode |")
    print("|---|---|---|---|---|")
    for name, seconds in (("libpng decode alone (floor)", libpng), ("PIL decode alone", floor),
                          ("imagehash.dhash loop (1 process)", loop),
                          (f"imagehash.dhash loop ({args.workers} processes)", loop_pool),
                          ("comp prepare (everything)", ours)):
        print(f"| {name} | {seconds:.1f} | {n / seconds:,.0f} | {seconds / libpng:.2f}x | "
              f"{seconds / floor:.2f}x |")
    print(f"\ncomp prepare is {ours / libpng:.2f}x the libpng decode floor (target <= 1.3x), "
          f"{ours / floor:.2f}x the PIL decode, and {loop / ours:.2f}x faster than the "
          "imagehash loop (target >= 1.8x)")
    print("comp prepare's stages (--profile):\n" + result.clock.table())
    print(f"peak memory: main process {anon.peak:,.0f} MiB private ({peak_self:,.0f} MiB resident "
          f"with the memory-mapped store's pages), largest worker {peak_child:,.0f} MiB "
          f"(store {summary.store_mb} MB)")
    print(f"found: {summary.duplicate_groups} duplicate groups, {summary.conflict_groups} "
          f"conflicts, {summary.val_in_train} of {val} val images in train")


if __name__ == "__main__":
    main()
