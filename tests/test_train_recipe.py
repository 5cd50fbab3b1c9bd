"""The recipe of a run (its warm-up among it) and the fine-tuning it describes: the base frozen
for the warm-up epochs, then unfrozen."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from comp.config import TrainConfig


def test_the_warmup_comes_from_the_spec_and_the_weights() -> None:
    from comp.train.recipe import Recipe

    assert Recipe.of(TrainConfig(model="mobilenetv2")).warmup == 2
    assert Recipe.of(TrainConfig(model="mobilenetv2", epochs=2)).warmup == 1  # one to tune
    assert Recipe.of(TrainConfig(model="mobilenetv2", weights="none")).warmup == 0  # random
    assert Recipe.of(TrainConfig(model="convnexttiny", warmup_epochs=0)).warmup == 0
    assert Recipe.of(TrainConfig(model="res")).warmup == 0
    assert Recipe.of(TrainConfig(model="tl3")).warmup == 0  # the report's recipe


def test_warmup_freezes_the_base_then_fine_tunes_it(workspace: Path, tmp_path: Path) -> None:
    """MobileNetV2 from a weights file, 3 epochs, 1 of warm-up: after epoch 1 the base's
    weights are the file's and the head has moved, at 10x the rate; after epochs 2 and 3
    the base has moved too, at the recipe's rate. Batch norm stays frozen throughout, so its
    moving statistics never move (Keras 3's fit would otherwise update them)."""
    import keras

    from comp.train import train
    from comp.train.models import pretrained_base

    source = keras.applications.MobileNetV2(include_top=False, weights=None,
                                            input_shape=(32, 32, 3))
    path = tmp_path / "mobilenet.weights.h5"
    source.save_weights(path)
    start = [keras.ops.convert_to_numpy(w) for w in source.weights]  # the base, in order
    seen: list[dict[str, Any]] = []

    class Watch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            base = pretrained_base(self.model)
            change = [(("moving" in w.path), float(np.abs(keras.ops.convert_to_numpy(w) - s).max()))
                      for w, s in zip(base.weights, start, strict=True)]
            seen.append({
                "trainable": base.trainable,
                "bn_frozen": all(not layer.trainable for layer in base.layers
                                 if isinstance(layer, keras.layers.BatchNormalization)),
                "moved": max(c for moving, c in change if not moving),
                "moving": max(c for moving, c in change if moving),
                "lr": float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))})

    train(TrainConfig(workspace=workspace, model="mobilenetv2", weights=str(path), epochs=3,
                      warmup_epochs=1, folds=1, batch_size=64, max_images=128,
                      checkpoints=tmp_path / "ck", run_name="m", progress=False),
          watch=(Watch(),))
    assert [s["trainable"] for s in seen] == [False, True, True]
    assert seen[0]["moved"] == 0.0 and seen[1]["moved"] > 0 and seen[2]["moved"] > 0
    assert all(s["moving"] == 0.0 and s["bn_frozen"] for s in seen), seen
    assert seen[0]["lr"] == pytest.approx(1e-3) and seen[1]["lr"] == pytest.approx(1e-4)
