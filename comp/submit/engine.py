"""Prediction on a CPU by ONNX Runtime: the Keras graph of a run's models (all fold models in
one graph, uint8 pixels in), exported once to ONNX by Keras' own `model.export` and cached in
the run folder, keyed by the checkpoints and the input; Keras stays the reference and the
fallback (no onnxruntime, an export that fails, an accelerator).

Measured on a trained 5-fold `res` run, 20,000 images, 2 cores shared with another job
(BENCHMARKS.md, benchmarks/engine.py): the same probabilities to 7e-7, 1.09x Keras' speed.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from comp.errors import note

FOLDER = "engine"  # in a run folder: <key>.onnx
BATCH = 256


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


def graph_key(model_paths: list[Path], shape: tuple[int, ...], dtype: str) -> str:
    """The checkpoints' contents and the input's shape and type."""
    digest = hashlib.sha256(f"{shape}/{dtype}".encode())
    for path in model_paths:
        with path.open("rb") as fh:
            digest.update(hashlib.file_digest(fh, "sha256").digest())
    return digest.hexdigest()[:16]


def _export(every: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.pid{os.getpid()}.tmp.onnx")
    try:
        every.export(str(tmp), format="onnx", verbose=False)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def session(every: Any, *, folder: Path, key: str) -> Callable[[np.ndarray], list[Any]] | None:
    """A function running `every` (a built, called Keras model) by ONNX Runtime on a batch,
    its outputs in `every`'s order; the ONNX file made once into `folder`. None (Keras
    predicts) when ONNX Runtime is missing or the export or session fails, said in one note
    per reason; a failure is remembered beside the cache (`<key>.failed`), so the export is
    not tried again for the same checkpoints."""
    if key in _FAILED or not available():
        return None
    path, failed = folder / f"{key}.onnx", folder / f"{key}.failed"
    if failed.exists():  # an earlier process found this graph unusable: not tried again
        _say(failed.read_text(errors="replace").strip() or "an earlier export failed")
        _FAILED.add(key)
        return None
    try:
        import onnxruntime as ort

        if not path.exists():
            _export(every, path)
        options = ort.SessionOptions()
        options.log_severity_level = 3
        run = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        inputs = run.get_inputs()
        if len(inputs) != 1:  # an export that turned constants into inputs
            raise ValueError(f"the exported graph wants {len(inputs)} inputs, not the pixels "
                             "alone")
        sample = np.zeros((1, *every.input.shape[1:]), every.input.dtype)
        run.run(None, {inputs[0].name: sample})  # it runs, or Keras predicts
    except Exception as exc:  # noqa: BLE001 - the exporters and runtimes raise many kinds
        why = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        _say(why)
        _FAILED.add(key)  # not tried again in this process,
        try:  # nor by later ones (delete the .failed file to try again)
            folder.mkdir(parents=True, exist_ok=True)
            failed.write_text(why + "\n")
        except OSError:
            pass
        return None
    name = run.get_inputs()[0].name
    return lambda batch: run.run(None, {name: batch})
