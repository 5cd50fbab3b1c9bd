"""Vectorised dHash on decoded arrays, bit-identical to `imagehash.dhash`.

`dhash` reproduces `imagehash.dhash(PIL.Image.open(path))` bit for bit: grayscale with PIL's
integer luma formula, a 9x8 LANCZOS resize with PIL's fixed-point separable filter (same
coefficients, same intermediate rounding to uint8), then "is the right neighbour brighter".
Doing it on whole batches of arrays costs a few matrix products instead of one PIL call per image.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

HASH_W, HASH_H = 9, 8  # imagehash.dhash(hash_size=8) resizes to (hash_size + 1, hash_size)
_PRECISION_BITS = 32 - 8 - 2  # Pillow's Resample.c
_LANCZOS_SUPPORT = 3.0


def _sinc(x: float) -> float:
    if x == 0.0:
        return 1.0
    x = x * math.pi
    return math.sin(x) / x


def _lanczos(x: float) -> float:
    if -3.0 <= x < 3.0:
        return _sinc(x) * _sinc(x / 3)
    return 0.0


@lru_cache(maxsize=64)
def resample_matrix(in_size: int, out_size: int) -> np.ndarray:
    """Pillow's fixed-point LANCZOS coefficients as an (in_size, out_size) int64 matrix.

    Follows `precompute_coeffs` and `normalize_coeffs_8bpc` in Pillow's Resample.c operation by
    operation (Python floats are the same IEEE doubles and `math.sin` the same libm), so the
    integer coefficients are exactly Pillow's.
    """
    scale = float(in_size) / out_size
    filterscale = max(scale, 1.0)
    support = _LANCZOS_SUPPORT * filterscale
    matrix = np.zeros((in_size, out_size), dtype=np.int64)
    for xx in range(out_size):
        center = 0.0 + (xx + 0.5) * scale
        ss = 1.0 / filterscale
        xmin = max(int(center - support + 0.5), 0)
        xmax = min(int(center + support + 0.5), in_size) - xmin
        weights = [_lanczos((x + xmin - center + 0.5) * ss) for x in range(xmax)]
        total = 0.0
        for w in weights:
            total += w
        for x, w in enumerate(weights):
            k = w / total if total != 0.0 else w
            fixed = k * (1 << _PRECISION_BITS)
            matrix[x + xmin, xx] = math.trunc(fixed - 0.5 if k < 0 else fixed + 0.5)
    return matrix


def _clip8(acc: np.ndarray) -> np.ndarray:
    """Pillow's clip8: add the rounding half, shift out the precision bits, clamp to 0..255.

    Works on float64 accumulators holding exact integers: a pixel (< 2^8) times a coefficient
    (< 2^23) summed over a few dozen taps stays far below 2^53, and dividing by a power of two
    is exact, so floor((acc + half) / 2^22) is the integer shift, at BLAS speed.
    """
    return np.clip(np.floor((acc + (1 << (_PRECISION_BITS - 1))) / (1 << _PRECISION_BITS)),
                   0, 255)


def _resize_9x8(gray: np.ndarray, vertical_first: bool) -> np.ndarray:
    """Two separable passes, each rounded to uint8 as Pillow does: (N,H,W) -> (N,8,9)."""
    n, h, w = gray.shape
    gray = gray.astype(np.float64)
    horizontal = resample_matrix(w, HASH_W).astype(np.float64)
    vertical = resample_matrix(h, HASH_H).astype(np.float64)
    if w == HASH_W:  # Pillow skips a pass whose size does not change
        horizontal = np.eye(w) * (1 << _PRECISION_BITS)
    if h == HASH_H:
        vertical = np.eye(h) * (1 << _PRECISION_BITS)
    if vertical_first:
        rows = _clip8(vertical.T @ gray)  # (8,H) @ (N,H,W) -> (N,8,W)
        return _clip8(rows @ horizontal)
    cols = _clip8(gray @ horizontal)  # (N,H,9)
    return _clip8(vertical.T @ cols)  # (N,8,9)


@lru_cache(maxsize=64)
def _pillow_pass_order(h: int, w: int) -> bool:
    """Whether Pillow runs the vertical pass first for an (h, w) -> (8, 9) resize.

    Pillow chooses the order of its two passes by image shape (the C code decides, not the
    Python API), and the intermediate rounding makes the order visible in the result. For the
    usual shapes (wider than 9 and not much taller than wide) it is horizontal first; rather
    than hard-code the rule of one Pillow release, ask the installed Pillow once per shape.
    """
    from PIL import Image

    if h == HASH_H or w == HASH_W:
        return False
    rng = np.random.default_rng(h * 100_003 + w)
    probes = rng.integers(0, 256, size=(4, h, w), dtype=np.uint8)
    lanczos = Image.Resampling.LANCZOS
    pil = np.stack([np.asarray(Image.fromarray(p).resize((HASH_W, HASH_H), lanczos))
                    for p in probes]).astype(np.int64)
    gray = probes.astype(np.int64)
    if np.array_equal(_resize_9x8(gray, vertical_first=False), pil):
        return False
    if np.array_equal(_resize_9x8(gray, vertical_first=True), pil):
        return True
    raise RuntimeError(f"Cannot reproduce Pillow's LANCZOS resize for shape {(h, w)}; "
                       f"this Pillow release resamples differently. Received: pillow "
                       f"{Image.__version__}")


def to_gray(images: np.ndarray) -> np.ndarray:
    """PIL's `convert("L")` on (N,H,W,3) or (N,H,W,1)/(N,H,W) uint8 arrays -> (N,H,W) int32."""
    if images.ndim == 4 and images.shape[-1] == 3:
        gray = images[..., 0].astype(np.int32)  # in place from here: 2.5x faster on big batches
        gray *= 19595
        for channel, weight in ((1, 38470), (2, 7471)):
            term = images[..., channel].astype(np.int32)
            term *= weight
            gray += term
        gray += 0x8000
        gray >>= 16
        return gray
    if images.ndim == 4 and images.shape[-1] == 1:
        return images[..., 0].astype(np.int32)
    if images.ndim == 3:
        return images.astype(np.int32)
    raise ValueError(f"dhash expects (N,H,W), (N,H,W,1) or (N,H,W,3) uint8 arrays. "
                     f"Received: shape={images.shape}")


def dhash(images: np.ndarray) -> np.ndarray:
    """dHash of a batch of same-size images, as uint64 (first difference bit = most significant).

    Args:
        images: uint8 array (N,H,W,3) RGB, (N,H,W,1) or (N,H,W) grayscale.
    Returns:
        (N,) uint64; `int(str(imagehash.dhash(img)), 16)` for each image.
    """
    n, h, w = images.shape[:3]
    if n == 0:
        return np.zeros(0, dtype=np.uint64)
    vertical_first = _pillow_pass_order(h, w)
    # blocks of a few dozen images keep the intermediate arrays in the CPU cache (2x faster)
    block = max(1, 2**18 // (h * w))
    small = np.concatenate([_resize_9x8(to_gray(images[i:i + block]), vertical_first)
                            for i in range(0, n, block)])
    bits = (small[:, :, 1:] > small[:, :, :-1]).reshape(n, 64)
    weights = (np.uint64(1) << np.arange(63, -1, -1, dtype=np.uint64)).astype(np.uint64)
    return (bits.astype(np.uint64) * weights).sum(axis=1, dtype=np.uint64)


def hash_to_hex(values: np.ndarray) -> list[str]:
    """uint64 hashes -> 16-digit hex strings, as `str(imagehash.ImageHash)` prints them."""
    return [f"{int(v):016x}" for v in values]


def hex_to_hash(values: list[str] | np.ndarray) -> np.ndarray:
    return np.array([int(v, 16) for v in values], dtype=np.uint64)


