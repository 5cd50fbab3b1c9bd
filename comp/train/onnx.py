"""ONNX Runtime on the CPU, shared by the models' engine (`comp.submit.engine`) and the frozen
feature extractors (`comp.train.features`): a session sized to the free cores, the versions
that make a graph, and a failure remembered beside the cached graph so that later processes
with the same libraries do not try again.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from comp import threads


def library_versions(libraries: tuple[str, ...]) -> str:
    """The installed versions of these distributions (read without importing them)."""
    from importlib.metadata import PackageNotFoundError, version

    def one(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "none"

    return ",".join(f"{name}={one(name)}" for name in libraries)


def open_session(path: Path, sample: np.ndarray | None = None
                 ) -> Callable[[np.ndarray], list[Any]]:
    """An ONNX Runtime session on the CPU that takes one input, run once on `sample` (zeros of
    the input's shape, free dimensions 1, when None), as a function of a batch; raises when
    it cannot. Its threads are the free cores; on a busy machine idle workers sleep instead
    of spinning."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    free = threads.free_cores()
    options.intra_op_num_threads = free
    if free < threads.cores():
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    run = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    inputs = run.get_inputs()
    if len(inputs) != 1:  # an export that turned constants into inputs
        raise ValueError(f"the exported graph wants {len(inputs)} inputs, not the pixels "
                         "alone")
    name = inputs[0].name
    if sample is None:
        shape = [d if isinstance(d, int) else 1 for d in inputs[0].shape]
        dtype = {"tensor(uint8)": np.uint8, "tensor(float)": np.float32}[inputs[0].type]
        sample = np.zeros(shape, dtype)
    run.run(None, {name: sample})  # it runs, or the caller falls back
    return lambda batch: run.run(None, {name: batch})


def failed_before(folder: Path, key: str, libraries: tuple[str, ...]) -> str | None:
    """Why an earlier process could not export or run graph `key` with these libraries'
    versions; None when none failed, or it failed with other versions (its marker is
    removed, so the export is tried again)."""
    failed = folder / f"{key}.failed"
    try:
        lines = failed.read_text(errors="replace").splitlines()
    except OSError:
        return None
    if len(lines) < 2 or lines[1] != library_versions(libraries):
        failed.unlink(missing_ok=True)
        return None
    return lines[0].strip() or "an earlier export failed"


def remember_failure(folder: Path, key: str, why: str, libraries: tuple[str, ...]) -> None:
    """Mark graph `key` as unusable with these libraries (nothing when it cannot be
    written)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{key}.failed").write_text(f"{why}\n{library_versions(libraries)}\n")
    except OSError:
        pass


def reason(exc: BaseException) -> str:
    """An exception in one short line."""
    return str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
