"""The report's models and the balanced-accuracy metric."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from comp.errors import CompError

REPORT_COUNTS = {  # (total, trainable) at 56x56x3, from the report
    "b1": (1_723_009, 1_723_009), "b2": (1_985_665, 1_985_665), "b3": (1_985_665, 1_985_665),
    "tl1": (24_899_969, 1_312_257), "tl2": (24_899_969, 9_193_473),
    "tl3": (24_899_969, 24_846_849),
}


@pytest.mark.parametrize("name", sorted(REPORT_COUNTS))
def test_parameter_counts_match_the_report(name: str) -> None:
    from comp.train.models import build_model, count_params

    assert count_params(build_model(name, (56, 56, 3), 2, weights="none")) == REPORT_COUNTS[name]


def test_logreg_is_logistic_regression_on_gray_pixels() -> None:
    from comp.train.models import build_model, count_params

    model = build_model("logreg", (50, 50, 3), 2)
    assert count_params(model) == (50 * 50 + 1, 50 * 50 + 1)
    x = np.random.default_rng(0).integers(0, 256, (4, 50, 50, 3)).astype(np.float32)
    w, b = model.get_layer("output").get_weights()
    luma = (x @ np.array([0.299, 0.587, 0.114], np.float32)).reshape(4, -1) / 255
    want = 1 / (1 + np.exp(-(luma @ w + b)))
    np.testing.assert_allclose(np.asarray(model(x)), want, rtol=1e-4, atol=1e-6)


def test_weights_file_is_loaded(workspace: Path, tmp_path: Path) -> None:
    import keras

    from comp.train.models import build_model

    base = keras.applications.ResNet50(include_top=False, weights=None, input_shape=(32, 32, 3))
    path = tmp_path / "resnet50_notop.weights.h5"
    base.save_weights(path)
    model = build_model("tl1", (32, 32, 3), 2, weights=str(path))
    loaded = model.get_layer("resnet50").get_weights()
    for want, got in zip(base.get_weights(), loaded, strict=True):
        np.testing.assert_array_equal(want, got)


def test_penalties_equal_a_hand_computation(tmp_path: Path) -> None:
    """L1 and L2 on every kernel: the model's regularisation loss is l1 sum|w| + l2 sum w^2
    over the kernels (not the biases), before and after saving."""
    import keras

    from comp.train.models import build_model, regularise

    model = regularise(build_model("b1", (24, 24, 3), 2), l1=1e-4, l2=1e-3)
    kernels = [layer.kernel.numpy() for layer in model.layers if hasattr(layer, "kernel")]
    assert len(kernels) == 5  # three convolutions, two dense layers
    want = sum(1e-4 * np.abs(k).sum() + 1e-3 * np.square(k).sum() for k in kernels)
    got = float(sum(keras.ops.convert_to_numpy(x) for x in model.losses))
    assert got == pytest.approx(want, rel=1e-4)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", compile=False)
    assert float(sum(keras.ops.convert_to_numpy(x) for x in loaded.losses)) == \
        pytest.approx(want, rel=1e-4)


def test_he_initialisation_draws_by_fan_in() -> None:
    """He normal: standard deviation sqrt(2 / fan_in) (Keras widens its truncated normal so
    that the truncated draws have it); Glorot uniform: limit sqrt(6 / (fan_in + fan_out))."""
    from comp.train.models import build_model, regularise

    he = regularise(build_model("b1", (24, 24, 3), 2), init="he")
    dense = he.get_layer("embedding").kernel.numpy()  # 128 x 512 after the last pooling
    fan_in = dense.shape[0]
    assert dense.std() == pytest.approx(np.sqrt(2 / fan_in), rel=0.03)
    glorot = regularise(build_model("b1", (24, 24, 3), 2), init="glorot")
    kernel = glorot.get_layer("embedding").kernel.numpy()
    limit = np.sqrt(6 / (kernel.shape[0] + kernel.shape[1]))
    assert np.abs(kernel).max() <= limit and np.abs(kernel).max() > 0.95 * limit


def test_width_scales_filters_and_units_as_counted_by_hand() -> None:
    from comp.train.models import Shape, build_model

    # b1 at half width on 24x24x3: conv 8, 32, 64 filters (24 -> 22 -> 11 -> 9 -> 4 -> 2
    # -> 1, so 64 features flattened), Dense 256, one sigmoid unit
    by_hand = ((3 * 3 * 3 * 8 + 8) + (3 * 3 * 8 * 32 + 32) + (3 * 3 * 32 * 64 + 64)
               + (64 * 256 + 256) + (256 + 1))
    assert build_model("b1", (24, 24, 3), 2, shape=Shape(width=0.5)).count_params() == by_hand


def test_dropout_and_input_scale_change_the_network() -> None:
    from comp.train.models import Shape, build_model

    b3 = build_model("b3", (32, 32, 3), 2, shape=Shape(dropout=0.45))
    assert [layer.rate for layer in b3.layers if "dropout" in layer.name] == [0.45, 0.45]
    b1 = build_model("b1", (32, 32, 3), 2, shape=Shape(dropout=0.1))  # b1 had none
    assert [layer.rate for layer in b1.layers if "dropout" in layer.name] == [0.1]
    res = build_model("res", (56, 56, 1), 2, shape=Shape(input_scale=0.5, dropout=0.0))
    assert res.input_shape == (None, 56, 56, 1)  # fed the stored images as they are
    assert res.get_layer("resize").output.shape == (None, 28, 28, 1)
    assert res.get_layer("dropout").rate == 0.0
    x = np.full((2, 56, 56, 1), 200.0, np.float32)
    half = build_model("res", (28, 28, 1), 2)
    half.set_weights(res.get_weights())  # same weights: a uniform image resizes to itself
    np.testing.assert_allclose(res.predict_on_batch(x), half.predict_on_batch(x[:, :28, :28]),
                               rtol=1e-5, atol=1e-6)


def test_augment_strength_scales_the_ranges() -> None:
    from comp.train.models import Shape, build_model

    model = build_model("b3", (32, 32, 3), 2, augment=True, shape=Shape(augment_strength=1.5))
    layer = model.get_layer("augment")
    assert (layer.rotation_degrees, layer.zoom) == pytest.approx((15.0, 0.15))


def test_shape_options_that_do_not_apply_are_one_line() -> None:
    from comp.train.models import Shape, build_model

    with pytest.raises(CompError, match=r"14x14 \(--input-scale 0.25 of the stored 56x56\)"):
        build_model("res", (56, 56, 3), 2, shape=Shape(input_scale=0.25))
    with pytest.raises(CompError, match="--width applies to b1, b2, b3, res"):
        build_model("logreg", (24, 24, 1), 2, shape=Shape(width=2.0))
    with pytest.raises(CompError, match="--dropout does not apply to logreg"):
        build_model("logreg", (24, 24, 1), 2, shape=Shape(dropout=0.2))


BACKBONES = {"mobilenetv2": "MobileNetV2", "efficientnetv2b0": "EfficientNetV2B0",
             "convnexttiny": "ConvNeXtTiny"}


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_an_imagenet_backbone_is_its_keras_application_plus_a_head(name: str) -> None:
    """The keras.applications network without its top, global average pooling (the
    embedding), dropout and one sigmoid unit: parameters counted from the application."""
    import keras

    from comp.train.models import EMBEDDING, build_model, count_params

    model = build_model(name, (32, 32, 3), 2, weights="none")
    make = getattr(keras.applications, BACKBONES[name])
    options = {} if name == "mobilenetv2" else {"include_preprocessing": True}
    base = make(include_top=False, weights=None, input_shape=(32, 32, 3), **options)
    width = base.output.shape[-1]
    assert count_params(model)[0] == base.count_params() + width + 1
    assert model.get_layer(EMBEDDING).output.shape[-1] == width
    gray = build_model(name, (32, 32, 1), 3, weights="none")  # gray repeated to RGB
    assert gray.output.shape[-1] == 3
    x = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 1)).astype(np.float32)
    assert np.asarray(gray(x)).shape == (2, 3)


def test_a_pretrained_base_sees_the_stored_image_enlarged() -> None:
    from comp.train.models import Shape, build_model

    model = build_model("mobilenetv2", (56, 56, 3), 2, weights="none",
                        shape=Shape(input_scale=4.0))
    assert model.get_layer("mobilenetv2_1.00_224").input.shape[1:3] == (224, 224)
    assert model.input.shape[1:3] == (56, 56)  # prediction feeds the stored images
    for name in ("b1", "res"):
        with pytest.raises(CompError, match=f"--input-scale above 1 enlarges the image for a "
                           f"pretrained base .*; {name} learns from the stored pixels"):
            build_model(name, (56, 56, 3), 2, weights="none", shape=Shape(input_scale=2.0))


def test_backbone_weights_from_a_file_and_one_line_offline(tmp_path: Path) -> None:
    import keras

    from comp.train.models import build_model
    from comp.train.weights import build_application

    source = keras.applications.MobileNetV2(include_top=False, weights=None,
                                            input_shape=(32, 32, 3))
    path = tmp_path / "mobilenet.weights.h5"
    source.save_weights(path)
    model = build_model("mobilenetv2", (32, 32, 3), 2, weights=str(path))
    loaded = model.get_layer(source.name).get_weights()
    for want, got in zip(source.get_weights(), loaded, strict=True):
        np.testing.assert_array_equal(want, got)
    with pytest.raises(CompError, match="--weights .*nope.h5: file not found"):
        build_model("mobilenetv2", (32, 32, 3), 2, weights=str(tmp_path / "nope.h5"))

    def offline(**kwargs: object) -> None:
        raise Exception("URL fetch failure: [Errno 101] Network is unreachable")  # noqa: TRY002

    with pytest.raises(CompError, match="ImageNet weights for MobileNetV2 are not in the Keras "
                       "cache and could not be downloaded .*--weights none"):
        build_application(offline, "MobileNetV2", "imagenet")
