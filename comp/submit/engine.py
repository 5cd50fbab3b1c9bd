"""Prediction on a CPU by ONNX Runtime: the Keras graph of a run's models (all fold models in
one graph, uint8 pixels in), exported once to ONNX by Keras' own `model.export` and cached in
the run folder, keyed by the checkpoints and the input; Keras stays the reference and the
fallback (no onnxruntime, an export that fails, an accelerator).

Measured in phase 2 on 2 cores (BENCHMARKS.md, benchmarks/phase2.py): 20,000 new images
through a 5-fold `res` run's five models (with the flip) in 23.2 s against Keras' 39.7 s, the
same labels on every image; once the graph is cached, phase 2 neither imports Keras nor
loads a checkpoint.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from comp.errors import note
from comp.train import onnx, strategy
from comp.workspace import atomic_write

BATCH = 256


OFF = False  # True: Keras predicts everything (the reference, for benchmarks and tests)
_FAILED: set[str] = set()  # graphs whose export or session failed in this process
_SAID: set[str] = set()  # the reasons already said in this process


def _say(why: str) -> None:
    """One note per reason and process (a run's fold models fail alike)."""
    if why not in _SAID:
        _SAID.add(why)
        note(f"ONNX Runtime not used ({why}); Keras predicts")


def available() -> bool:
    """Whether ONNX Runtime and Keras' ONNX export (tf2onnx, from the TensorFlow backend) are
    there: on another Keras backend, Keras predicts."""
    import importlib.util

    import keras

    return keras.backend.backend() == "tensorflow" and all(
        importlib.util.find_spec(m) is not None for m in ("onnxruntime", "onnx", "tf2onnx"))


LIBRARIES = ("keras", "tensorflow", "tf2onnx", "onnx", "onnxruntime")  # export and run


def library_versions() -> str:
    """The versions of what exports and runs the graph (read without importing them)."""
    return onnx.library_versions(LIBRARIES)


def keras_backend() -> str:
    """The Keras backend this process would use (KERAS_BACKEND, else Keras' config file,
    else tensorflow), read without importing Keras."""
    import json

    name = os.environ.get("KERAS_BACKEND")
    if name:
        return name
    home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
    try:
        return str(json.loads((home / "keras.json").read_text()).get("backend", "tensorflow"))
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


def graph_key(model_paths: list[Path], shape: tuple[int, ...], dtype: str) -> str:
    """The checkpoints' contents, the input's shape and type, and the exporter's and
    runtime's versions (an upgrade exports the graph again)."""
    digest = hashlib.sha256(f"{shape}/{dtype}/{library_versions()}".encode())
    for path in model_paths:
        with path.open("rb") as fh:
            digest.update(hashlib.file_digest(fh, "sha256").digest())
    return digest.hexdigest()[:16]


def _export(every: Any, path: Path) -> None:
    atomic_write(path, lambda tmp: every.export(str(tmp), format="onnx", verbose=False))


def cached_session(folder: Path, key: str) -> Callable[[np.ndarray], list[Any]] | None:
    """The session of a graph exported earlier (by any process), run without loading Keras
    or the checkpoints: the phase-2 path. None when there is none yet, it failed before
    with these libraries, ONNX Runtime is missing, the Keras backend is not TensorFlow's
    (Keras predicts there), or the machine may have an accelerator."""
    import importlib.util

    path = folder / f"{key}.onnx"
    if (OFF or key in _FAILED or not path.is_file() or _failed_before(folder, key) is not None
            or keras_backend() != "tensorflow"
            or importlib.util.find_spec("onnxruntime") is None
            or strategy.accelerator_present()):
        return None
    try:
        return _open(path)
    except Exception:  # noqa: BLE001 - a damaged cache file: exported again through Keras
        return None


def _open(path: Path) -> Callable[[np.ndarray], list[Any]]:
    return onnx.open_session(path)


def session(every: Any, *, folder: Path, key: str) -> Callable[[np.ndarray], list[Any]] | None:
    """A function running `every` (a built, called Keras model) by ONNX Runtime on a batch,
    its outputs in `every`'s order; the ONNX file made once into `folder`. None (Keras
    predicts) when ONNX Runtime is missing or the export or session fails, said in one note
    per reason; a failure is remembered beside the cache (`<key>.failed`), so the export is
    not tried again for the same checkpoints."""
    if OFF or key in _FAILED or not available():
        return None
    path = folder / f"{key}.onnx"
    earlier = _failed_before(folder, key)
    if earlier is not None:  # an earlier process found it unusable with these libraries
        _say(earlier)
        _FAILED.add(key)
        return None
    try:
        if path.exists():
            try:
                return _open(path)
            except Exception:  # noqa: BLE001 - a damaged cache file: exported again
                path.unlink()
        _export(every, path)
        step = _open(path)
    except Exception as exc:  # noqa: BLE001 - the exporters and runtimes raise many kinds
        why = onnx.reason(exc)
        _say(why)
        path.unlink(missing_ok=True)  # an exported graph that cannot run is not kept
        _FAILED.add(key)  # not tried again in this process,
        if isinstance(exc, OSError | MemoryError):
            return None  # a full disk or a busy machine passes: a later process tries again
        # nor by later ones with the same libraries (an upgrade tries again)
        onnx.remember_failure(folder, key, why, LIBRARIES)
        return None
    return step


def _failed_before(folder: Path, key: str) -> str | None:
    return onnx.failed_before(folder, key, LIBRARIES)
