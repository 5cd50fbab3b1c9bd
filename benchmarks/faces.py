"""Face crops on real faces: how often `comp prepare --faces` finds a face (with both eyes,
so the crop is turned upright) and how long detection plus crop take per image, on the
shared CelebA images (89x109 aligned photos with background) and the shared smile set
(64x64 grayscale face crops); beside it, in the same run, OpenCV's bundled Haar cascade
(frontal face, eyes by its eye cascade) on the same padded images, the other detector that
works offline. One process, so the time is per image on one core; prepare runs one such
process per core.

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
from comp.prepare.image import fit_image  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def haar(pixels: np.ndarray) -> faces.Face | None:
    """OpenCV's Haar cascades, on the image padded as comp pads it: the largest frontal face,
    and both eyes when the eye cascade finds one on each side of the face's upper part."""
    import cv2

    gray = pixels if pixels.ndim == 2 else cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY)
    pad = round(faces.PAD * min(gray.shape))
    padded = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    root = Path(cv2.data.haarcascades)
    side = max(int(faces.MIN_FACE * min(gray.shape)), 20)
    found = cv2.CascadeClassifier(str(root / "haarcascade_frontalface_default.xml")
                                  ).detectMultiScale(padded, 1.1, 5, minSize=(side, side))
    if len(found) == 0:
        return None
    x, y, w, h = max(found, key=lambda b: b[2] * b[3])
    top = cv2.resize(padded[y:y + h * 5 // 8, x:x + w], (160, max(round(h * 5 / 8 * 160 / w), 1)))
    eyes = cv2.CascadeClassifier(str(root / "haarcascade_eye.xml")).detectMultiScale(
        top, 1.1, 4, minSize=(20, 20), maxSize=(80, 80))
    centres = [(ex + ew / 2, ey + eh / 2) for ex, ey, ew, eh in eyes]
    both = (((x - pad, y - pad), (x - pad, y - pad))
            if any(c[0] < 80 for c in centres) and any(c[0] >= 80 for c in centres) else None)
    return faces.Face(x - pad, y - pad, w, h, both)


def measure(files: list[Path], size: tuple[int, int], detect_fn) -> dict[str, float]:
    found = eyes = 0
    detect = crop = centre = 0.0
    for path in files:
        with Image.open(path) as im:
            im.load()
            pixels = np.asarray(im if im.mode in ("L", "RGB") else im.convert("RGB"))
            t0 = time.perf_counter()
            face = detect_fn(pixels)
            t1 = time.perf_counter()
            if face is not None:
                faces.crop_face(im, faces.Face(face.x, face.y, face.w, face.h), size)
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
        for label, fn in (("YuNet (comp --faces)", faces.find_face),
                          ("Haar cascade", haar)):
            rows.append((name, label, measure(files, (args.size, args.size), fn)))
            print(name, label, rows[-1][2], flush=True)
    print(f"\nCrops to {args.size}x{args.size}, one process:")
    print("| dataset | detector | images | face found | both eyes (turned upright) | "
          "detection (ms/image) | face crop (ms/face) | centre crop, for comparison "
          "(ms/image) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, label, r in rows:
        print(f"| {name} | {label} | {r['images']:,} | {r['found']:.1%} | {r['eyes']:.1%} | "
              f"{r['detect_ms']:.1f} | {r['crop_ms']:.2f} | {r['centre_ms']:.2f} |")


if __name__ == "__main__":
    main()
