"""Face crops on real faces: how often `comp prepare --faces` finds a face (and both eyes,
so the crop is turned upright) and how long detection plus crop take per image, on the
shared CelebA images (89x109 aligned photos with background) and the shared smile set
(64x64 grayscale face crops). One process, so the time is per image on one core; prepare
runs one such process per core.

    python benchmarks/faces.py [--limit 2000] [--size 128]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from comp.prepare import faces  # noqa: E402
from comp.prepare.decode import fit_image  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def measure(files: list[Path], size: tuple[int, int]) -> dict[str, float]:
    found = eyes = 0
    detect = crop = centre = 0.0
    for path in files:
        with Image.open(path) as im:
            im.load()
            gray = np.asarray(im.convert("L"))
            t0 = time.perf_counter()
            face = faces.find_face(gray)
            t1 = time.perf_counter()
            if face is not None:
                faces.crop_face(im, face, size)
            t2 = time.perf_counter()
            fit_image(im, size, "crop")
            t3 = time.perf_counter()
        detect, crop, centre = detect + t1 - t0, crop + t2 - t1, centre + t3 - t2
        found += face is not None
        eyes += face is not None and face.eyes is not None
    n = len(files)
    return {"images": n, "found": found / n, "eyes": eyes / n, "detect_ms": 1e3 * detect / n,
            "crop_ms": 1e3 * crop / max(found, 1), "centre_ms": 1e3 * centre / n}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=2000, help="images per dataset (evenly "
                        "spread over its sorted files; 0: all)")
    parser.add_argument("--size", type=int, default=128)
    args = parser.parse_args()
    rows = []
    for name in ("celeba-first10k", "smilesmiled"):
        folder = SHARED / name / "images"
        if not folder.exists():
            print(f"skipping {name}: not in {SHARED}")
            continue
        files = sorted(folder.iterdir())
        if args.limit and len(files) > args.limit:
            files = [files[int(k)] for k in np.linspace(0, len(files) - 1, args.limit)]
        rows.append((name, measure(files, (args.size, args.size))))
        print(name, rows[-1][1], flush=True)
    print(f"\nOpenCV's frontal-face Haar cascade (opencv-python-headless), crops to "
          f"{args.size}x{args.size}, one process:")
    print("| dataset | images | face found | both eyes (turned upright) | detection (ms/image) "
          "| face crop (ms/face) | centre crop, for comparison (ms/image) |")
    print("|---|---|---|---|---|---|---|")
    for name, r in rows:
        print(f"| {name} | {r['images']:,} | {r['found']:.1%} | {r['eyes']:.1%} | "
              f"{r['detect_ms']:.1f} | {r['crop_ms']:.2f} | {r['centre_ms']:.2f} |")


if __name__ == "__main__":
    main()
