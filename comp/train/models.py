"""The report's models: B1/B2/B3 (small CNNs from scratch) and ResNet50 transfer TL1/TL2/TL3,
and `res`, a compact residual network for small faces.

`build_model(name, input_shape, num_classes, weights=...)` is the one entry point; `MODELS` maps
names to builders. Every model takes float32 pixels in 0..255 and does its own rescaling, so the
store feeds any of them unchanged and a saved model predicts from raw pixels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
from keras import layers

from comp.errors import CompError

RESNET_NOTOP = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
TL2_FIRST_TRAINABLE = "conv5_block2_2_conv"  # the report's res5b_branch2b (158 frozen layers)
EMBEDDING = "embedding"  # name of the penultimate layer, read by the ensemble
CNN_MIN_SIDE = 22  # 22 -> conv 20 -> pool 10 -> conv 8 -> pool 4 -> conv 2 -> pool 1


@dataclass(frozen=True)
class ModelDefaults:
    """How a model is trained by default. The report's models: Adam, the learning rate
    divided by 10 on a plateau of the validation loss. `res`: AdamW with decoupled weight
    decay, a cosine schedule after one warm-up epoch, label smoothing."""

    learning_rate: float
    augment: bool
    schedule: str = "plateau"  # plateau (ReduceLROnPlateau) or cosine (warm-up + cosine decay)
    weight_decay: float = 0.0  # > 0: AdamW
    label_smoothing: float = 0.0


DEFAULTS = {
    "logreg": ModelDefaults(1e-3, False),
    "b1": ModelDefaults(1e-3, False), "b2": ModelDefaults(1e-3, False),
    "b3": ModelDefaults(1e-4, True), "tl1": ModelDefaults(1e-3, False),
    "tl2": ModelDefaults(1e-4, False), "tl3": ModelDefaults(1e-4, False),
    "res": ModelDefaults(3e-3, True, schedule="cosine", weight_decay=5e-4,
                         label_smoothing=0.1),
}
RES_STEM = 16  # a stride-2 3x3 convolution: 56x56 -> 28x28
RES_WIDTHS = (16, 32, 64, 128)  # one basic block per stage; stages 2-4 halve the resolution


@keras.saving.register_keras_serializable(package="comp")
class ResNetPreprocess(layers.Layer):
    """keras.applications.resnet50.preprocess_input ('caffe': RGB->BGR, minus ImageNet means)
    as a layer, so it is saved with the model; grayscale input is repeated to 3 channels."""

    MEAN = (103.939, 116.779, 123.68)

    def call(self, inputs):  # type: ignore[override]
        x = keras.ops.cast(inputs, self.compute_dtype)
        if x.shape[-1] == 1:
            x = keras.ops.repeat(x, 3, axis=-1)
        x = x[..., ::-1]
        return x - keras.ops.convert_to_tensor(self.MEAN, dtype=self.compute_dtype)

    def compute_output_shape(self, input_shape):  # type: ignore[override]
        return (*input_shape[:-1], 3)


@keras.saving.register_keras_serializable(package="comp")
class Grayscale(layers.Layer):
    """RGB -> one luma channel (ITU-R 601, as PIL's "L"); one-channel input passes through."""

    def call(self, inputs):  # type: ignore[override]
        x = keras.ops.cast(inputs, self.compute_dtype)
        if x.shape[-1] == 1:
            return x
        weights = keras.ops.convert_to_tensor([0.299, 0.587, 0.114], dtype=self.compute_dtype)
        return keras.ops.sum(x * weights, axis=-1, keepdims=True)

    def compute_output_shape(self, input_shape):  # type: ignore[override]
        return (*input_shape[:-1], 1)


@keras.saving.register_keras_serializable(package="comp")
class BalancedAccuracy(keras.metrics.Metric):
    """Mean per-class recall over the classes seen so far (scikit-learn's
    `balanced_accuracy_score`), accumulated as a confusion matrix so it is exact per epoch and
    aggregates correctly across replicas."""

    def __init__(self, num_classes: int = 2, threshold: float = 0.5,
                 name: str = "balanced_accuracy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.num_classes = num_classes
        self.threshold = threshold
        self.matrix = self.add_variable(shape=(num_classes, num_classes), initializer="zeros",
                                        name="matrix", dtype="float32")

    def update_state(self, y_true, y_pred, sample_weight=None):  # type: ignore[override]
        ops = keras.ops
        if self.num_classes == 2 and y_pred.shape[-1] == 1:
            pred = ops.cast(ops.reshape(y_pred, (-1,)) >= self.threshold, "int32")
            true = ops.cast(ops.reshape(y_true, (-1,)), "int32")
        else:
            pred = ops.argmax(y_pred, axis=-1)
            true = ops.argmax(y_true, axis=-1) if len(y_true.shape) > 1 and y_true.shape[-1] > 1 \
                else ops.reshape(y_true, (-1,))
            pred, true = ops.cast(pred, "int32"), ops.cast(true, "int32")
        cells = ops.one_hot(true * self.num_classes + pred, self.num_classes ** 2)
        counts = ops.reshape(ops.sum(cells, axis=0), (self.num_classes, self.num_classes))
        self.matrix.assign_add(ops.cast(counts, "float32"))

    def result(self):  # type: ignore[override]
        ops = keras.ops
        totals = ops.sum(self.matrix, axis=1)
        recall = ops.diagonal(self.matrix) / ops.maximum(totals, 1.0)
        present = ops.cast(totals > 0, "float32")
        return ops.sum(recall * present) / ops.maximum(ops.sum(present), 1.0)

    def reset_state(self):  # type: ignore[override]
        self.matrix.assign(keras.ops.zeros(self.matrix.shape, dtype="float32"))

    def get_config(self):  # type: ignore[override]
        return {**super().get_config(), "num_classes": self.num_classes,
                "threshold": self.threshold}


def _head(x, num_classes: int, hidden: int, dropout: float | None):
    for k in range(hidden):
        x = layers.Dense(512, activation="relu",
                         name=EMBEDDING if k == hidden - 1 else f"dense_{k + 1}")(x)
        if dropout:
            x = layers.Dropout(dropout, name=f"dropout_{k + 1}")(x)
    return _output(x, num_classes)


def _output(x, num_classes: int):
    """Sigmoid unit for two classes, softmax over N otherwise; float32 under mixed precision."""
    if num_classes == 2:
        return layers.Dense(1, activation="sigmoid", dtype="float32", name="output")(x)
    return layers.Dense(num_classes, activation="softmax", dtype="float32", name="output")(x)


def _cnn(input_shape: tuple[int, int, int], num_classes: int, hidden: int,
         dropout: float | None, name: str) -> keras.Model:
    inputs = keras.Input(input_shape, name="pixels")
    x = layers.Rescaling(1.0 / 255, name="rescale")(inputs)
    for filters in (16, 64, 128):
        x = layers.Conv2D(filters, 3, activation="relu")(x)
        x = layers.MaxPooling2D(2)(x)
    x = layers.Flatten()(x)
    return keras.Model(inputs, _head(x, num_classes, hidden, dropout), name=name)


def build_logreg(input_shape, num_classes, weights=None):  # noqa: ARG001
    """Logistic regression on grayscale pixels (the CelebA gender report's baseline): one
    Dense layer on the flattened 0..1 luma, trained like the CNNs so its runs compare."""
    inputs = keras.Input(input_shape, name="pixels")
    x = Grayscale(name="grayscale")(inputs)
    x = layers.Rescaling(1.0 / 255, name="rescale")(x)
    x = layers.Flatten(name=EMBEDDING)(x)
    out = _output(x, num_classes)
    return keras.Model(inputs, out, name="logreg")


def build_b1(input_shape, num_classes, weights=None):  # noqa: ARG001 - uniform signature
    """3 x (Conv 3x3 + ReLU + MaxPool 2) with 16/64/128 filters, Dense 512, output."""
    return _cnn(input_shape, num_classes, hidden=1, dropout=None, name="b1")


def build_b2(input_shape, num_classes, weights=None):  # noqa: ARG001
    """b1 with a second Dense 512 and Dropout 0.3 after each hidden Dense."""
    return _cnn(input_shape, num_classes, hidden=2, dropout=0.3, name="b2")


def build_b3(input_shape, num_classes, weights=None):  # noqa: ARG001
    """b2's network; trained with augmentation (zoom 0.1, rotation 10 degrees, flip)."""
    return _cnn(input_shape, num_classes, hidden=2, dropout=0.3, name="b3")


def _residual(x, filters: int, stride: int, name: str):
    """A basic residual block (He et al. 2016): two 3x3 convolutions with batch norm, the
    input added back (through a 1x1 projection where the shape changes)."""
    conv = {"padding": "same", "use_bias": False, "kernel_initializer": "he_normal"}
    y = layers.Conv2D(filters, 3, strides=stride, name=f"{name}_conv1", **conv)(x)
    y = layers.BatchNormalization(name=f"{name}_bn1")(y)
    y = layers.ReLU(name=f"{name}_relu1")(y)
    y = layers.Conv2D(filters, 3, name=f"{name}_conv2", **conv)(y)
    y = layers.BatchNormalization(name=f"{name}_bn2")(y)
    if stride != 1 or x.shape[-1] != filters:
        x = layers.Conv2D(filters, 1, strides=stride, name=f"{name}_proj", **conv)(x)
        x = layers.BatchNormalization(name=f"{name}_proj_bn")(x)
    return layers.ReLU(name=f"{name}_out")(layers.Add(name=f"{name}_add")([x, y]))


def build_res(input_shape, num_classes, weights=None):  # noqa: ARG001
    """Compact residual network for small faces: a stride-2 stem, four stages of one basic
    block (16/32/64/128 filters, batch norm, He initialisation), global average pooling
    (the 128-d embedding), dropout 0.2, output. 0.31 M parameters; on 2 cores it trains
    about as fast as b3 (measured 500 vs 520 images/s at 56x56 without augmentation)."""
    inputs = keras.Input(input_shape, name="pixels")
    x = layers.Rescaling(1.0 / 255, name="rescale")(inputs)
    x = layers.Conv2D(RES_STEM, 3, strides=2, padding="same", use_bias=False,
                      kernel_initializer="he_normal", name="stem_conv")(x)
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    for stage, filters in enumerate(RES_WIDTHS):
        x = _residual(x, filters, 1 if stage == 0 else 2, name=f"stage{stage + 1}")
    x = layers.GlobalAveragePooling2D(name=EMBEDDING)(x)
    x = layers.Dropout(0.2, name="dropout")(x)
    return keras.Model(inputs, _output(x, num_classes), name="res")


def resolve_weights(weights: str | None) -> str | None:
    """ImageNet weights for ResNet50 without a download: a local file, the Keras cache, or none.

    Raises:
        CompError saying which file to put where when ImageNet weights are asked for and absent.
    """
    if weights is None or weights.lower() == "none":
        return None
    if weights.lower() != "imagenet":
        if not Path(weights).exists():
            raise CompError(f"--weights {weights}: file not found; pass the path of a ResNet50 "
                            "weights file (.h5), or --weights none")
        return weights
    cached = Path(keras.config.keras_home() if hasattr(keras.config, "keras_home")
                  else Path.home() / ".keras") / "models" / RESNET_NOTOP
    if not cached.exists():
        raise CompError(f"ImageNet weights for ResNet50 not found and this machine cannot "
                        f"download them: put {RESNET_NOTOP} in {cached.parent}/ or pass --weights "
                        "PATH (or --weights none to train from random initialisation)")
    return str(cached)


def _transfer(input_shape, num_classes, weights, trainable_from: str | None, name: str):
    inputs = keras.Input(input_shape, name="pixels")
    x = ResNetPreprocess(name="resnet_preprocess")(inputs)
    base_shape = (*input_shape[:2], 3)
    base = keras.applications.ResNet50(include_top=False, weights=resolve_weights(weights),
                                       input_shape=base_shape)
    if trainable_from == "":
        base.trainable = False
    elif trainable_from is not None:
        names = [layer.name for layer in base.layers]
        if trainable_from not in names:
            raise CompError(f"layer {trainable_from} not in ResNet50")
        cut = names.index(trainable_from)
        for layer in base.layers[:cut]:
            layer.trainable = False
    x = base(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dense(512, activation="relu", name="dense_1")(x)
    x = layers.Dense(512, activation="relu", name=EMBEDDING)(x)
    out = _output(x, num_classes)
    return keras.Model(inputs, out, name=name)


def build_tl1(input_shape, num_classes, weights="imagenet"):
    """ResNet50 frozen; only the head (GAP, Dense 512, Dense 512, output) trains."""
    return _transfer(input_shape, num_classes, weights, "", "tl1")


def build_tl2(input_shape, num_classes, weights="imagenet"):
    """ResNet50 with the layers before res5b_branch2b (conv5_block2_2_conv) frozen."""
    return _transfer(input_shape, num_classes, weights, TL2_FIRST_TRAINABLE, "tl2")


def build_tl3(input_shape, num_classes, weights="imagenet"):
    """ResNet50 fine-tuned end to end."""
    return _transfer(input_shape, num_classes, weights, None, "tl3")


MODELS: dict[str, Callable[..., keras.Model]] = {
    "logreg": build_logreg, "b1": build_b1, "b2": build_b2, "b3": build_b3,
    "tl1": build_tl1, "tl2": build_tl2, "tl3": build_tl3, "res": build_res,
}


def build_model(name: str, input_shape: tuple[int, int, int], num_classes: int,
                weights: str | None = "imagenet") -> keras.Model:
    """Build one of `MODELS` for (H, W, C) inputs and `num_classes` classes."""
    if name not in MODELS:
        raise CompError(f"--model must be one of {', '.join(MODELS)}. Received: {name!r}")
    if name == "res" and min(input_shape[:2]) < 16:
        raise CompError(f"res needs images of at least 16x16 (it halves the resolution four "
                        f"times). Received: {input_shape[0]}x{input_shape[1]}; prepare with "
                        "--size 32x32 or larger, or train --model logreg")
    if name in ("b1", "b2", "b3") and min(input_shape[:2]) < CNN_MIN_SIDE:
        raise CompError(f"{name} needs images of at least {CNN_MIN_SIDE}x{CNN_MIN_SIDE} (three "
                        f"3x3 convolutions, each followed by a 2x2 pooling). Received: "
                        f"{input_shape[0]}x{input_shape[1]}; prepare with --size 32x32 or "
                        "larger, or train --model logreg")
    if name.startswith("tl") and min(input_shape[:2]) < 32:
        raise CompError(f"ResNet50 needs images of at least 32x32. Received: "
                        f"{input_shape[0]}x{input_shape[1]}; "
                        "prepare with --size 32x32 or larger")
    return MODELS[name](tuple(input_shape), num_classes, weights=weights)


def count_params(model: keras.Model) -> tuple[int, int]:
    """(total, trainable) parameter counts."""
    trainable = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    return int(model.count_params()), trainable
