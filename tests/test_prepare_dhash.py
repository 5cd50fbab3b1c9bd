"""dHash equals imagehash.dhash bit for bit."""

from __future__ import annotations

from pathlib import Path

import imagehash
import numpy as np
import pytest
from PIL import Image

from comp.prepare.dhash import dhash, hash_to_hex, hex_to_hash, to_gray
from comp.prepare.image import decode_file

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
        _, gray, _ = decode_file(path, None, gray=False)
        assert int(dhash(gray[None])[0]) == _reference(Image.open(path)), path


def test_to_gray_equals_pil() -> None:
    rgb = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    rgb[0, :8] = [[0, 0, 0], [255, 255, 255], [1, 0, 0], [0, 1, 0], [0, 0, 1], [255, 0, 0],
                  [0, 255, 0], [0, 0, 255]]
    np.testing.assert_array_equal(to_gray(rgb[None])[0],
                                  np.asarray(Image.fromarray(rgb).convert("L")))


def test_hex_round_trip_matches_imagehash_string() -> None:
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 40, 3), np.uint8))
    ours = dhash(np.asarray(image)[None])
    assert hash_to_hex(ours) == [str(imagehash.dhash(image))]
    assert hex_to_hash(hash_to_hex(ours))[0] == ours[0]
