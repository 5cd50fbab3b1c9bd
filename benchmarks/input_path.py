"""The training input path on the host, alone: one epoch of batches from a uint8 store at the
report's scale, four ways side by side, each repeated (best of --repeats):
  bare gather       x[idx] for each batch of the epoch's order (the floor);
  comp's batches    `make_batches(...)[i]` for every batch as `fit` reads them (shuffle,
                    targets; uint8 out), gathered ahead in comp's worker threads (the default);
  in-thread         the same batches gathered in the reading thread (`workers=0`);
  float32 batches   the gather and a float32 conversion on the host (comp's former path).
Target: comp's batches at no less than 80 % of the bare gather's images/s, off the training
thread.

    python benchmarks/input_path.py [--images 116157] [--side 56] [--batch 124] [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from comp.train.data import batch_order, make_batches  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=116157)
    parser.add_argument("--side", type=int, default=56)
    parser.add_argument("--batch", type=int, default=124)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (args.images, args.side, args.side, 3), np.uint8)
    y = rng.integers(0, 2, args.images)
    steps = -(-len(x) // args.batch)
    batches = make_batches(x, y, num_classes=2, batch_size=args.batch, shuffle=True, seed=0,
                           epochs_from=0)
    in_thread = make_batches(x, y, num_classes=2, batch_size=args.batch, shuffle=True,
                             seed=0, epochs_from=0, workers=0)

    def bare() -> None:
        order = batch_order(len(x), shuffle=True, seed=0, epoch=0)
        for k in range(steps):
            x[order[k * args.batch:(k + 1) * args.batch]]

    epoch = iter(range(args.repeats * 2))  # each repeat reads a new epoch (no cached batch)

    def comp() -> None:
        e = next(epoch)
        for i in range(e * steps, (e + 1) * steps):
            batches[i]

    def alone() -> None:
        for i in range(steps):
            in_thread[i]

    def float32() -> None:
        order = batch_order(len(x), shuffle=True, seed=0, epoch=0)
        for k in range(steps):
            x[order[k * args.batch:(k + 1) * args.batch]].astype(np.float32)

    best: dict[str, float] = {}
    for _ in range(args.repeats):  # interleaved, so drift hits every way alike
        for name, run in (("bare gather", bare), ("comp's batches", comp),
                          ("in-thread", alone), ("float32 batches", float32)):
            started = time.perf_counter()
            run()
            best[name] = max(best.get(name, 0.0), len(x) / (time.perf_counter() - started))
    print(f"{args.images:,} images of {args.side}x{args.side}x3, batch {args.batch}, best of "
          f"{args.repeats}:")
    print("| path | images/s | share of the bare gather |")
    print("|---|---|---|")
    for name, rate in best.items():
        print(f"| {name} | {rate:,.0f} | {rate / best['bare gather']:.0%} |")
    batches.close()


if __name__ == "__main__":
    main()
