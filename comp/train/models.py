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
            # a mixup target is a blend: its class is the one it leans to (ties: class 1)
            true = ops.cast(ops.reshape(y_true, (-1,)) >= 0.5, "int32")
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


ROTATION_DEGREES = 10.0  # the report's augmentation: rotation +-10 degrees,
ZOOM = 0.1  # zoom +-10 %, horizontal flip


def augment_transforms(angle, scale, flip, height: int, width: int):
    """(N, 8) projective transforms (Keras' `affine_transform` convention: output pixel (x, y)
    samples input (a0 x + a1 y + a2, b0 x + b1 y + b2)) composing a mirror (`flip` -1 or 1),
    a rotation by `angle` radians and a zoom by `scale` about the image centre."""
    ops = keras.ops
    cos, sin = ops.cos(angle) / scale, ops.sin(angle) / scale
    a0, a1, b0, b1 = cos * flip, -sin, sin * flip, cos
    cx, cy = (width - 1) / 2, (height - 1) / 2
    a2, b2 = cx - a0 * cx - a1 * cy, cy - b0 * cx - b1 * cy
    zeros = ops.zeros_like(angle)
    return ops.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)


@keras.saving.register_keras_serializable(package="comp")
class Augment(layers.Layer):
    """The report's augmentation (rotation +-10 degrees, zoom +-10 %, horizontal flip) as the
    first layer of a model, active in training only: flip, rotation and zoom are composed
    into one transform per image, so each image is resampled once (bilinear, edges
    repeated), in float32 whatever the training precision, on the device that trains.
    Built on `keras.ops` alone, so it runs on any Keras backend; its random draws come from
    the layer's seed generator, whose state a resumed run restores."""

    def __init__(self, rotation_degrees: float = ROTATION_DEGREES, zoom: float = ZOOM,
                 seed: int | None = None, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.rotation_degrees, self.zoom, self.seed = rotation_degrees, zoom, seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):  # type: ignore[override]
        x = keras.ops.cast(inputs, "float32")
        if not training:
            return x
        n = keras.ops.shape(x)[0]
        rad = self.rotation_degrees * np.pi / 180
        angle = keras.random.uniform((n,), -rad, rad, seed=self.seed_generator)
        scale = keras.random.uniform((n,), 1 - self.zoom, 1 + self.zoom,
                                     seed=self.seed_generator)
        flip = keras.ops.where(keras.random.uniform((n,), seed=self.seed_generator) < 0.5,
                               -1.0, 1.0)
        transforms = augment_transforms(angle, scale, flip, x.shape[1], x.shape[2])
        return keras.ops.image.affine_transform(x, transforms, interpolation="bilinear",
                                                fill_mode="nearest")

    def compute_output_shape(self, input_shape):  # type: ignore[override]
        return input_shape

    def get_config(self):  # type: ignore[override]
        return {**super().get_config(), "rotation_degrees": self.rotation_degrees,
                "zoom": self.zoom, "seed": self.seed}


@dataclass(frozen=True)
class Shape:
    """What a search may change in a network besides its training: the dropout rate (None:
    the model's own), a multiplier on every convolution's filters and hidden units, and
    the share of the stored image side the network sees (below 1: resized inside the model,
    so prediction feeds it the stored images as they are)."""

    dropout: float | None = None
    width: float = 1.0
    input_scale: float = 1.0
    augment_strength: float = 1.0  # the augmentation's rotation and zoom ranges times this

    def units(self, n: int) -> int:
        return max(int(round(n * self.width)), 1)

    def side(self, input_shape: tuple[int, ...]) -> tuple[int, int]:
        return (max(int(round(input_shape[0] * self.input_scale)), 1),
                max(int(round(input_shape[1] * self.input_scale)), 1))


PLAIN = Shape()


def _pixels(input_shape: tuple[int, int, int], augment: bool, shape: Shape = PLAIN):
    """The model's input (float32 pixels 0..255), resized when `shape` scales it, and, with
    `augment`, the augmentation."""
    inputs = keras.Input(input_shape, name="pixels")
    x = inputs
    if shape.input_scale != 1:
        x = layers.Resizing(*shape.side(input_shape), antialias=True, name="resize")(x)
    if not augment:
        return inputs, x
    s = shape.augment_strength
    return inputs, Augment(ROTATION_DEGREES * s, ZOOM * s, name="augment")(x)


def _head(x, num_classes: int, hidden: int, dropout: float | None, shape: Shape = PLAIN):
    dropout = dropout if shape.dropout is None else shape.dropout
    for k in range(hidden):
        x = layers.Dense(shape.units(512), activation="relu",
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
         dropout: float | None, name: str, augment: bool, shape: Shape) -> keras.Model:
    inputs, x = _pixels(input_shape, augment, shape)
    x = layers.Rescaling(1.0 / 255, name="rescale")(x)
    for filters in (16, 64, 128):
        x = layers.Conv2D(shape.units(filters), 3, activation="relu")(x)
        x = layers.MaxPooling2D(2)(x)
    x = layers.Flatten()(x)
    return keras.Model(inputs, _head(x, num_classes, hidden, dropout, shape), name=name)


def build_logreg(input_shape, num_classes, weights=None, augment=False,  # noqa: ARG001
                 shape=PLAIN):
    """Logistic regression on grayscale pixels (the CelebA gender report's baseline): one
    Dense layer on the flattened 0..1 luma, trained like the CNNs so its runs compare."""
    inputs, x = _pixels(input_shape, augment, shape)
    x = Grayscale(name="grayscale")(x)
    x = layers.Rescaling(1.0 / 255, name="rescale")(x)
    x = layers.Flatten(name=EMBEDDING)(x)
    out = _output(x, num_classes)
    return keras.Model(inputs, out, name="logreg")


def build_b1(input_shape, num_classes, weights=None, augment=False,  # noqa: ARG001 - uniform signature
             shape=PLAIN):
    """3 x (Conv 3x3 + ReLU + MaxPool 2) with 16/64/128 filters, Dense 512, output."""
    return _cnn(input_shape, num_classes, hidden=1, dropout=None, name="b1", augment=augment,
                shape=shape)


def build_b2(input_shape, num_classes, weights=None, augment=False, shape=PLAIN):  # noqa: ARG001
    """b1 with a second Dense 512 and Dropout 0.3 after each hidden Dense."""
    return _cnn(input_shape, num_classes, hidden=2, dropout=0.3, name="b2", augment=augment,
                shape=shape)


def build_b3(input_shape, num_classes, weights=None, augment=False, shape=PLAIN):  # noqa: ARG001
    """b2's network; trained with augmentation (zoom 0.1, rotation 10 degrees, flip)."""
    return _cnn(input_shape, num_classes, hidden=2, dropout=0.3, name="b3", augment=augment,
                shape=shape)


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


def build_res(input_shape, num_classes, weights=None, augment=False,  # noqa: ARG001
              shape=PLAIN):
    """Compact residual network for small faces: a stride-2 stem, four stages of one basic
    block (16/32/64/128 filters, batch norm, He initialisation), global average pooling
    (the 128-d embedding), dropout 0.2, output. 0.31 M parameters; on 2 cores it trains
    about as fast as b3 (measured 500 vs 520 images/s at 56x56 without augmentation)."""
    inputs, x = _pixels(input_shape, augment, shape)
    x = layers.Rescaling(1.0 / 255, name="rescale")(x)
    x = layers.Conv2D(shape.units(RES_STEM), 3, strides=2, padding="same", use_bias=False,
                      kernel_initializer="he_normal", name="stem_conv")(x)
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    for stage, filters in enumerate(RES_WIDTHS):
        x = _residual(x, shape.units(filters), 1 if stage == 0 else 2,
                      name=f"stage{stage + 1}")
    x = layers.GlobalAveragePooling2D(name=EMBEDDING)(x)
    x = layers.Dropout(0.2 if shape.dropout is None else shape.dropout, name="dropout")(x)
    return keras.Model(inputs, _output(x, num_classes), name="res")


RESNET_URL = ("https://storage.googleapis.com/tensorflow/keras-applications/resnet/"
              + RESNET_NOTOP)
RESNET_NOTOP_MD5 = "4d473c1dd8becc155b73f8504c6f6626"  # Keras' own hash of that file
DOWNLOAD_TIMEOUT_S = 60


def resolve_weights(weights: str | None, *, url: str = RESNET_URL,
                    md5: str = RESNET_NOTOP_MD5) -> str | None:
    """ResNet50's ImageNet weights: a local file, the Keras cache, or Keras' own download into
    that cache (checked against its hash) when the network can be reached; none for `none`.

    Raises:
        CompError naming the file and where to put it when the weights are absent and cannot
        be downloaded, or when a download does not match the expected hash.
    """
    if weights is None or weights.lower() == "none":
        return None
    if weights.lower() != "imagenet":
        if not Path(weights).exists():
            raise CompError(f"--weights {weights}: file not found; pass the path of a ResNet50 "
                            "weights file (.h5), or --weights none")
        return weights
    home = Path(keras.config.keras_home())
    cached = home / "models" / RESNET_NOTOP
    if cached.exists():
        return str(cached)
    import socket

    try:  # Keras falls back to /tmp/.keras when the cache folder is missing
        cached.parent.mkdir(parents=True, exist_ok=True)
    except OSError:
        pass
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        return str(keras.utils.get_file(RESNET_NOTOP, origin=url, cache_dir=str(home),
                                        cache_subdir="models", file_hash=md5,
                                        hash_algorithm="md5"))
    except ValueError:  # the hash check
        cached.unlink(missing_ok=True)
        raise CompError(f"{url}: the downloaded {RESNET_NOTOP} does not match its expected "
                        f"hash; run again, or put a good copy in {cached.parent}/ or pass "
                        "--weights PATH") from None
    except Exception as exc:  # noqa: BLE001 - Keras wraps every fetch failure in Exception
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise CompError(f"ImageNet weights for ResNet50 are not in the Keras cache and could "
                        f"not be downloaded ({reason}): put {RESNET_NOTOP} in "
                        f"{cached.parent}/ or pass --weights PATH (or --weights none to train "
                        "from random initialisation)") from None
    finally:
        socket.setdefaulttimeout(previous)


def _transfer(input_shape, num_classes, weights, trainable_from: str | None, name: str,
              augment: bool, shape: Shape):
    inputs, x = _pixels(input_shape, augment, shape)
    x = ResNetPreprocess(name="resnet_preprocess")(x)
    base_shape = (*shape.side(input_shape), 3)
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
    for k, layer_name in enumerate(("dense_1", EMBEDDING)):
        x = layers.Dense(512, activation="relu", name=layer_name)(x)
        if shape.dropout:
            x = layers.Dropout(shape.dropout, name=f"dropout_{k + 1}")(x)
    out = _output(x, num_classes)
    return keras.Model(inputs, out, name=name)


def build_tl1(input_shape, num_classes, weights="imagenet", augment=False, shape=PLAIN):
    """ResNet50 frozen; only the head (GAP, Dense 512, Dense 512, output) trains."""
    return _transfer(input_shape, num_classes, weights, "", "tl1", augment, shape)


def build_tl2(input_shape, num_classes, weights="imagenet", augment=False, shape=PLAIN):
    """ResNet50 with the layers before res5b_branch2b (conv5_block2_2_conv) frozen."""
    return _transfer(input_shape, num_classes, weights, TL2_FIRST_TRAINABLE, "tl2", augment, shape)


def build_tl3(input_shape, num_classes, weights="imagenet", augment=False, shape=PLAIN):
    """ResNet50 fine-tuned end to end."""
    return _transfer(input_shape, num_classes, weights, None, "tl3", augment, shape)


WIDTH_MODELS = ("b1", "b2", "b3", "res")  # models whose width `Shape.width` scales
MIN_SIDE = {"logreg": 1, "b1": CNN_MIN_SIDE, "b2": CNN_MIN_SIDE, "b3": CNN_MIN_SIDE,
            "res": 16, "tl1": 32, "tl2": 32, "tl3": 32}  # the smallest image side each takes
MODELS: dict[str, Callable[..., keras.Model]] = {
    "logreg": build_logreg, "b1": build_b1, "b2": build_b2, "b3": build_b3,
    "tl1": build_tl1, "tl2": build_tl2, "tl3": build_tl3, "res": build_res,
}


def build_model(name: str, input_shape: tuple[int, int, int], num_classes: int,
                weights: str | None = "imagenet", augment: bool = False, *,
                shape: Shape = PLAIN) -> keras.Model:
    """Build one of `MODELS` for (H, W, C) inputs and `num_classes` classes; with `augment`,
    the report's augmentation is its first layer (active in training only); `shape` scales
    its width, its input side, or sets its dropout."""
    if name not in MODELS:
        raise CompError(f"--model must be one of {', '.join(MODELS)}. Received: {name!r}")
    if shape.width != 1 and name not in WIDTH_MODELS:
        raise CompError(f"--width applies to {', '.join(WIDTH_MODELS)} (ResNet50's width is "
                        f"fixed by its weights; logreg has none). Received: --model {name}")
    if shape.dropout is not None and name == "logreg":
        raise CompError("--dropout does not apply to logreg (it has no hidden layer); "
                        "use --l1 or --l2 to regularise it")
    stored = input_shape
    input_shape = (*shape.side(input_shape), input_shape[2])
    scaled = (f" (--input-scale {shape.input_scale:g} of the stored "
              f"{stored[0]}x{stored[1]})" if shape.input_scale != 1 else "")
    small = min(input_shape[:2]) < MIN_SIDE[name]
    if name == "res" and small:
        raise CompError(f"res needs images of at least 16x16 (it halves the resolution four "
                        f"times). Received: {input_shape[0]}x{input_shape[1]}{scaled}; "
                        "prepare with --size 32x32 or larger, or train --model logreg")
    if name in ("b1", "b2", "b3") and small:
        raise CompError(f"{name} needs images of at least {CNN_MIN_SIDE}x{CNN_MIN_SIDE} (three "
                        f"3x3 convolutions, each followed by a 2x2 pooling). Received: "
                        f"{input_shape[0]}x{input_shape[1]}{scaled}; prepare with --size 32x32 or "
                        "larger, or train --model logreg")
    if name.startswith("tl") and small:
        raise CompError(f"ResNet50 needs images of at least 32x32. Received: "
                        f"{input_shape[0]}x{input_shape[1]}{scaled}; "
                        "prepare with --size 32x32 or larger")
    return MODELS[name](tuple(stored), num_classes, weights=weights, augment=augment,
                        shape=shape)


def _weighted_layers(model: keras.Model, *, nested: bool) -> list[layers.Layer]:
    """The Conv2D and Dense layers of a model (with `nested`, inside sub-models too)."""
    found: list[layers.Layer] = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            if nested:
                found += _weighted_layers(layer, nested=True)
        elif isinstance(layer, layers.Conv2D | layers.Dense):
            found.append(layer)
    return found


def regularise(model: keras.Model, *, l1: float = 0.0, l2: float = 0.0,
               init: str | None = None, seed: int = 0) -> keras.Model:
    """The reports' options on a built model: L1/L2 penalties on every convolution and dense
    kernel (a pretrained base's too), and kernels drawn anew with `init` ("glorot":
    Glorot uniform, "he": He normal; a pretrained base keeps its weights). Recorded in each
    layer's config, so a saved model keeps them."""
    if l1 or l2:
        penalty = keras.regularizers.L1L2(l1=l1, l2=l2)
        for layer in _weighted_layers(model, nested=True):
            layer.kernel_regularizer = penalty
            layer.kernel.regularizer = penalty
    if init is not None:
        make = {"glorot": keras.initializers.GlorotUniform,
                "he": keras.initializers.HeNormal}[init]
        for k, layer in enumerate(_weighted_layers(model, nested=False)):
            initializer = make(seed=seed + k)
            layer.kernel_initializer = initializer
            layer.kernel.assign(initializer(layer.kernel.shape, dtype=layer.kernel.dtype))
    return model


def count_params(model: keras.Model) -> tuple[int, int]:
    """(total, trainable) parameter counts."""
    trainable = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    return int(model.count_params()), trainable
