"""comp's own Keras layers and metric, saved inside every model: ResNet50's preprocessing,
grayscale, the report's augmentation, and the exact balanced accuracy. Built on `keras.ops`
alone, so they run on any Keras backend."""

from __future__ import annotations

import keras
import numpy as np
from keras import layers


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
