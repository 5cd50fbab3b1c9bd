"""comp prepare end to end on the demo challenge, its CLI, and every bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from comp.cli import app
from comp.config import Duplicates, PrepareConfig
from comp.errors import CompError
from comp.prepare import prepare
from comp.workspace import Workspace

from .conftest import shared_dataset

runner = CliRunner()


def _index(ws: Path) -> pd.DataFrame:
    return Workspace(ws).load_index()


def test_store_holds_the_decoded_pixels(demo_dir: Path, workspace: Path) -> None:
    index = _index(workspace)
    store = np.load(Workspace(workspace).store("train"))
    train = index[index["source"] == "train"]
    assert store.shape == (len(train), 32, 32, 3) and store.dtype == np.uint8
    for row in train.sample(20, random_state=0).itertuples():
        want = np.asarray(Image.open(demo_dir / "train" / f"{row.id}.png").convert("RGB"))
        np.testing.assert_array_equal(store[row.row], want)


def test_every_planted_duplicate_and_conflict_is_found(demo_dir: Path, workspace: Path) -> None:
    index = _index(workspace).set_index("id")
    train = index[index["source"] == "train"]
    plants = pd.read_csv(demo_dir / "answers/train_copies.csv", dtype=str)
    assert len(plants) >= 10
    for plant in plants.itertuples():
        assert train.loc[plant.id, "group"] == train.loc[plant.original_id, "group"], plant
    conflicts = plants[plants["kind"] == "conflict"]
    flagged = set(train.index[train["conflict"].astype(bool)])
    assert flagged == set(conflicts["id"]) | set(conflicts["original_id"])  # no false conflicts
    assert (train.loc[list(flagged), "split"] == "conflict").all()
    # one member kept per consistent group; groups sit on one side of the split
    kept = train[train["kept"].astype(bool)]
    assert kept["group"].is_unique
    assert set(kept["split"]) == {"train", "val", "holdout"}


def test_val_copies_and_test_leaks_are_found(demo_dir: Path, workspace: Path,
                                             tmp_path: Path) -> None:
    overlap = pd.read_csv(Workspace(workspace).overlap, dtype={"id": str, "train_ids": str})
    val = pd.read_csv(demo_dir / "answers/val.csv", dtype=str)
    got = overlap[overlap["source"] == "val"].set_index("id")
    assert set(got.index) == set(val["id"])  # recall 100 %, no false matches
    for row in val.itertuples():
        assert row.train_id in got.loc[row.id, "train_ids"].split(";")


def test_phase2_ingests_only_the_test_images(demo_dir: Path, workspace: Path,
                                             tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    shutil.copytree(workspace, ws, symlinks=True)
    before = Workspace(ws).store("train").stat()
    summary = prepare(PrepareConfig(workspace=ws, test=demo_dir / "phase2/test",
                                    workers=1)).summary
    after = Workspace(ws).store("train").stat()  # the new version shares the train store
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    answers = pd.read_csv(demo_dir / "answers/test.csv", dtype=str, keep_default_na=False)
    leaks = answers[answers["train_id"] != ""]
    overlap = pd.read_csv(Workspace(ws).overlap, dtype={"id": str, "train_ids": str})
    test = overlap[overlap["source"] == "test"]
    assert set(test["id"]) == set(leaks["id"])
    assert summary.test_in_train == len(leaks)
    assert set(overlap[overlap["source"] == "val"]["id"]) == set(
        pd.read_csv(demo_dir / "answers/val.csv", dtype=str)["id"])
    index = _index(ws)
    assert (index["source"] == "test").sum() == len(answers)


def test_report_and_pictures(workspace: Path) -> None:
    text = Workspace(workspace).report.read_text()
    assert "duplicate groups" in text and "conflicting labels" in text
    for name in ("duplicates.png", "conflicts.png"):
        with Image.open(Workspace(workspace).dir / name) as im:
            assert im.format == "PNG" and im.width > 100


def test_cli_prepare(demo_dir: Path, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    result = runner.invoke(app, ["prepare", str(demo_dir), "-w", str(ws), "--workers", "1",
                                 "--size", "24x24", "--gray", "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert Workspace(ws).load_store("train").shape[1:] == (24, 24, 1)
    assert "kept" in result.output


def test_four_class_names(workspace4: Path) -> None:
    meta = Workspace(workspace4).load_meta()
    assert meta.classes == ["glasses", "glasses_smile", "plain", "smile"]
    assert set(_index(workspace4).query("source == 'train'")["label"]) == {0, 1, 2, 3}


def test_class_folders(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for cls in ("cs", "law"):
        (tmp_path / "c" / "train" / cls).mkdir(parents=True)
        for k in range(6):
            Image.fromarray(rng.integers(0, 256, (16, 16, 3), np.uint8)).save(
                tmp_path / "c" / "train" / cls / f"{k}.png")
    summary = prepare(PrepareConfig(challenge=tmp_path / "c", workspace=tmp_path / "ws",
                                    workers=1, split=(0.5, 0.25, 0.25))).summary
    assert summary.images_read == 12
    assert Workspace(tmp_path / "ws").load_meta().classes == ["cs", "law"]


# -- bad input: one clear line each, and no half-written store -----------------------------------

def _small_challenge(root: Path, n: int = 8, size: int = 16) -> Path:
    (root / "train").mkdir(parents=True)
    rng = np.random.default_rng(1)
    rows = []
    for k in range(n):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), np.uint8)).save(
            root / "train" / f"{k:03d}.png")
        rows.append(f"{k:03d},{k % 2}")
    (root / "train.csv").write_text("id,label\n" + "\n".join(rows) + "\n")
    return root


def _run(root: Path, *extra: str) -> tuple[int, str]:
    result = runner.invoke(app, ["prepare", str(root), "-w", str(root / "ws"), "--workers", "1",
                                 "--split", "0.5,0.25,0.25", "--folds", "2", *extra])
    return result.exit_code, result.output


BAD_CASES = {
    "corrupt": (lambda r: (r / "train/003.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage"),
                "003.png: cannot decode the image"),
    "truncated": (lambda r: (r / "train/004.png").write_bytes(
        (r / "train/004.png").read_bytes()[:60]), "004.png: cannot decode the image"),
    "missing image": (lambda r: (r / "train/005.png").unlink(),
                      "id '005' (row 7) has no image"),
    "no label": (lambda r: Image.new("RGB", (16, 16)).save(r / "train/999.png"),
                 "999.png: image has no label"),
    "duplicate id": (lambda r: (r / "train.csv").write_text(
        (r / "train.csv").read_text() + "001,1\n"), "id '001' appears more than once"),
    "wrong label": (lambda r: (r / "train.csv").write_text(
        (r / "train.csv").read_text().replace("002,0", "002,7")), "has label '7'"),
    "mixed sizes": (lambda r: Image.new("RGB", (20, 20)).save(r / "train/006.png"),
                    "pass --size HxW"),
    "non-image file": (lambda r: (r / "train/007.png").write_text("not an image"),
                       "007.png: cannot decode the image"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_input_is_one_clear_line(tmp_path: Path, case: str) -> None:
    root = _small_challenge(tmp_path / "c")
    spoil, message = BAD_CASES[case]
    spoil(root)
    code, output = _run(root)
    assert code == 1
    assert message in output, output
    assert "Traceback" not in output and output.strip().count("\n") == 0, output
    assert not Workspace(root / "ws").is_prepared()
    if (root / "ws").exists():  # at most the lock file: nothing staged, nothing committed
        assert [p.name for p in (root / "ws").iterdir()] == [".lock"]


@pytest.mark.parametrize("case", ["corrupt", "missing image", "no label", "truncated"])
def test_skip_bad_goes_on_and_counts(tmp_path: Path, case: str) -> None:
    root = _small_challenge(tmp_path / "c", n=12)
    BAD_CASES[case][0](root)
    code, output = _run(root, "--skip-bad")
    assert code == 0, output
    meta = Workspace(root / "ws").load_meta()
    assert meta.summary["skipped"] == 1
    # a missing or broken image drops its row; an unlabelled extra image was never a row
    assert meta.summary["images_read"] == (12 if case == "no label" else 11)


def test_empty_and_missing_folders(tmp_path: Path) -> None:
    (tmp_path / "c" / "train").mkdir(parents=True)
    (tmp_path / "c" / "train.csv").write_text("id,label\n")
    code, output = _run(tmp_path / "c")
    assert code == 1 and "no image files" in output
    code, output = _run(tmp_path / "nowhere")
    assert code == 1 and "no training folder" in output


def test_nothing_to_prepare_message(tmp_path: Path) -> None:
    with pytest.raises(CompError, match="nothing to prepare"):
        prepare(PrepareConfig(workspace=tmp_path / "ws"))


@pytest.mark.realdata
def test_smilesmiled_identical_pairs_and_conflicts(tmp_path: Path) -> None:
    root = shared_dataset("smilesmiled")
    summary = prepare(PrepareConfig(train=root / "images", labels=root / "labels.csv",
                                    workspace=tmp_path / "ws")).summary
    pairs = pd.read_csv(Workspace(tmp_path / "ws").pairs)
    assert (pairs["pixel"] == 0).sum() == 7  # the 7 identical pairs
    assert summary.conflict_groups == 5
    assert summary.dropped_conflicts == 10


def _with_val(root: Path, side: int) -> Path:
    (root / "val").mkdir()
    rng = np.random.default_rng(2)
    for k in range(3):
        Image.fromarray(rng.integers(0, 256, (side, side, 3), np.uint8)).save(
            root / "val" / f"v{k}.png")
    return root


def test_val_of_another_native_size(tmp_path: Path) -> None:
    """Refused with the option that prepare itself takes; resized when asked to, or when
    --size says every image is resized anyway."""
    root = _with_val(_small_challenge(tmp_path / "c"), 20)
    code, output = _run(root)
    assert code == 1 and "image is 20x20 but the training images were 16x16" in output
    assert "pass --on-size-mismatch resize" in output
    assert not Workspace(root / "ws").is_prepared()
    code, output = _run(root, "--on-size-mismatch", "resize")
    assert code == 0, output
    assert Workspace(root / "ws").load_store("val").shape == (3, 16, 16, 3)
    code, output = _run(root, "--size", "18x18", "-w", str(tmp_path / "ws2"))
    assert code == 0, output
    assert Workspace(tmp_path / "ws2").load_store("val").shape == (3, 18, 18, 3)


def test_folds_cover_every_kept_image_and_never_split_a_group(demo_dir: Path,
                                                              tmp_path: Path) -> None:
    """K folds over every kept labelled image: balanced, stratified, and the members of a
    duplicate group (all kept here) in one fold."""
    ws = tmp_path / "ws"
    prepare(PrepareConfig(challenge=demo_dir, workspace=ws, workers=1, folds=4,
                          duplicates=Duplicates.KEEP_ALL))
    index = Workspace(ws).load_index()
    train = index[index["source"] == "train"]
    kept = train[train["kept"]]
    assert set(kept["fold"]) == {0, 1, 2, 3}
    assert (train[~train["kept"]]["fold"] == -1).all()
    assert (index[index["source"] != "train"]["fold"] == -1).all()
    assert (kept.groupby("split_group")["fold"].nunique() == 1).all()
    assert kept.groupby("group").size().max() > 1  # the demo plants duplicates: a real check
    sizes = kept.groupby("fold").size()
    assert sizes.max() - sizes.min() <= 0.1 * len(kept)
    shares = kept.groupby("fold")["label"].mean()
    assert shares.max() - shares.min() < 0.1  # stratified by label


def test_user_ids_as_file_names_need_no_flags(tmp_path: Path) -> None:
    """The gender report's layout: one folder of <userid>.jpg (some .png, .JPG), a CSV of
    userid,gender beside it (ids with leading zeros, some written with their extension)."""
    from PIL import Image

    from comp.config import PrepareConfig
    from comp.prepare import prepare
    from comp.workspace import Workspace

    root = tmp_path / "gender"
    (root / "profile").mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = []
    for k in range(40):
        uid = f"{k:05d}"
        ext = (".jpg", ".png", ".JPG")[k % 3]
        pixels = rng.integers(0, 256, (24 + k % 5, 20 + k % 3, 3), np.uint8)
        Image.fromarray(pixels).save(root / "profile" / f"{uid}{ext}",
                                     format="PNG" if ext == ".png" else "JPEG")
        rows.append(f"{uid}{ext if k % 4 == 0 else ''},{'male' if k % 2 else 'female'}")
    (root / "profile.csv").write_text("userid,gender\n" + "\n".join(rows) + "\n")
    prepare(PrepareConfig(challenge=root, workspace=tmp_path / "ws", size=(16, 16),
                          workers=1, split=(0.5, 0.25, 0.25), folds=2))
    index = Workspace(tmp_path / "ws").load_index()
    assert sorted(index["id"].astype(str)) == [f"{k:05d}" for k in range(40)]
    assert Workspace(tmp_path / "ws").load_meta().classes == ["female", "male"]
    by_id = index.set_index(index["id"].astype(str))["original_label"]
    assert [int(by_id[f"{k:05d}"]) for k in range(4)] == [0, 1, 0, 1]
