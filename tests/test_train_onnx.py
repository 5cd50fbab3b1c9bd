"""ONNX Runtime sessions: a graph runs on a sample and then on batches, with threads sized to
the free cores; a failure marker holds the versions it failed with."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from comp.train import onnx

ort = pytest.importorskip("onnxruntime")


def _doubling_graph(path: Path, *, inputs: int = 1) -> None:
    """A graph computing x + x on float32 (N, 3), or one that wants two inputs."""
    from onnx import TensorProto, helper, save

    names = ["x", "y"][:inputs]
    graph = helper.make_graph(
        [helper.make_node("Add", [names[0], names[-1]], ["out"])], "double",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", 3]) for n in names],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 3])])
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def test_a_session_runs_batches_with_threads_sized_to_the_free_cores(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The session runs a zero sample (free dimensions 1) then any batch; its intra-op threads
    are the free cores, and workers sleep on a busy machine (spinning off)."""
    _doubling_graph(tmp_path / "g.onnx")
    made: list[object] = []
    real = ort.InferenceSession

    def spy(path: str, options: object, providers: list[str]) -> object:
        made.append(options)
        return real(path, options, providers=providers)

    monkeypatch.setattr(ort, "InferenceSession", spy)
    monkeypatch.setattr(onnx.threads, "free_cores", lambda: 1)
    monkeypatch.setattr(onnx.threads, "cores", lambda: 2)
    run = onnx.open_session(tmp_path / "g.onnx")
    out = run(np.array([[1, 2, 3], [4, 5, 6]], np.float32))
    np.testing.assert_array_equal(out[0], [[2, 4, 6], [8, 10, 12]])
    options = made[0]
    assert options.intra_op_num_threads == 1  # type: ignore[attr-defined]
    assert options.get_session_config_entry(  # type: ignore[attr-defined]
        "session.intra_op.allow_spinning") == "0"


def test_a_graph_wanting_two_inputs_is_refused(tmp_path: Path) -> None:
    _doubling_graph(tmp_path / "g.onnx", inputs=2)
    with pytest.raises(ValueError, match="wants 2 inputs"):
        onnx.open_session(tmp_path / "g.onnx")


def test_a_failure_marker_holds_its_versions(tmp_path: Path) -> None:
    """Remembered with today's versions it is found; with other versions, or without any, it
    is removed so the graph is tried again; a reason is one short line."""
    libraries = ("numpy",)
    onnx.remember_failure(tmp_path / "e", "k", "unsupported op", libraries)
    assert onnx.failed_before(tmp_path / "e", "k", libraries) == "unsupported op"
    assert (tmp_path / "e" / "k.failed").read_text().splitlines()[1] == \
        f"numpy={np.__version__}"
    assert onnx.failed_before(tmp_path / "e", "k", ("numpy", "onnx")) is None
    assert not (tmp_path / "e" / "k.failed").exists()
    assert onnx.failed_before(tmp_path / "e", "k", libraries) is None
    assert onnx.library_versions(("no-such-distribution",)) == "no-such-distribution=none"
    assert onnx.reason(ValueError("first line\nsecond")) == "first line"
    assert onnx.reason(KeyError()) == "KeyError"
