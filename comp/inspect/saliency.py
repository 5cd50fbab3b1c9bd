"""Where a model looks: plain gradients, SmoothGrad and Grad-CAM, on any Keras backend.

The score of class k is the model's output for it (two classes: the sigmoid for class 1,
its complement for class 0). Saliency maps are (N, H, W) float32, the absolute gradient
taken at its largest over the colour channels (Simonyan et al. 2014)."""

from __future__ import annotations

from typing import Any

import numpy as np


def _class_score(out: Any, target: np.ndarray) -> Any:
    """Sum over the batch of each image's score for its target class."""
    import keras

    ops = keras.ops
    if out.shape[-1] == 1:  # sigmoid: class 1's probability, class 0's is its complement
        p = out[:, 0]
        t = ops.cast(ops.convert_to_tensor(target), p.dtype)
        return ops.sum(t * p + (1 - t) * (1 - p))
    onehot = ops.one_hot(ops.convert_to_tensor(target), out.shape[-1], dtype=out.dtype)
    return ops.sum(out * onehot)


def gradients(model: Any, x: np.ndarray, target: np.ndarray) -> np.ndarray:
    """d score(target) / d input, per image, as float32 numpy (N, *input shape)."""
    import keras

    xf = np.asarray(x, np.float32)
    if keras.backend.backend() == "jax":
        import jax

        trainable = [v.value for v in model.trainable_variables]
        frozen = [v.value for v in model.non_trainable_variables]

        def score(pixels: Any) -> Any:
            out, _ = model.stateless_call(trainable, frozen, pixels, training=False)
            return _class_score(out, target)

        return np.asarray(jax.grad(score)(xf), np.float32)
    import tensorflow as tf

    pixels = tf.convert_to_tensor(xf)
    with tf.GradientTape() as tape:
        tape.watch(pixels)
        value = _class_score(model(pixels, training=False), target)
    return np.asarray(tape.gradient(value, pixels), np.float32)


def _as_map(grad: np.ndarray) -> np.ndarray:
    return np.abs(grad).max(axis=-1)


def plain_saliency(model: Any, x: np.ndarray, target: np.ndarray) -> np.ndarray:
    """|gradient| of the target class's score, max over channels: (N, H, W)."""
    return _as_map(gradients(model, x, target))


def smoothgrad(model: Any, x: np.ndarray, target: np.ndarray, *, samples: int = 16,
               noise: float = 0.15, seed: int = 0) -> np.ndarray:
    """SmoothGrad (Smilkov et al. 2017): the gradient averaged over copies of each image with
    Gaussian noise of `noise` x the pixel range added, then |.| max over channels."""
    rng = np.random.default_rng(seed)
    xf = np.asarray(x, np.float32)
    total = np.zeros_like(xf)
    for _ in range(samples):
        total += gradients(model, xf + rng.normal(0, noise * 255, xf.shape).astype(np.float32),
                           target)
    return _as_map(total / samples)


def last_spatial_layer(model: Any) -> Any | None:
    """The last layer after the first convolution whose output is a (batch, H, W, C) map
    with H, W > 1 (the last convolutional block's output), or None when the model has no
    convolution (logreg)."""
    import keras

    found, convolved = None, False
    for layer in model.layers:
        convolved = convolved or isinstance(layer, keras.layers.Conv2D | keras.Model)
        shape = getattr(getattr(layer, "output", None), "shape", None)
        if convolved and shape is not None and len(shape) == 4 and (shape[1] or 0) > 1:
            found = layer
    return found


def grad_cam(model: Any, x: np.ndarray, target: np.ndarray) -> np.ndarray | None:
    """Grad-CAM (Selvaraju et al. 2017) on the last convolutional block: each channel of its
    map weighted by the mean gradient of the target score over the map, summed, ReLU,
    scaled to the image size (nearest blocks, then a box blur): (N, H, W), or None."""
    import keras

    layer = last_spatial_layer(model)
    if layer is None:
        return None
    body = keras.Model(model.input, layer.output)
    head = keras.Model(layer.output, model.output)
    maps = np.asarray(body(np.asarray(x, np.float32), training=False), np.float32)
    grads = gradients(head, maps, target)
    weights = grads.mean(axis=(1, 2), keepdims=True)
    cam = np.maximum((weights * maps).sum(axis=-1), 0)
    return upsample(cam, x.shape[1], x.shape[2])


def upsample(maps: np.ndarray, height: int, width: int) -> np.ndarray:
    """(N, h, w) -> (N, height, width) by repeating each cell over its block."""
    rows = np.minimum((np.arange(height) * maps.shape[1]) // height, maps.shape[1] - 1)
    cols = np.minimum((np.arange(width) * maps.shape[2]) // width, maps.shape[2] - 1)
    return maps[:, rows][:, :, cols].astype(np.float32)


def normalised(maps: np.ndarray) -> np.ndarray:
    """Each map scaled to 0..1 by its own maximum (a map of zeros stays zeros)."""
    top = maps.reshape(len(maps), -1).max(axis=1)
    return maps / np.maximum(top, 1e-12)[:, None, None]
