"""Duplicate detection, in one place: hash candidates, the pixel check, groups and overlap.

1. `near_pairs`: every pair of 64-bit dHashes within `max_distance` bits, by multi-index
   hashing (exactly the pairs of a brute-force search, `near_pairs_bruteforce`).
2. `confirm_pairs`: each candidate checked on the pixels (`pixel_distance`, with a cheap
   coarse lower bound that rejects different faces first).
3. `group_ids`: confirmed pairs -> connected components.
4. `find_duplicates` (within the training set) and `find_overlap` (val/test against train).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from comp.prepare.dhash import hex_to_hash

OVERLAP_COLUMNS = ["source", "id", "train_ids", "train_labels", "distance", "pixel", "label",
                   "consistent"]


# -- hash candidates ------------------------------------------------------------------------------

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


def near_pairs(hashes: np.ndarray, max_distance: int, *, others: np.ndarray | None = None,
               per_key: int | None = None) -> np.ndarray:
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
        per_key: blocks per lookup key r (default: the cheapest by `_blocks_per_key`); any
            r from 1 to max_distance + 1 finds the same pairs.
    Returns:
        (P, 3) int64 rows (i, j, distance), sorted; within one set i < j.
    """
    hashes = np.asarray(hashes, dtype=np.uint64)
    cross = others is not None
    pool = np.concatenate([hashes, np.asarray(others, dtype=np.uint64)]) if cross else hashes
    n = len(hashes)
    if per_key is None:
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


def near_pairs_bruteforce(hashes: np.ndarray, max_distance: int, *,
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


# -- the pixel check -----------------------------------------------------------------------------

def pixel_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mean absolute pixel difference after removing each pair's mean brightness offset.

    Compared on 2x2 block means: a re-export's error (JPEG ringing, rounding) is high-frequency
    and averages out, while two different faces, even aligned alike, differ at every scale.
    A re-exported copy (JPEG round trip, +-3 brightness) scores about 0-3 on the 0..255 scale.

    Args:
        a, b: (P, H, W, C) uint8 arrays of paired images.
    Returns:
        (P,) float32.
    """
    p, h, w, c = a.shape
    if p == 0:
        return np.zeros(0, dtype=np.float32)
    h2, w2 = h // 2 * 2, w // 2 * 2
    diff = a[:, :h2, :w2].astype(np.int16)
    diff -= b[:, :h2, :w2]
    # 2x2 cell sums in exact integers (|sum| <= 1020), then the means in float32
    cells = diff[:, 0::2, 0::2] + diff[:, 1::2, 0::2]
    cells += diff[:, 0::2, 1::2]
    cells += diff[:, 1::2, 1::2]
    means = cells.reshape(p, -1).astype(np.float32)
    means /= 4
    means -= means.mean(axis=1, keepdims=True)
    return np.abs(means).mean(axis=1)


def _coarse(images: np.ndarray, grid: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """Block means over a grid x grid partition of the 2x2 cells `pixel_distance` compares.

    Returns:
        (N, grid, grid, C) float32 means and the (grid, grid) share of cells in each block.
    """
    n, h, w, c = images.shape
    rows = 2 * np.linspace(0, h // 2, min(grid, h // 2) + 1).astype(int)
    cols = 2 * np.linspace(0, w // 2, min(grid, w // 2) + 1).astype(int)
    x = images[:, :rows[-1], :cols[-1]].astype(np.float32)
    sums = np.add.reduceat(np.add.reduceat(x, rows[:-1], axis=1), cols[:-1], axis=2)
    counts = np.outer(np.diff(rows), np.diff(cols)).astype(np.float32)
    return sums / counts[None, :, :, None], counts / counts.sum()


def coarse_bound(sig_a: np.ndarray, sig_b: np.ndarray, share: np.ndarray) -> np.ndarray:
    """A lower bound of `pixel_distance` from block means (so a pair above the threshold here
    is above it there too): for any partition into blocks,
    mean|d - mu| >= sum over blocks of share * |mean_block(d) - mu|, with the same mu."""
    delta = sig_a - sig_b  # (P, g, g, C)
    weight = share[None, :, :, None] / delta.shape[-1]
    mu = (delta * weight).sum(axis=(1, 2, 3), keepdims=True)
    return (np.abs(delta - mu) * weight).sum(axis=(1, 2, 3))


def confirm_pairs(pairs: np.ndarray, images_a: np.ndarray, images_b: np.ndarray | None = None,
                  *, threshold: float = np.inf, batch: int = 1024) -> np.ndarray:
    """`pixel_distance` for each hash candidate pair (i in a, j in b or a), in batches.

    Pairs whose coarse lower bound already exceeds `threshold` skip the full comparison and
    report that bound instead (still above the threshold): different faces are rejected at
    about 1/50 of the cost, copies are compared in full.
    """
    out = np.zeros(len(pairs), dtype=np.float32)
    if len(pairs) == 0:
        return out

    def signatures(images: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Coarse signatures of the images a pair refers to (sorted ids, signatures)."""
        return idx, np.concatenate([_coarse(np.asarray(images[idx[s:s + batch]]))[0]
                                    for s in range(0, len(idx), batch)])

    if images_b is None:  # one set: one signature per image, whichever column it is in
        images_b = images_a
        ia, sa = ib, sb = signatures(images_a, np.unique(pairs[:, :2]))
    else:
        ia, sa = signatures(images_a, np.unique(pairs[:, 0]))
        ib, sb = signatures(images_b, np.unique(pairs[:, 1]))
    share = _coarse(np.asarray(images_a[:1]))[1]
    for s in range(0, len(pairs), batch):
        p = pairs[s:s + batch]
        bound = coarse_bound(sa[np.searchsorted(ia, p[:, 0])], sb[np.searchsorted(ib, p[:, 1])],
                             share)
        full = bound <= threshold
        bound[full] = pixel_distance(np.asarray(images_a[p[full, 0]]),
                                     np.asarray(images_b[p[full, 1]]))
        out[s:s + batch] = bound
    return out


# -- groups and overlap ---------------------------------------------------------------------------

def group_ids(n: int, pairs: np.ndarray) -> np.ndarray:
    """Connected components of `pairs` over n items; each item's group id is its group's
    smallest member (stable, readable: a singleton is its own group)."""
    if len(pairs) == 0:
        return np.arange(n)
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    first = np.full(comp.max() + 1, n)
    np.minimum.at(first, comp, np.arange(n))
    return first[comp]


def find_duplicates(hashes: np.ndarray, store: np.ndarray, *, max_distance: int,
                    pixel_threshold: float) -> pd.DataFrame:
    """Confirmed duplicate pairs within one set: columns i, j, distance, pixel."""
    pairs = near_pairs(hashes, max_distance)
    pixel = confirm_pairs(pairs, store, threshold=pixel_threshold)
    frame = pd.DataFrame({"i": pairs[:, 0], "j": pairs[:, 1], "distance": pairs[:, 2],
                          "pixel": pixel})
    return frame[frame["pixel"] <= pixel_threshold].reset_index(drop=True)


def find_overlap(target_hashes: np.ndarray, target_store: np.ndarray, train: pd.DataFrame,
                 train_store: np.ndarray, *, max_distance: int, pixel_threshold: float,
                 source: str, target_ids: list[str]) -> pd.DataFrame:
    """Which target images match a training image, and the label(s) they would inherit."""
    train_hashes = hex_to_hash(train["dhash"].tolist())
    pairs = near_pairs(target_hashes, max_distance, others=train_hashes)
    if len(pairs) == 0 or target_store.shape[1:] != train_store.shape[1:]:
        return pd.DataFrame(columns=OVERLAP_COLUMNS)
    pixel = confirm_pairs(pairs, target_store, train_store, threshold=pixel_threshold)
    ok = pixel <= pixel_threshold
    if not ok.any():
        return pd.DataFrame(columns=OVERLAP_COLUMNS)
    pairs, pixel = pairs[ok], pixel[ok]
    # pairs are sorted by target: one run of rows per target, its matches in train order
    starts = np.flatnonzero(np.r_[True, pairs[1:, 0] != pairs[:-1, 0]])
    ends = np.r_[starts[1:], len(pairs)]
    train_ids = train["id"].to_numpy()[pairs[:, 1]]
    labels = train["label"].to_numpy()[pairs[:, 1]]
    lowest, highest = np.minimum.reduceat(labels, starts), np.maximum.reduceat(labels, starts)
    consistent = lowest == highest
    return pd.DataFrame({
        "source": source, "id": np.asarray(target_ids, dtype=object)[pairs[starts, 0]],
        "train_ids": [";".join(train_ids[a:b]) for a, b in zip(starts, ends, strict=True)],
        "train_labels": [";".join(map(str, labels[a:b].tolist()))
                         for a, b in zip(starts, ends, strict=True)],
        "distance": np.minimum.reduceat(pairs[:, 2], starts),
        "pixel": np.minimum.reduceat(pixel, starts).astype(float),
        "label": np.where(consistent, lowest, -1), "consistent": consistent},
        columns=OVERLAP_COLUMNS)
