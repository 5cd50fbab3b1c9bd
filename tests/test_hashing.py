"""dHash equals imagehash.dhash bit for bit; the multi-index search equals brute force."""

from __future__ import annotations

from pathlib import Path

import imagehash
import numpy as np
import pytest
from PIL import Image

from comp import images
from comp.hashing import (
    dhash,
    hash_to_hex,
    hex_to_hash,
    near_pairs,
    near_pairs_bruteforce,
    popcount64,
    to_gray,
)
from comp.images import decode_file

from .conftest import SHARED_DATA


def _reference(image: Image.Image) -> int:
    return int(str(imagehash.dhash(image)), 16)


@pytest.mark.parametrize("shape", [(56, 56, 3), (64, 64), (109, 89, 3), (50, 50, 1), (32, 32, 3),
                                   (13, 200, 3), (9, 8, 3), (100, 10)])
def test_dhash_equals_imagehash_on_random_images(shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(sum(shape))
    noise = rng.integers(0, 256, size=(30, *shape), dtype=np.uint8)
    # smooth gradients too: near-ties between neighbours are where rounding matters
    ramp = np.linspace(0, 255, shape[1], dtype=np.float64)[None, None, :]
    smooth = np.clip(ramp + rng.normal(0, 2, size=(30, shape[0], shape[1])), 0, 255)
    smooth = smooth.astype(np.uint8)
    if len(shape) == 3:
        smooth = np.repeat(smooth[..., None], shape[2], axis=-1)
    batch = np.concatenate([noise, smooth])
    ours = dhash(batch)
    for k, array in enumerate(batch):
        pil = Image.fromarray(array[..., 0] if array.ndim == 3 and array.shape[-1] == 1 else array)
        assert int(ours[k]) == _reference(pil), f"image {k} of shape {shape}"


def test_dhash_equals_imagehash_on_files(demo_dir: Path) -> None:
    """Several hundred real files, RGB PNG (demo) and grayscale/RGB JPEG (shared data)."""
    files = sorted((demo_dir / "train").glob("*.png"))[:300]
    for name in ("smilesmiled", "celeba-first10k"):
        files += sorted((SHARED_DATA / name / "images").glob("*.jpg"))[:150]
    for path in files:
        _, gray = decode_file(path, None, gray=False)
        assert int(dhash(gray[None])[0]) == _reference(Image.open(path)), path


def test_to_gray_equals_pil() -> None:
    rgb = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    rgb[0, :8] = [[0, 0, 0], [255, 255, 255], [1, 0, 0], [0, 1, 0], [0, 0, 1], [255, 0, 0],
                  [0, 255, 0], [0, 0, 255]]
    np.testing.assert_array_equal(to_gray(rgb[None])[0],
                                  np.asarray(Image.fromarray(rgb).convert("L")))


def _interlaced_png(rgb: np.ndarray) -> bytes:
    """An Adam7-interlaced 8-bit RGB PNG (PIL cannot write one), filter type 0 throughout."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    raw = b""
    for y0, x0, dy, dx in [(0, 0, 8, 8), (0, 4, 8, 8), (4, 0, 8, 4), (0, 2, 4, 4), (2, 0, 4, 2),
                           (0, 1, 2, 2), (1, 0, 2, 1)]:
        for row in rgb[y0::dy, x0::dx]:
            if row.size:
                raw += b"\x00" + row.tobytes()
    h, w = rgb.shape[:2]
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 1))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "LA", "P", "I;16", "RGB-tRNS", "L-tRNS",
                                  "RGB-Adam7"])
@pytest.mark.parametrize(("size", "gray"), [(None, False), (None, True), ((20, 24), False),
                                            ((20, 24), True)])
def test_fast_png_path_equals_pil_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       mode: str, size: tuple[int, int] | None,
                                       gray: bool) -> None:
    """PNGs that libpng decodes give the same store pixels and hash input as PIL's path."""
    rng = np.random.default_rng(len(mode))
    rgba = rng.integers(0, 256, (30, 36, 4), dtype=np.uint8)
    path = tmp_path / "x.png"
    if mode == "I;16":
        Image.fromarray(rng.integers(0, 65536, (30, 36), dtype=np.uint16)).save(path)
    elif mode == "RGB-tRNS":
        Image.fromarray(rgba[..., :3]).save(path, transparency=(1, 2, 3))
    elif mode == "L-tRNS":
        Image.fromarray(rgba[..., 0]).save(path, transparency=7)
    elif mode == "RGB-Adam7":
        path.write_bytes(_interlaced_png(rgba[..., :3]))
    else:
        Image.fromarray(rgba, "RGBA").convert(mode).save(path)
    assert (images._fast_png(path) is not None) == (mode in ("RGB", "L", "RGBA", "RGB-tRNS",
                                                          "L-tRNS"))
    fast = decode_file(path, size, gray)
    monkeypatch.setattr(images, "_fast_png", lambda _path: None)
    slow = decode_file(path, size, gray)
    assert fast[0].dtype == slow[0].dtype == np.uint8
    np.testing.assert_array_equal(fast[0], slow[0])
    gray = [to_gray(p[None] if p.ndim == 2 else p[None])[0] for p in (fast[1], slow[1])]
    np.testing.assert_array_equal(gray[0], gray[1])


def test_hex_round_trip_matches_imagehash_string() -> None:
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 40, 3), np.uint8))
    ours = dhash(np.asarray(image)[None])
    assert hash_to_hex(ours) == [str(imagehash.dhash(image))]
    assert hex_to_hash(hash_to_hex(ours))[0] == ours[0]


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
    np.testing.assert_array_equal(near_pairs(a, 4, others=b), near_pairs_bruteforce(a, 4, b))


def test_near_pairs_by_hand() -> None:
    hashes = np.array([0b0, 0b1, 0b11, 0b111000, 2**63], dtype=np.uint64)
    # distances: (0,1)=1 (0,2)=2 (0,3)=3 (0,4)=1 (1,2)=1 (1,3)=4 (1,4)=2 (2,3)=5 (2,4)=3 (3,4)=4
    assert near_pairs(hashes, 0).tolist() == []
    assert near_pairs(hashes, 1).tolist() == [[0, 1, 1], [0, 4, 1], [1, 2, 1]]
    assert near_pairs(hashes, 2).tolist() == [[0, 1, 1], [0, 2, 2], [0, 4, 1], [1, 2, 1],
                                              [1, 4, 2]]
