"""ONNX Runtime prediction: the same probabilities and embeddings as Keras, per model kind,
fold models in one graph, exported once per checkpoint, and Keras when it cannot run."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from comp.submit import engine

needs_onnx = pytest.mark.skipif(not engine.available(),
                                reason="onnxruntime, onnx and tf2onnx are not installed")


def _saved(name: str, shape: tuple[int, ...], classes: int, folder: Path, seed: int,
           **options: object) -> Path:
    import keras

    from comp.train.models import build_model
    from comp.train.writer import save_model

    keras.utils.set_random_seed(seed)
    model = build_model(name, shape, classes, **options)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "best.keras"
    save_model(model, path)
    return path


KINDS = [  # every model kind: (name, input shape, classes, build options)
    ("res", (32, 32, 3), 2, {"augment": True}),
    ("b1", (32, 32, 1), 4, {}),
    ("b2", (24, 24, 3), 2, {}),
    ("b3", (24, 24, 3), 3, {"augment": True}),
    ("logreg", (24, 24, 3), 2, {}),
    ("tl1", (32, 32, 3), 2, {"weights": "none"}),
    ("tl2", (32, 32, 1), 2, {"weights": "none"}),
    ("tl3", (32, 32, 3), 4, {"weights": "none"}),
    ("mobilenetv2", (32, 32, 3), 2, {"weights": "none"}),
    ("efficientnetv2b0", (32, 32, 3), 2, {"weights": "none"}),
    ("convnexttiny", (32, 32, 3), 2, {"weights": "none"}),
    ("facenet", (1792,), 2, {}),
    ("facenet-flip", (1792,), 3, {}),
    ("facenet-stages", (5632,), 2, {}),
    ("facenet-stages-flip", (5632,), 2, {}),
]


# ImageNet-sized bases: one fold model and one batch each (two models in one graph are
# checked on the small kinds); their export alone takes 20-60 s on 2 cores
LARGE = {"tl1", "tl2", "tl3", "mobilenetv2", "efficientnetv2b0", "convnexttiny"}
# Keras' ONNX export of these does not run on ONNX Runtime (EfficientNetV2B0's graph wants
# constants of the network as extra inputs; ConvNeXtTiny's is refused as invalid): Keras
# predicts them (one note), and the failure is remembered beside the cache
KERAS_ONLY = {"efficientnetv2b0", "convnexttiny"}


def test_every_model_kind_is_checked_against_keras() -> None:
    from comp.specs import SPECS

    assert {k[0] for k in KINDS} == {str(m) for m in SPECS}


@needs_onnx
@pytest.mark.parametrize(("name", "shape", "classes", "options"), KINDS,
                         ids=[k[0] for k in KINDS])
def test_onnx_runtime_predicts_what_keras_predicts(name: str, shape: tuple[int, ...],
                                                   classes: int, options: dict,
                                                   tmp_path: Path) -> None:
    """Two fold models of each kind in one graph (uint8 pixels, or float32 features), 300
    inputs (two batches of 256), with and without the flip: probabilities and embeddings
    equal to 1e-5; the ONNX file is written once and reused (`LARGE`: one model, 40 inputs;
    `KERAS_ONLY`: Keras predicts, and says why)."""
    from comp.submit.predict import predict_models

    large = name in LARGE
    paths = [_saved(name, shape, classes, tmp_path / f"fold-{k}", seed=k, **options)
             for k in range(1 if large else 2)]
    rng = np.random.default_rng(0)
    n = 40 if large else 300
    x = (rng.normal(size=(n, *shape)).astype(np.float32) if len(shape) == 1
         else rng.integers(0, 256, (n, *shape), np.uint8))
    for tta in (False, True):
        want = predict_models(paths, x, tta=tta)
        got = predict_models(paths, x, tta=tta, engine=tmp_path / "engine")
        for w, g in zip(want, got, strict=True):
            np.testing.assert_allclose(g.prob, w.prob, atol=1e-5)
            np.testing.assert_allclose(g.embedding, w.embedding, atol=1e-4, rtol=1e-4)
    files = sorted(f.suffix for f in (tmp_path / "engine").iterdir())
    if name in KERAS_ONLY:  # the unusable graph removed, the reason kept
        assert files == [".failed"]
    else:
        assert files == [".onnx"]


@needs_onnx
def test_the_graph_is_exported_once_per_checkpoint(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from comp.submit.predict import predict_models

    exported: list[Path] = []
    real = engine._export
    monkeypatch.setattr(engine, "_export", lambda every, path: (exported.append(path),
                                                                real(every, path)))
    path = _saved("b1", (24, 24, 3), 2, tmp_path / "m", seed=0)
    x = np.zeros((10, 24, 24, 3), np.uint8)
    predict_models([path], x, engine=tmp_path / "engine")
    predict_models([path], x[:3], engine=tmp_path / "engine")
    assert len(exported) == 1
    _saved("b1", (24, 24, 3), 2, tmp_path / "m", seed=1)  # retrained: other weights
    predict_models([path], x, engine=tmp_path / "engine")
    assert len(exported) == 2 and exported[0] != exported[1]


@needs_onnx
def test_keras_predicts_when_onnx_runtime_cannot(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """No onnxruntime: Keras, silently. An export that fails: Keras, and one note; a later
    process does not export those checkpoints again (the failure is kept beside the cache)
    but says why, once."""
    from comp.submit.predict import predict_models

    path = _saved("b1", (24, 24, 3), 2, tmp_path / "m", seed=0)
    x = np.random.default_rng(1).integers(0, 256, (20, 24, 24, 3), np.uint8)
    want = predict_models([path], x)[0].prob
    monkeypatch.setattr(engine, "available", lambda: False)
    np.testing.assert_array_equal(predict_models([path], x, engine=tmp_path / "e")[0].prob,
                                  want)
    assert not (tmp_path / "e").exists()

    def broken(every: object, path: Path) -> None:
        raise RuntimeError("conversion failed at node X")

    monkeypatch.setattr(engine, "available", lambda: True)
    monkeypatch.setattr(engine, "_export", broken)
    monkeypatch.setattr(engine, "_FAILED", set())  # this process's memory of failures
    monkeypatch.setattr(engine, "_SAID", set())
    np.testing.assert_array_equal(predict_models([path], x, engine=tmp_path / "e")[0].prob,
                                  want)
    assert "note: ONNX Runtime not used (conversion failed at node X); Keras predicts" in \
        capsys.readouterr().err
    predict_models([path], x, engine=tmp_path / "e")  # not tried again: no second note
    assert "ONNX Runtime" not in capsys.readouterr().err
    assert [f.suffix for f in (tmp_path / "e").iterdir()] == [".failed"]

    def never(every: object, path: Path) -> None:
        raise AssertionError("exported again")

    monkeypatch.setattr(engine, "_export", never)
    monkeypatch.setattr(engine, "_FAILED", set())  # a new process
    monkeypatch.setattr(engine, "_SAID", set())
    np.testing.assert_array_equal(predict_models([path], x, engine=tmp_path / "e")[0].prob,
                                  want)
    assert capsys.readouterr().err.count("conversion failed at node X") == 1


@needs_onnx
def test_a_cached_graph_predicts_without_loading_keras(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Once exported, the graph runs without the checkpoints being loaded (phase 2), with
    the same predictions; where an accelerator may be, Keras loads them; a damaged cache
    file is exported again."""
    import comp.train.callbacks as callbacks
    from comp.submit.predict import predict_models
    from comp.train import strategy

    paths = [_saved("b1", (24, 24, 3), 2, tmp_path / f"fold-{k}", seed=k) for k in range(2)]
    x = np.random.default_rng(3).integers(0, 256, (30, 24, 24, 3), np.uint8)
    want = predict_models(paths, x, engine=tmp_path / "engine")
    loads: list[Path] = []
    real = callbacks.load_checkpoint
    monkeypatch.setattr(callbacks, "load_checkpoint",
                        lambda path, **kw: (loads.append(path), real(path, **kw))[1])
    got = predict_models(paths, x, tta=True, engine=tmp_path / "engine")
    assert loads == []
    flipped = predict_models(paths, x, tta=True)
    assert len(loads) == 2  # Keras, the reference
    for w, g in zip(flipped, got, strict=True):
        np.testing.assert_allclose(g.prob, w.prob, atol=1e-5)
    monkeypatch.setattr(strategy, "accelerator_present", lambda: True)
    predict_models(paths, x, engine=tmp_path / "engine")
    assert len(loads) == 4
    monkeypatch.setattr(strategy, "accelerator_present", lambda: False)
    (cached,) = (tmp_path / "engine").glob("*.onnx")
    cached.write_bytes(b"damaged")
    again = predict_models(paths, x, engine=tmp_path / "engine")
    assert len(loads) == 6 and cached.stat().st_size > 1000
    assert not list((tmp_path / "engine").glob("*.failed"))
    for w, g in zip(want, again, strict=True):
        np.testing.assert_allclose(g.prob, w.prob, atol=1e-6)


def test_a_failure_is_remembered_per_library_version_and_a_passing_one_not(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The .failed marker holds the versions it failed with: another version (an upgrade)
    removes it and tries again; a full disk or a memory error is not remembered across
    processes; the versions are part of the graph's key."""
    key = "k"
    folder = tmp_path / "e"
    folder.mkdir()
    (folder / "k.failed").write_text(f"conversion failed\n{engine.library_versions()}\n")
    assert engine._failed_before(folder, key) == "conversion failed"
    (folder / "k.failed").write_text("conversion failed\nkeras=0.1,onnxruntime=0.1\n")
    assert engine._failed_before(folder, key) is None
    assert not (folder / "k.failed").exists()  # tried again with today's libraries
    (folder / "k.failed").write_text("an old marker without versions\n")
    assert engine._failed_before(folder, key) is None

    def full_disk(every: object, path: Path) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(engine, "available", lambda: True)
    monkeypatch.setattr(engine, "_export", full_disk)
    monkeypatch.setattr(engine, "_FAILED", set())
    assert engine.session(object(), folder=folder, key=key) is None
    assert not (folder / "k.failed").exists()  # a later process tries again
    paths = [tmp_path / "m.keras"]
    paths[0].write_bytes(b"weights")
    before = engine.graph_key(paths, (8, 8, 3), "uint8")
    monkeypatch.setattr(engine, "library_versions", lambda: "onnxruntime=99")
    assert engine.graph_key(paths, (8, 8, 3), "uint8") != before


def test_a_cached_graph_is_not_used_on_another_keras_backend(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under KERAS_BACKEND=jax Keras predicts, as the documentation says; the backend is
    read from the environment, else Keras' config file, else TensorFlow."""
    (tmp_path / "k.onnx").write_bytes(b"a graph")
    monkeypatch.setattr(engine, "_open", lambda path: (lambda batch: [batch]))
    monkeypatch.setattr(engine.strategy, "accelerator_present", lambda: False)
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    assert engine.keras_backend() == "jax"
    assert engine.cached_session(tmp_path, "k") is None
    monkeypatch.delenv("KERAS_BACKEND")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "home"))
    assert engine.keras_backend() == "tensorflow"
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "keras.json").write_text('{"backend": "jax"}')
    assert engine.keras_backend() == "jax"
    (tmp_path / "home" / "keras.json").write_text('{"backend": "tensorflow"}')
    if importlib.util.find_spec("onnxruntime") is not None:
        assert engine.cached_session(tmp_path, "k") is not None
