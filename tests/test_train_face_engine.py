"""FaceNet on ONNX Runtime: the converted graph gives TensorFlow's features, is converted once
and shared, and TensorFlow computes them when it cannot run."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from comp.train import face_engine, features

from .test_train_features import _faces, needs_facenet

needs_onnx = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("onnxruntime", "tf2onnx", "onnx")),
    reason="onnxruntime, onnx and tf2onnx are not installed")


@needs_facenet
@needs_onnx
def test_onnx_runtime_gives_tensorflows_features(demo_dir: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The five stages of 70 faces (two batches), flipped and not: equal to the TensorFlow
    graph's to 1e-4 relative (1e-5 absolute); the graph converted once into Keras' cache and
    read again by a new process (the converter not called)."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    features.onnx_network.cache_clear()
    images = _faces(demo_dir, 70)
    for flip in (False, True):
        want = features.extract(images, name="facenet", layers=features.STAGES, flip=flip)
        got = features.extract(images, name="facenet", layers=features.STAGES, flip=flip,
                               engine=True)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    assert len(list((tmp_path / "models").glob("graph-*.onnx"))) == 1
    features.onnx_network.cache_clear()  # a new process

    def never(*args: object) -> None:
        raise AssertionError("converted again")

    monkeypatch.setattr(face_engine, "_convert", never)
    again = features.extract(images[:3], name="facenet", layers=features.STAGES, flip=True,
                             engine=True)
    np.testing.assert_allclose(again, want[:3], rtol=1e-4, atol=1e-5)
    features.onnx_network.cache_clear()


@needs_facenet
def test_tensorflow_computes_when_the_conversion_fails(
        demo_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(face_engine, "available", lambda: True)
    monkeypatch.setattr(face_engine, "_FAILED", set())
    features.onnx_network.cache_clear()

    def broken(graph: object, input_name: str, outputs: list[str], path: Path) -> None:
        raise RuntimeError("unsupported op X")

    monkeypatch.setattr(face_engine, "_convert", broken)
    images = _faces(demo_dir, 4)
    got = features.extract(images, name="facenet", engine=True)
    np.testing.assert_array_equal(got, features.extract(images, name="facenet"))
    assert ("note: ONNX Runtime not used for the frozen features (unsupported op X); "
            "TensorFlow computes them") in capsys.readouterr().err
    assert not list((tmp_path / "models").glob("*.onnx"))
    features.onnx_network.cache_clear()


def test_the_key_follows_the_graph_the_outputs_and_the_libraries(
        monkeypatch: pytest.MonkeyPatch) -> None:
    key = face_engine.graph_key(b"graph", ["a:0"])
    assert face_engine.graph_key(b"graph", ["a:0"]) == key
    assert face_engine.graph_key(b"other", ["a:0"]) != key
    assert face_engine.graph_key(b"graph", ["a:0", "b:0"]) != key
    import importlib.metadata

    monkeypatch.setattr(importlib.metadata, "version", lambda name: "99.0")
    assert face_engine.graph_key(b"graph", ["a:0"]) != key
    monkeypatch.setenv("KERAS_HOME", "/somewhere")
    assert face_engine.cache_folder() == Path("/somewhere/models")
