"""A frozen extractor's graph on ONNX Runtime: FaceNet's TensorFlow GraphDef converted once by
tf2onnx (the layers a view reads as its outputs) and cached in Keras' cache, then run by
ONNX Runtime on the CPU; the TensorFlow graph stays the reference and the fallback (no
onnxruntime or tf2onnx, a conversion or session that fails, an accelerator).

Measured on 2 cores (BENCHMARKS.md, "FaceNet on ONNX Runtime"): the five stages of 64 images
at 160 px in 0.9 s against TensorFlow's 3.4 s, the features equal to 1e-5.
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from comp import threads
from comp.errors import note
from comp.workspace import atomic_write

OPSET = 17
LIBRARIES = ("tensorflow", "tf2onnx", "onnx", "onnxruntime")
OFF = False  # True: the TensorFlow graph computes every feature (the reference, for tests)
_FAILED: set[str] = set()  # graphs whose conversion or session failed in this process

Network = Callable[[np.ndarray], list[np.ndarray]]


def cache_folder() -> Path:
    """Where converted graphs are kept: Keras' cache (KERAS_HOME, else ~/.keras), under
    models/, shared by every workspace (a graph's key holds its bytes, outputs and the
    libraries' versions)."""
    import os

    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models"


def available() -> bool:
    """Whether ONNX Runtime and tf2onnx are there, and no accelerator may be (where the
    TensorFlow graph runs on the device)."""
    from comp.train import strategy

    return (not OFF and all(importlib.util.find_spec(m) is not None
                            for m in ("onnxruntime", "tf2onnx", "onnx"))
            and not strategy.accelerator_present())


def graph_key(raw: bytes, outputs: list[str]) -> str:
    """The graph's bytes, the tensors read and the converter's and runtime's versions."""
    from importlib.metadata import PackageNotFoundError, version

    digest = hashlib.sha256(raw)
    digest.update("/".join(outputs).encode())
    for name in LIBRARIES:
        try:
            digest.update(f"{name}={version(name)}".encode())
        except PackageNotFoundError:
            digest.update(f"{name}=none".encode())
    return digest.hexdigest()[:16]


def onnx_network(graph: Any, raw: bytes, *, input_name: str, outputs: list[str],
                 folder: Path) -> Network | None:
    """`graph` (a GraphDef made from the file bytes `raw`) as an ONNX Runtime function of a
    float32 batch -> one array per tensor of `outputs`; converted once into `folder`. None
    (TensorFlow computes) when unavailable or when the conversion or session fails (said
    in one note; not tried again in this process)."""
    key = graph_key(raw, outputs)
    if key in _FAILED or not available():
        return None
    path = folder / f"graph-{key}.onnx"
    try:
        if not path.exists():
            _convert(graph, input_name, outputs, path)
        return _session(path)
    except Exception as exc:  # noqa: BLE001 - the converter and runtime raise many kinds
        why = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        note(f"ONNX Runtime not used for the frozen features ({why}); TensorFlow computes "
             "them")
        path.unlink(missing_ok=True)
        _FAILED.add(key)
        return None


def _convert(graph: Any, input_name: str, outputs: list[str], path: Path) -> None:
    import tf2onnx

    def write(tmp: Path) -> None:
        tf2onnx.convert.from_graph_def(graph, input_names=[input_name], output_names=outputs,
                                       opset=OPSET, output_path=str(tmp))

    atomic_write(path, write)


def _session(path: Path) -> Network:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    free = threads.free_cores()
    options.intra_op_num_threads = free
    if free < threads.cores():  # a busy machine: idle workers sleep instead of spinning
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    run = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = run.get_inputs()[0].name
    return lambda batch: run.run(None, {name: np.ascontiguousarray(batch, np.float32)})
