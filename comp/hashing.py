"""Vectorised dHash on decoded arrays, and the near-duplicate search over 64-bit hashes.

`dhash` reproduces `imagehash.dhash(PIL.Image.open(path))` bit for bit: grayscale with PIL's
integer luma formula, a 9x8 LANCZOS resize with PIL's fixed-point separable filter (same
coefficients, same intermediate rounding to uint8), then "is the right neighbour brighter".
Doing it on whole batches of arrays costs a few matrix products instead of one PIL call per image.
"""

from __future__ import annotations

import itertools
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


def popcount64(x: np.ndarray) -> np.ndarray:
    """Number of set bits of each uint64."""
    x = x.astype(np.uint64, copy=True)
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return ((x * np.uint64(0x0101010101010101)) >> np.uint64(56)).astype(np.int64)


def _blocks(hashes: np.ndarray, count: int) -> list[np.ndarray]:
    """Partition the 64 bit positions into `count` disjoint blocks.

    Any partition keeps the search exact, but face hashes have many nearly constant bits, and a
    block made of them puts everything in one bucket. So bits are dealt to blocks round-robin
    in order of how balanced they are (p(1) closest to 0.5 first): every block gets its share
    of informative bits and the buckets stay small.
    """
    bits = np.arange(64, dtype=np.uint64)
    if len(hashes):
        ones = np.array([((hashes >> b) & np.uint64(1)).mean() for b in bits])
        bits = bits[np.argsort(np.abs(ones - 0.5), kind="stable")]
    return [np.sort(bits[k::count]) for k in range(count)]


def _blocks_per_key(n: int, max_distance: int) -> int:
    """How many blocks r make one lookup key, for m = max_distance + r blocks in all.

    Two hashes within d bits differ in at most d of the m blocks, so they agree on at least
    r blocks: every pair is found among those that share one r-combination of blocks.
    A larger r makes longer keys (fewer chance candidates) but more combinations to sort;
    pick the r with the least estimated work: C(m, r) sorts of n keys plus the candidate
    pairs they yield (n^2 / 2 / 2^bits, times 4 for the uneven buckets of face hashes).
    """
    def cost(r: int) -> float:
        m = max_distance + r
        bits = 64 * r / m
        return math.comb(m, r) * (n + 4 * n * n / 2 / 2**bits)

    return min(range(1, max_distance + 2), key=cost)


def _block_keys(hashes: np.ndarray, block: np.ndarray) -> np.ndarray:
    """The bits of `block` gathered into a compact integer key per hash."""
    key = np.zeros(len(hashes), dtype=np.uint64)
    for k, b in enumerate(block):
        key |= ((hashes >> b) & np.uint64(1)) << np.uint64(k)
    return key


def _pairs_with_equal_keys(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All index pairs (i, j), i before j in sorted order, whose keys are equal.

    Fully vectorised: sort, find each run of equal keys, and for the element at sorted
    position p of a run ending at e emit the partners p+1 .. e-1 (np.repeat + a ramp).
    """
    n = len(keys)
    if n < 2:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    ends = np.r_[starts[1:], n]
    run_end = np.repeat(ends, ends - starts)  # end of the run each sorted position is in
    partners = run_end - np.arange(n) - 1
    total = int(partners.sum())
    if total == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    left = np.repeat(np.arange(n), partners)
    # ramp 1, 2, ..., partners[p] for each p
    offsets = np.arange(total) - np.repeat(np.cumsum(partners) - partners, partners) + 1
    return order[left], order[left + offsets]


def near_pairs(hashes: np.ndarray, max_distance: int,
               others: np.ndarray | None = None) -> np.ndarray:
    """Pairs of hashes within `max_distance` bits, by multi-index hashing.

    Split the 64 bits into m = d + r disjoint blocks: two hashes within distance d differ in at
    most d blocks, so they agree exactly on at least r of them. Candidates are the pairs that
    share the key of some r-combination of blocks (found by sorting the keys); each candidate
    is checked with a popcount. r = 1 is classic multi-index hashing; r = 2 at d = 4 makes
    21-bit keys instead of 13-bit ones and 60x fewer chance candidates on 116k face hashes.

    Args:
        hashes: (N,) uint64.
        max_distance: largest Hamming distance counted as a match (0 means equal hashes).
        others: optional (M,) uint64; when given, return cross pairs (i in hashes, j in others).
    Returns:
        (P, 3) int64 rows (i, j, distance), sorted; within one set i < j.
    """
    hashes = np.asarray(hashes, dtype=np.uint64)
    cross = others is not None
    pool = np.concatenate([hashes, np.asarray(others, dtype=np.uint64)]) if cross else hashes
    n = len(hashes)
    per_key = _blocks_per_key(len(pool), max_distance)
    blocks = _blocks(pool, max_distance + per_key)
    keys = [_block_keys(pool, block) for block in blocks]
    found = [np.zeros((0, 3), dtype=np.int64)]
    for combo in itertools.combinations(range(len(blocks)), per_key):
        key, shift = np.zeros(len(pool), dtype=np.uint64), 0
        for b in combo:  # the blocks hold 64 bits in all, so any combination fits in one key
            key |= keys[b] << np.uint64(shift)
            shift += len(blocks[b])
        i, j = _pairs_with_equal_keys(key)
        if cross:  # keep only pairs with one side in each set
            keep = (i < n) != (j < n)
            i, j = i[keep], j[keep]
        i, j = np.minimum(i, j), np.maximum(i, j)
        dist = popcount64(pool[i] ^ pool[j])
        ok = dist <= max_distance
        found.append(np.stack([i[ok], j[ok], dist[ok]], axis=1))
    # a pair that agrees on more than `per_key` blocks was found once per combination
    pairs = np.unique(np.concatenate(found).astype(np.int64), axis=0)  # sorted by (i, j)
    if cross:
        pairs[:, 1] -= n
    return pairs


def near_pairs_bruteforce(hashes: np.ndarray, max_distance: int,
                          others: np.ndarray | None = None) -> np.ndarray:
    """Reference O(N^2) search with the same output as `near_pairs` (for tests)."""
    hashes = np.asarray(hashes, dtype=np.uint64)
    target = hashes if others is None else np.asarray(others, dtype=np.uint64)
    rows: list[tuple[int, int, int]] = []
    for i, h in enumerate(hashes):
        dist = popcount64(target ^ h)
        js = np.nonzero(dist <= max_distance)[0]
        if others is None:
            js = js[js > i]
        rows.extend((i, int(j), int(dist[j])) for j in js)
    return np.array(rows, dtype=np.int64).reshape(-1, 3)
