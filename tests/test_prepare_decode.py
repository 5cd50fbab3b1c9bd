"""The store writer: every file decoded once, in parallel, into one uint8 array; hashes of the
native pixels equal imagehash's; bad files stop it or, with skip_bad, are counted."""

from __future__ import annotations

from pathlib import Path

import imagehash
import numpy as np
import pytest
from PIL import Image

from comp.errors import CompError
from comp.prepare.decode import decode_to_store
from comp.prepare.dhash import hash_to_hex


def _images(folder: Path, n: int, size: int = 20) -> list[str]:
    folder.mkdir()
    rng = np.random.default_rng(0)
    paths = []
    for k in range(n):
        path = folder / f"{k}.png"
        Image.fromarray(rng.integers(0, 256, (size, size, 3), np.uint8)).save(path)
        paths.append(str(path))
    return paths


@pytest.mark.parametrize("workers", [1, 2])
def test_the_store_holds_every_image_and_its_imagehash(tmp_path: Path, workers: int) -> None:
    paths = _images(tmp_path / "in", 7)
    store = tmp_path / "images-train.npy"
    result = decode_to_store(paths, store, size=(16, 18), gray=False, workers=workers)
    pixels = np.load(store)
    assert pixels.shape == (7, 16, 18, 3) and pixels.dtype == np.uint8
    assert result.kept.all() and result.bad == [] and result.native_sizes == {(20, 20)}
    for k, path in enumerate(paths):  # hashes of the native pixels, not of the resized ones
        assert hash_to_hex(result.hashes[k:k + 1])[0] == str(imagehash.dhash(Image.open(path)))
    assert not list(tmp_path.glob("*.tmp.npy"))


def test_a_bad_file_stops_the_store_or_is_skipped(tmp_path: Path) -> None:
    paths = _images(tmp_path / "in", 4)
    Path(paths[2]).write_bytes(b"not an image")
    store = tmp_path / "s.npy"
    with pytest.raises(CompError, match="2.png: cannot decode the image"):
        decode_to_store(paths, store, size=None, gray=True, workers=1)
    assert not store.exists() and not list(tmp_path.glob("*.tmp.npy"))  # nothing half-made
    result = decode_to_store(paths, store, size=None, gray=True, workers=1, skip_bad=True)
    assert result.kept.tolist() == [True, True, False, True] and len(result.bad) == 1
    assert np.load(store).shape == (3, 20, 20, 1)


def test_images_below_the_minimum_side_are_refused(tmp_path: Path) -> None:
    paths = _images(tmp_path / "in", 2, size=12)
    with pytest.raises(CompError, match="image is 12x12, smaller than comp's 16x16 minimum"):
        decode_to_store(paths, tmp_path / "s.npy", size=(32, 32), gray=False, workers=1)
