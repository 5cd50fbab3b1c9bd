"""`comp inspect`: each computation on hand-made arrays, the report in a real browser, and the
demo's hidden property (glasses) found where it is."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from comp.cli import app
from comp.inspect import stats

runner = CliRunner()


def _square_faces(n: int = 200, side: int = 20, seed: int = 0
                  ) -> tuple[np.ndarray, np.ndarray, tuple[slice, slice]]:
    """Noise images; class 1 has a bright square over the eye region (rows 7-9, cols 5-14)."""
    rng = np.random.default_rng(seed)
    x = rng.integers(60, 120, (n, side, side, 3)).astype(np.uint8)
    y = np.arange(n) % 2
    square = (slice(7, 10), slice(5, 15))
    x[y == 1, square[0], square[1]] = 250
    return x, y, square


def test_difference_map_points_at_the_square() -> None:
    x, y, square = _square_faces()
    means = stats.mean_images(x, y, 2)
    np.testing.assert_allclose(means[1][square].mean(), 250, atol=1e-4)
    diff = stats.class_differences(means, np.bincount(y).astype(float))
    inside = np.zeros((20, 20), bool)
    inside[square] = True
    assert diff[1][inside].min() > 100 and np.abs(diff[1][~inside]).max() < 10
    np.testing.assert_allclose(diff[0], -diff[1], atol=1e-4)  # two classes: mirror images


def test_region_masks_by_hand() -> None:
    eyes = stats.region_mask("eyes", 20, 20)  # rows 30-50 %, cols 15-85 % of 20
    assert eyes.sum() == 4 * 14 and eyes[6, 3] and not eyes[5, 3] and not eyes[6, 17]
    corners = stats.region_mask("corners", 20, 20)  # 3x3 in each corner
    assert corners.sum() == 4 * 9 and corners[19, 19] and corners[0, 19] and not corners[10, 0]


def test_one_feature_score_equals_a_brute_force_search() -> None:
    from sklearn.metrics import balanced_accuracy_score

    rng = np.random.default_rng(3)
    values = np.round(rng.normal(size=120), 1)  # ties included
    positive = rng.random(120) < 0.3 + 0.4 * (values < 0)  # class 1 lower
    score, cut, direction = stats.one_feature_score(values, positive)
    brute = max(max(balanced_accuracy_score(positive, values > t),
                    balanced_accuracy_score(positive, values <= t))
                for t in np.concatenate([[values.min() - 1], np.unique(values)]))
    assert score == pytest.approx(brute, abs=1e-12) and direction == "lower"
    pred = values < cut
    assert balanced_accuracy_score(positive, pred) == pytest.approx(score, abs=1e-12)


def test_the_top_statistic_is_the_square_region() -> None:
    x, y, _ = _square_faces()
    ranked = stats.rank_statistics(stats.image_statistics(x), y, ["plain", "square"])
    assert ranked[0].balanced_accuracy == 1.0
    assert ranked[0].statistic.endswith(": eyes") and ranked[0].direction == "higher"


def test_mean_saliency_and_grad_cam_point_at_the_square() -> None:
    """A model that looks only at the square (its mean brightness, through a convolution):
    the gradient, SmoothGrad and Grad-CAM all sit on it."""
    import keras

    from comp.inspect import saliency

    x, y, square = _square_faces(n=16)
    inputs = keras.Input((20, 20, 3))
    mask = np.zeros((1, 20, 20, 1), np.float32)
    mask[0][square] = 1.0
    h = keras.layers.Conv2D(1, 1, use_bias=False, kernel_initializer="ones",
                            name="conv")(inputs)
    h = keras.layers.Lambda(lambda t: t * keras.ops.convert_to_tensor(mask))(h)
    pooled = keras.layers.GlobalAveragePooling2D()(h)
    out = keras.layers.Dense(1, activation="sigmoid", kernel_initializer=keras.initializers
                             .Constant(0.01), bias_initializer=keras.initializers
                             .Constant(-5.0))(pooled)
    model = keras.Model(inputs, out)
    inside = np.zeros((20, 20), bool)
    inside[square] = True
    for maps in (saliency.plain_saliency(model, x, y), saliency.smoothgrad(model, x, y)):
        mean = saliency.normalised(maps).mean(axis=0)
        assert mean[inside].min() > 0 and mean[~inside].max() == pytest.approx(0, abs=1e-6)
    cam = saliency.grad_cam(model, x[y == 1], y[y == 1])
    assert cam is not None and cam[:, inside].min() > 0 and cam[:, ~inside].max() == 0


@pytest.fixture(scope="module")
def inspected(workspace: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`comp inspect` of a one-epoch b1 run on the demo workspace."""
    ck = tmp_path_factory.mktemp("inspect")
    for args in (["train", "-w", str(workspace), "--model", "b1", "--epochs", "1",
                  "--checkpoints", str(ck), "--name", "seen", "--folds", "1",
                  "--batch-size", "32"],
                 ["inspect", "-w", str(workspace), "--checkpoints", str(ck), "--top", "3"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1] == f"report: {ck / 'seen/inspect/index.html'}"
    return ck / "seen" / "inspect"


def test_the_report_has_every_section_and_its_pictures(inspected: Path) -> None:
    page = (inspected / "index.html").read_text()
    for title in ("Average image per class", "Most confident right and wrong",
                  "Class distribution, confusion, threshold, calibration",
                  "Saliency: where the model looks", "Mean saliency per class",
                  "Learning curves", "Clues from image statistics"):
        assert title in page, title
    pictures = re.findall(r'<img src="([^"]+)"', page)
    assert len(pictures) >= 9 and all((inspected / p).stat().st_size > 1000 for p in pictures)
    assert "http" not in page.replace("http-equiv", "")  # nothing from the network
    assert not list(inspected.parent.glob(".inspect-*"))  # the staging folder is gone


def test_the_report_loads_in_a_real_browser(inspected: Path) -> None:
    """Headless Chromium opens the page from disk: every picture loads, no script error."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium not installed (.ci/run installs Debian's chromium package)")
    out = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                          "--virtual-time-budget=10000", "--dump-dom",
                          (inspected / "index.html").resolve().as_uri()],
                         capture_output=True, text=True, timeout=120)
    check = re.search(r'<p id="check" data-images="(\d+)" data-loaded="(\d+)" '
                      r'data-errors="(\d+)"', out.stdout)
    assert check, out.stdout[-2000:] + out.stderr[-2000:]
    images, loaded, errors = map(int, check.groups())
    assert images >= 9 and loaded == images and errors == 0


def test_the_demo_property_shows_on_the_eyes(inspected: Path) -> None:
    """The demo's class 1 wears glasses: the top statistic or the mean saliency's peak is
    on the eye region."""
    page = (inspected / "index.html").read_text()
    clues = page[page.index("Clues from image statistics"):]
    top = re.search(r"<td>([a-z ]+: [a-z]+)</td>", clues)
    assert top is not None
    peaks = re.findall(r"<li>[^<]*peak at row \d+, column \d+ \(([^)]*)\)</li>", page)
    assert top.group(1).endswith(": eyes") or any("eyes" in p for p in peaks), (top, peaks)


def test_inspect_without_runs_is_one_line(workspace: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["inspect", "-w", str(workspace), "--checkpoints",
                                 str(tmp_path)])
    assert result.exit_code == 1 and result.output.startswith("error: no run trained on")
    assert result.output.strip().count("\n") == 0


def test_four_classes_get_one_montage_per_class(workspace4: Path, tmp_path: Path) -> None:
    for args in (["train", "-w", str(workspace4), "--model", "b1", "--epochs", "1",
                  "--checkpoints", str(tmp_path), "--name", "four", "--folds", "1",
                  "--batch-size", "32"],
                 ["inspect", "four", "-w", str(workspace4), "--checkpoints", str(tmp_path),
                  "--top", "2"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
    report = tmp_path / "four" / "inspect"
    assert sorted(p.name for p in report.glob("examples_*.png")) == [
        f"examples_{k}.png" for k in range(4)]
    page = (report / "index.html").read_text()
    assert len(re.findall(r"<li>[^<]*peak at row", page)) == 4  # a mean saliency per class
