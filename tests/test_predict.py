"""comp predict: photos from anywhere, prepared as the workspace was and decided by the run's
own rule, give what comp submit gives; bad files are reported one line each."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

import comp
from comp.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def trained(workspace: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    ck = tmp_path_factory.mktemp("predict")
    result = runner.invoke(app, ["train", "-w", str(workspace), "--model", "b1", "--epochs",
                                 "1", "--checkpoints", str(ck), "--name", "p", "--folds", "1",
                                 "--batch-size", "32"])
    assert result.exit_code == 0, result.output
    return ck


def test_predict_gives_what_submit_gives(workspace: Path, demo_dir: Path, trained: Path,
                                         tmp_path: Path) -> None:
    result = runner.invoke(app, ["submit", "-w", str(workspace), "--checkpoints", str(trained),
                                 "--run", "p", "--no-leaks", "--submissions",
                                 str(tmp_path / "subs")])
    assert result.exit_code == 0, result.output
    submitted = pd.read_csv(next((tmp_path / "subs").glob("*.csv")), dtype=str)
    table = comp.predict("p", demo_dir / "val", workspace=workspace, checkpoints=trained)
    table["id"] = [Path(f).stem for f in table["file"]]
    merged = submitted.merge(table, on="id")
    assert len(merged) == len(submitted) == len(table)
    assert (merged["label"] == merged["class"]).all()
    np.testing.assert_allclose(table["p(0)"] + table["p(1)"], 1.0, rtol=1e-6)


def test_any_size_and_mode_and_bad_files_one_line_each(workspace: Path, demo_dir: Path,
                                                       trained: Path, tmp_path: Path) -> None:
    """A photo 5x larger as JPEG, the same photo in grayscale: predicted; a broken file, a
    text file and a missing path: one line each, the rest still predicted."""
    source = sorted((demo_dir / "val").iterdir())[0]
    with Image.open(source) as im:
        im.convert("RGB").resize((160, 160)).save(tmp_path / "big.jpg")
        im.convert("L").save(tmp_path / "gray.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n junk")
    (tmp_path / "notes.txt").write_text("x")
    out = tmp_path / "preds.csv"
    result = runner.invoke(app, ["predict", "p", str(tmp_path), str(tmp_path / "notes.txt"),
                                 str(tmp_path / "missing.jpg"), "-w", str(workspace),
                                 "--checkpoints", str(trained), "--out", str(out)])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    skipped = [x for x in lines if x.startswith("skipped: ")]
    assert len(skipped) == 3
    assert any("broken.png: cannot decode the image" in x for x in skipped)
    assert any("notes.txt: not an image file" in x for x in skipped)
    assert any("missing.jpg: not found" in x for x in skipped)
    table = pd.read_csv(out)
    assert [Path(f).name for f in table["file"]] == ["big.jpg", "gray.png"]
    assert set(table["class"].astype(str)) <= {"0", "1"}


def test_nothing_to_predict_is_one_line(workspace: Path, trained: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["predict", "p", str(tmp_path / "none.png"), "-w",
                                 str(workspace), "--checkpoints", str(trained)])
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1].startswith(
        "error: no image to predict (")
