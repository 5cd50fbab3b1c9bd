"""Frozen pretrained features: what a feature model (`ModelSpec.features`) reads instead of
pixels, computed once per image and kept in the workspace.

A feature model reads a `View` of a frozen network (`comp.train.extractor`): one or more of
its layers, each globally averaged over its grid (`pool`, the 1792-d average pool a linear
probe of identity reads best; the last block of each stage, which know more of texture and
expression), side by side, and optionally averaged with the same features of the
horizontally flipped image.

Features are keyed by a digest of each image's stored pixels (`digests`), one file per layer
and orientation in `<workspace>/features/<network>[-<layer>][-flip]-<side>px[-int8-<key>].npz`:
any version of the workspace, any view, and the phase-2 ingest reuse them, and only images
never seen are computed, one pass of the network for all the layers a view lacks
(`features_of`). The stage views read the workspace's int8 graph (`int8_tag`), calibrated
once; a run records which it read, so it keeps reading the same.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

from comp.specs import spec
from comp.train.extractor import (
    EXTRACTORS,
    FACENET,
    FOLDER,
    STAGES,
    Extractor,
    graph_file,
    int8_graph,
    int8_runner,
    onnx_possible,
    onnx_runner,
    prepared,
    prewhiten,
    tensorflow,
    tensorflow_runner,
)
from comp.workspace import Workspace, atomic_write, read_npz

if TYPE_CHECKING:
    from comp.runs import RunRecord

__all__ = ["EXTRACTORS", "FACENET", "STAGES", "prewhiten"]

BATCH = 64  # images per call
CALIBRATION = 128  # images that set an int8 extractor's activation ranges


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
               or tensorflow_runner(extractor, layers))
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


def int8_tag(model: str, pixels: np.ndarray, *, ws: Workspace | None) -> str:
    """The int8 extractor a new run of `model` reads, as the tag its record keeps: "" (float32)
    for a view measured better in float32 (`View.int8`), without a workspace, or where ONNX
    Runtime cannot run it (missing, an accelerator, a failed quantization: said once). Else
    `int8-<key>`: the workspace's int8 graph, its activation ranges calibrated once on
    `CALIBRATION` of these images (the run's training images; the ones whose digests come
    first), kept beside it so that the same graph can be made again."""
    from comp.errors import note

    name = spec(model).features
    if name is None or not VIEWS[name].int8 or ws is None or not onnx_possible():
        return ""
    extractor = EXTRACTORS[VIEWS[name].extractor]
    folder = ws.root / FOLDER / "engine"
    made = sorted(folder.glob(f"{extractor.name}-int8-*.npy"))
    if made:
        return made[0].stem.removeprefix(f"{extractor.name}-")
    keys = digests(pixels)
    _, first = np.unique(keys, return_index=True)
    chosen = np.sort(first[:CALIBRATION])  # unique's order is the digests' order
    calibration = np.ascontiguousarray(pixels[chosen])
    tag = "int8-" + hashlib.sha256(repr(calibration.shape).encode() + calibration.tobytes()
                                   ).hexdigest()[:12]
    try:  # the graph, then its images (the mark that the tag is complete)
        int8_graph(extractor, ws.root, tag, calibration)
        atomic_write(folder / f"{extractor.name}-{tag}.npy",
                     lambda p: np.save(p.open("wb"), calibration))
    except Exception as exc:  # noqa: BLE001 - the quantizer and a full disk raise many kinds
        from comp.train import onnx

        note(f"{extractor.name}'s int8 features not made ({onnx.reason(exc)}); the run reads "
             "float32 ones")
        return ""
    return tag


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
        tensorflow()


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


def run_inputs(record: RunRecord, pixels: np.ndarray, *, ws: Workspace | None,
               desc: str = "features") -> np.ndarray:
    """What a trained run's models read: `model_inputs` from the features it trained on
    (float32, or the int8 graph of its record's tag)."""
    return model_inputs(record.model, pixels, ws=ws, int8=record.feature_int8, desc=desc)
