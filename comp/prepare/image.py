"""Decoding one image file: PNGs through a fast path (imagecodecs, no PIL overhead), every
other file through PIL (16-bit scaled, not clipped; floating-point refused), then fitted to the
store's size (crop, stretch, or the main face). The parallel store writer calls it per file."""

from __future__ import annotations

import os
from pathlib import Path

import imagecodecs
import numpy as np
from PIL import Image, UnidentifiedImageError

from comp.errors import CompError
from comp.prepare.dhash import to_gray


def image_size(path: str | Path) -> tuple[int, int]:
    """(height, width) read from the file header alone."""
    try:
        with Image.open(path) as im:
            return im.size[1], im.size[0]
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise CompError(bad_image_message(path, exc)) from None


BAD_IMAGE_FIX = "replace or remove the file, or pass --skip-bad to skip it"


def bad_image_message(path: str | Path, exc: Exception) -> str:
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"{path}: cannot decode the image ({reason}); {BAD_IMAGE_FIX}"


def fit_image(im: Image.Image, size: tuple[int, int], fit: str) -> Image.Image:
    """Resize a PIL image to (height, width): `stretch` or `crop` (centre crop to the target
    aspect ratio, then resize, so faces keep their proportions)."""
    h, w = size
    if (im.height, im.width) == (h, w):
        return im
    if fit == "crop":
        scale = min(im.width / w, im.height / h)
        cw, ch = w * scale, h * scale
        left, top = (im.width - cw) / 2, (im.height - ch) / 2
        return im.resize((w, h), Image.Resampling.BILINEAR, box=(left, top, left + cw, top + ch),
                         reducing_gap=2.0)
    return im.resize((w, h), Image.Resampling.BILINEAR, reducing_gap=2.0)


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# 8-bit, non-interlaced PNG colour types that decode to the same pixels as PIL: grey, RGB, RGBA
FAST_PNG_TYPES = {0: "L", 2: "RGB", 6: "RGBA"}


def read_bytes(path: str | Path) -> bytes:
    """A whole file in three system calls (open, read, close): Python's buffered `open`
    adds fstat, ioctl and lseek calls, a fifth of the cost of decoding a small image."""
    fd = os.open(path, os.O_RDONLY)
    try:
        parts = [os.read(fd, 1 << 16)]  # small reads come from the heap, not a fresh mmap
        while len(parts[-1]) == 1 << 16:
            parts.append(os.read(fd, 1 << 16))
    finally:
        os.close(fd)
    return b"".join(parts) if len(parts) > 1 else parts[0]


def _fast_png(path: str | Path) -> np.ndarray | None:
    """Pixels of an 8-bit grey/RGB/RGBA PNG decoded by libpng (imagecodecs), or None.

    PNG is lossless, so any correct decoder yields PIL's pixels; libpng without PIL's
    per-image Python overhead is about 2x faster on small files. Anything else (other modes,
    16 bits, palettes, JPEG, a damaged file) returns None and goes through PIL, which also
    words the error for a bad file.
    """
    try:
        data = read_bytes(path)
    except OSError:
        return None
    if len(data) < 33 or data[:8] != PNG_SIGNATURE or data[12:16] != b"IHDR":
        return None
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    depth, colour, interlaced = data[24], data[25], data[28]
    if depth != 8 or colour not in FAST_PNG_TYPES or interlaced:
        return None
    try:
        pixels = imagecodecs.png_decode(data)
    except Exception:  # any libpng complaint: let PIL decide, and word the error
        return None
    if pixels.dtype != np.uint8 or pixels.shape[:2] != (height, width):
        return None
    if pixels.ndim == 3:  # a tRNS chunk can add an alpha channel, which PIL drops too
        pixels = pixels[:, :, 0] if colour == 0 else pixels[:, :, :len(FAST_PNG_TYPES[colour])]
    return pixels


def _to_8bit(im: Image.Image) -> Image.Image:
    """16-bit (and 32-bit integer) grey images scaled to 0..255, not clipped (PIL's own
    conversion clips: a 16-bit photo would turn white). Floating-point images are refused."""
    if im.mode == "F":
        raise ValueError("floating-point pixels; save the image with 8 or 16 bits")
    if not im.mode.startswith("I"):
        return im
    values = np.asarray(im).astype(np.int64)
    if im.mode.startswith("I;16") or values.max(initial=0) > 255:
        values = (np.clip(values, 0, 65535) * 255 + 32767) // 65535
    return Image.fromarray(values.astype(np.uint8), "L")


def _fit(im: Image.Image, size: tuple[int, int] | None, fit: str) -> tuple[Image.Image, bool]:
    """`fit_image`, or with `fit` "face" the main face cropped (a centre crop where none is
    found); and whether a face was found (True for the other fits)."""
    if fit != "face":
        return (im if size is None else fit_image(im, size, fit)), True
    from comp.prepare.faces import face_image

    target = size or (im.height, im.width)
    cropped, found = face_image(im, target)
    return (cropped if found else fit_image(im, target, "crop")), found


def decode_file(path: str | Path, size: tuple[int, int] | None, gray: bool,
                fit: str = "crop") -> tuple[np.ndarray, np.ndarray, bool]:
    """Decode one file.

    Returns:
        (stored pixels (H,W,C) uint8, the native-size pixels the hash is computed from:
        (H,W) grey or (H,W,3) RGB, which `dhash` turns grey as PIL does, and whether a face
        was found: with `fit` "face", False means it was centre-cropped instead).
    """
    found = True
    fast = _fast_png(path)
    if fast is not None:
        hash_pixels = fast if fast.ndim == 2 else fast[:, :, :3]
        if gray and hash_pixels.ndim == 3:
            pixels = to_gray(hash_pixels[None])[0].astype(np.uint8)
        elif not gray and hash_pixels.ndim == 2:
            pixels = np.repeat(hash_pixels[:, :, None], 3, axis=2)
        else:
            pixels = hash_pixels
        if fit == "face" or (size is not None and pixels.shape[:2] != tuple(size)):
            fitted, found = _fit(Image.fromarray(np.ascontiguousarray(pixels)), size, fit)
            pixels = np.asarray(fitted)
    else:
        with Image.open(path) as im:
            im.load()
            native: Image.Image = _to_8bit(im)
            if native.mode not in ("RGB", "L"):
                native = native.convert("RGBA" if "A" in native.mode or native.mode == "P"
                                        else "RGB")
            hash_pixels = np.asarray(native.convert("L") if native.mode != "L" else native)
            mode = "L" if gray else "RGB"
            stored = native if native.mode == mode else native.convert(mode)
            stored, found = _fit(stored, size, fit)
            pixels = np.asarray(stored)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    return pixels, hash_pixels, found
