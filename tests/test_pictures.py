"""Pictures: montages, learning curves and confusion matrices, written whole as PNGs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from comp import pictures


def test_a_montage_has_one_row_per_group_and_enlarges_small_images(tmp_path: Path) -> None:
    image = np.zeros((8, 8, 3), np.uint8)
    image[:, :4] = 255  # left half white
    path = tmp_path / "m.png"
    pictures.montage([[(image, "a"), (image, "b")], [(image, "c")]], "title", path)
    with Image.open(path) as picture:
        width, height = picture.size
        pixels = np.asarray(picture.convert("RGB"))
    scale = 112 // 8  # small images are enlarged 14x
    assert width == max(8 + 2 * (max(8 * scale, 96) + 8), 420)  # at least 420 wide
    assert height == 28 + 2 * (8 * scale + 30 + 8) + 8
    top, left = 28, 8  # the first image, enlarged by nearest neighbour: half white, half black
    assert (pixels[top + 5, left:left + 4 * scale] == 255).all()
    assert (pixels[top + 5, left + 4 * scale:left + 8 * scale] == 0).all()


def test_curves_and_confusion_are_written(tmp_path: Path) -> None:
    history = pd.DataFrame({"epoch": [1, 2], "loss": [0.7, 0.5], "val_loss": [0.72, 0.6],
                            "balanced_accuracy": [0.5, 0.7], "val_balanced_accuracy": [0.5, 0.6]})
    pictures.learning_curves(history, tmp_path / "c.png", "run")
    pictures.confusion_plot(np.array([[3, 1], [0, 4]]), ["0", "1"], tmp_path / "k.png", "t")
    for name in ("c.png", "k.png"):
        with Image.open(tmp_path / name) as picture:
            assert picture.format == "PNG" and min(picture.size) > 100
    assert not list(tmp_path.glob(".*"))  # no temporary file left
