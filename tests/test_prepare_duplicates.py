"""Duplicate search equals brute force; the pixel check and groups by hand."""

from __future__ import annotations

import numpy as np
import pytest

from comp.prepare import duplicates
from comp.prepare.duplicates import (
    coarse_bound,
    confirm_pairs,
    group_ids,
    near_pairs,
    near_pairs_bruteforce,
    pixel_distance,
    popcount64,
)


def test_popcount_by_hand() -> None:
    values = np.array([0, 1, 0b1011, 2**64 - 1, 2**63], dtype=np.uint64)
    assert popcount64(values).tolist() == [0, 1, 3, 64, 1]


def _clustered(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 2**63, size=max(n // 20, 1), dtype=np.uint64)
    out = base[rng.integers(0, len(base), n)]
    for _ in range(3):  # flip a few random bits per hash
        flip = rng.random(n) < 0.6
        out = np.where(flip, out ^ (np.uint64(1) << rng.integers(0, 64, n).astype(np.uint64)), out)
    return out


@pytest.mark.parametrize("distance", [0, 1, 3, 4, 6, 8])
def test_near_pairs_equal_brute_force(distance: int) -> None:
    hashes = _clustered(1500, distance)
    got = near_pairs(hashes, distance)
    want = near_pairs_bruteforce(hashes, distance)
    assert len(want) > 0
    np.testing.assert_array_equal(got, want)


def test_cross_pairs_equal_brute_force() -> None:
    a, b = _clustered(600, 1), _clustered(900, 1)
    np.testing.assert_array_equal(near_pairs(a, 4, others=b), near_pairs_bruteforce(a, 4, others=b))


def test_near_pairs_by_hand() -> None:
    hashes = np.array([0b0, 0b1, 0b11, 0b111000, 2**63], dtype=np.uint64)
    # distances: (0,1)=1 (0,2)=2 (0,3)=3 (0,4)=1 (1,2)=1 (1,3)=4 (1,4)=2 (2,3)=5 (2,4)=3 (3,4)=4
    assert near_pairs(hashes, 0).tolist() == []
    assert near_pairs(hashes, 1).tolist() == [[0, 1, 1], [0, 4, 1], [1, 2, 1]]
    assert near_pairs(hashes, 2).tolist() == [[0, 1, 1], [0, 2, 2], [0, 4, 1], [1, 2, 1],
                                              [1, 4, 2]]


def test_group_ids_by_hand() -> None:
    pairs = np.array([[0, 3], [3, 5], [1, 2]])
    assert group_ids(7, pairs).tolist() == [0, 1, 1, 0, 4, 0, 6]
    assert group_ids(3, np.zeros((0, 2), int)).tolist() == [0, 1, 2]


def test_pixel_distance_of_no_pairs() -> None:
    empty = np.zeros((0, 6, 6, 3), np.uint8)
    assert pixel_distance(empty, empty).shape == (0,)


def test_pixel_distance_ignores_brightness_offset() -> None:
    rng = np.random.default_rng(0)
    a = rng.integers(10, 240, size=(1, 8, 8, 3), dtype=np.uint8)
    assert pixel_distance(a, a + 3)[0] == pytest.approx(0.0, abs=1e-5)
    b = a.copy()
    b[0, :2, :2, 0] += 8  # one 2x2 block, one channel: |8 - 8/48| on 1 of 48 block values
    assert pixel_distance(a, b)[0] == pytest.approx((8 - 8 / 48) / 48 + 47 * (8 / 48) / 48,
                                                            rel=1e-4)


@pytest.mark.parametrize("shape", [(56, 56, 3), (50, 50, 1), (37, 23, 3)])
def test_coarse_bound_never_exceeds_the_pixel_distance(shape: tuple[int, int, int]) -> None:
    rng = np.random.default_rng(sum(shape))
    a = rng.integers(0, 256, size=(200, *shape), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-40, 40, size=a.shape) * (rng.random((200, 1, 1, 1))
                                                                       < 0.5), 0, 255)
    b = b.astype(np.uint8)
    b[100:] = rng.integers(0, 256, size=(100, *shape), dtype=np.uint8)
    full = pixel_distance(a, b)
    (sa, share), (sb, _) = duplicates._coarse(a), duplicates._coarse(b)
    bound = coarse_bound(sa, sb, share)
    assert (bound <= full + 1e-3).all()
    pairs = np.stack([np.arange(200), np.arange(200)], axis=1)
    merged = np.concatenate([a, b])
    pairs_ab = np.stack([np.arange(200), 200 + np.arange(200)], axis=1)
    for threshold in (0.0, 5.0, np.inf):
        got = confirm_pairs(pairs, a, b, threshold=threshold)
        assert ((got <= threshold) == (full <= threshold)).all()
        np.testing.assert_allclose(got[full <= threshold], full[full <= threshold], rtol=1e-5)
        same = confirm_pairs(pairs_ab, merged, threshold=threshold)
        np.testing.assert_allclose(same, got, rtol=1e-5)


def _face_hashes(n: int) -> np.ndarray:
    """dHashes of demo faces (strongly biased bits, as real faces have), plus re-encoded
    copies (brightness shifted, noise added) so that every distance up to 8 occurs."""
    from comp.demo.generate import draw_faces
    from comp.prepare.dhash import dhash

    rng = np.random.default_rng(5)
    faces = draw_faces(rng.random(n) < 0.4, rng.random(n) < 0.5, 32, seed=11)
    copies = faces[: n // 4].astype(np.int16) + rng.integers(-6, 7, (n // 4, 32, 32, 3))
    return dhash(np.concatenate([faces, np.clip(copies, 0, 255).astype(np.uint8)]))


@pytest.mark.parametrize("distance", [2, 4, 6, 8])
@pytest.mark.parametrize("per_key", [1, 2, 3])
def test_near_pairs_on_face_hashes_equal_brute_force(distance: int, per_key: int) -> None:
    hashes = _face_hashes(1200)
    got = near_pairs(hashes, distance, per_key=per_key)
    want = near_pairs_bruteforce(hashes, distance)
    assert len(want) > 0
    assert set(want[:, 2].tolist()) >= {distance}  # pairs at the search radius are present
    np.testing.assert_array_equal(got, want)
    cross = near_pairs(hashes[:500], distance, others=hashes[500:], per_key=per_key)
    np.testing.assert_array_equal(cross, near_pairs_bruteforce(hashes[:500], distance,
                                                               others=hashes[500:]))
