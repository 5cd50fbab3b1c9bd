"""How far apart re-exported copies and different faces are, by dHash distance and pixels.

For each dataset: N original faces and M re-exported copies of some of them (a JPEG round trip
at quality 85-95 and a brightness shift of +-1..3, as a re-uploaded image gets). Each copy is a
query against the originals. Per Hamming distance d = 0..8:
  recall: the copy's own original is within d bits (hash alone; hash + pixel check);
  false:  some *other* face is within d bits (hash alone; hash + pixel check).
Datasets: the demo generator (drawn in memory) and the shared real faces when present.
Also times the multi-index search on 116,157 hashes against brute force.

    python benchmarks/duplicates.py [--copies 1000]
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from comp.config import DEFAULT_MAX_DISTANCE, DEFAULT_PIXEL_THRESHOLD  # noqa: E402
from comp.demo.generate import draw_faces  # noqa: E402
from comp.prepare.dhash import dhash, hex_to_hash  # noqa: E402
from comp.prepare.duplicates import (  # noqa: E402
    near_pairs,
    near_pairs_bruteforce,
    pixel_distance,
)

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def reexport(pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    shift = int(rng.choice([-3, -2, -1, 1, 2, 3]))
    out = np.clip(pixels.astype(np.int16) + shift, 0, 255).astype(np.uint8)
    squeeze = out.shape[-1] == 1
    buf = io.BytesIO()
    Image.fromarray(out[..., 0] if squeeze else out).save(buf, format="JPEG",
                                                         quality=int(rng.integers(85, 96)))
    back = np.asarray(Image.open(io.BytesIO(buf.getvalue())))
    return back[..., None] if squeeze else back


def load_real(name: str, limit: int) -> np.ndarray | None:
    folder = SHARED / name / "images"
    if not folder.exists():
        print(f"skipping {name}: {folder} not found")
        return None
    files = sorted(folder.glob("*.jpg"))[:limit]
    arrays = [np.asarray(Image.open(f)) for f in files]
    arr = np.stack(arrays)
    return arr[..., None] if arr.ndim == 3 else arr


def table(name: str, originals: np.ndarray, copies_of: int, rng: np.random.Generator,
          threshold: float) -> None:
    source = rng.choice(len(originals), size=copies_of, replace=False)
    copies = np.stack([reexport(originals[s], rng) for s in source])
    h_orig, h_copy = dhash(originals), dhash(copies)
    pairs = near_pairs(h_copy, 8, others=h_orig)
    q, o, dist = pairs[:, 0], pairs[:, 1], pairs[:, 2]
    pixel = pixel_distance(copies[q], originals[o])
    # an "other" original that is pixel-identical to the source is a real duplicate, not false
    identical_to_source = pixel_distance(originals[source[q]], originals[o]) == 0
    own = (o == source[q]) | identical_to_source
    print(f"\n### {name}: {len(originals):,} faces {originals.shape[1:]}, {copies_of} re-exported "
          f"copies; pixel threshold {threshold}")
    print("| d | recall (hash) | recall (hash + pixels) | false (hash) | false (hash + pixels) |")
    print("|---|---|---|---|---|")
    for d in range(9):
        within = dist <= d
        ok = pixel <= threshold
        rec_h = np.unique(q[within & own]).size
        rec_p = np.unique(q[within & own & ok]).size
        false_h = np.unique(q[within & ~own]).size
        false_p = np.unique(q[within & ~own & ok]).size
        print(f"| {d} | {rec_h / copies_of:.1%} ({rec_h}) | {rec_p / copies_of:.1%} ({rec_p}) | "
              f"{false_h} | {false_p} |")
    own_pixels = pixel[own]
    other_pixels = pixel[~own]
    print(f"pixel distance: copies max {own_pixels.max():.2f} (99th pct "
          f"{np.percentile(own_pixels, 99):.2f}); different faces within 8 bits min "
          f"{other_pixels.min() if len(other_pixels) else float('nan'):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--copies", type=int, default=1000)
    parser.add_argument("--faces", type=int, default=20_000)
    parser.add_argument("--threshold", type=float, default=DEFAULT_PIXEL_THRESHOLD)
    parser.add_argument("--workspace", type=Path,
                        default=Path(__file__).resolve().parent / "out" / "ws-prepare-speed")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    n = args.faces
    demo = np.concatenate([draw_faces(rng.random(2048) < 0.35, rng.random(2048) < 0.5, 56, s)
                           for s in range(0, n, 2048)])[:n]
    table("demo generator", demo, args.copies, rng, args.threshold)
    for name in ("smilesmiled", "celeba-first10k"):
        real = load_real(name, n)
        if real is not None:
            table(name, real, min(args.copies, len(real) // 4), rng, args.threshold)
    # speed of the search at the report's scale, on the prepared 116k demo's hashes
    from comp.workspace import Workspace

    index = Workspace(args.workspace).index
    if not index.exists():
        print(f"\nno {index}: run benchmarks/prepare_speed.py first for the search timing")
        return
    import pandas as pd

    frame = pd.read_csv(index, dtype={"dhash": str, "source": str}, low_memory=False)
    hashes = hex_to_hash(frame[frame["source"] == "train"]["dhash"].tolist())
    started = time.perf_counter()
    found = near_pairs(hashes, DEFAULT_MAX_DISTANCE)
    fast = time.perf_counter() - started
    sub = hashes[:8000]
    started = time.perf_counter()
    assert np.array_equal(near_pairs(sub, DEFAULT_MAX_DISTANCE),
                          near_pairs_bruteforce(sub, DEFAULT_MAX_DISTANCE))
    brute = (time.perf_counter() - started) * (len(hashes) / len(sub)) ** 2
    print(f"\nsearch at d={DEFAULT_MAX_DISTANCE} over {len(hashes):,} hashes: {fast:.2f} s "
          f"({len(found):,} pairs); brute force extrapolated from 8,000: {brute:.0f} s "
          f"(and the same pairs on those 8,000)")
    for distance in (0, 2, 5, 6, 8):
        started = time.perf_counter()
        count = len(near_pairs(hashes, distance))
        print(f"search at d={distance}: {time.perf_counter() - started:.2f} s ({count:,} pairs)")

if __name__ == "__main__":
    main()
