"""Finding the challenge's files: image folders, labels CSVs, class folders, file ids."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from comp.config import PrepareConfig
from comp.errors import CompError
from comp.prepare.files import file_id, find_train, list_images


def test_file_ids_and_image_listing(tmp_path: Path) -> None:
    assert file_id("/a/b/0012.png") == "0012" and file_id("/a/.hidden") == ".hidden"
    for name in ("b.PNG", "a.jpg", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub.png").mkdir()  # a folder named like an image is not an image
    assert [Path(p).name for p in list_images(tmp_path)] == ["a.jpg", "b.PNG"]
    with pytest.raises(CompError, match="no image files"):
        list_images(tmp_path / "sub.png")


def test_class_folders_label_their_images(tmp_path: Path) -> None:
    for cls in ("law", "art"):
        (tmp_path / "train" / cls).mkdir(parents=True)
        (tmp_path / "train" / cls / "1.png").write_bytes(b"x")
    found = find_train(PrepareConfig(challenge=tmp_path))
    assert found.ids == ["art/1", "law/1"] and found.label_text == ["art", "law"]


def test_a_class_folder_name_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    (tmp_path / "train").mkdir()
    os.makedirs(os.fsencode(tmp_path / "train") + b"/\xff")
    with pytest.raises(CompError, match="the class folder name .* is not valid UTF-8; rename"):
        find_train(PrepareConfig(challenge=tmp_path))


def test_a_labels_csv_pairs_ids_with_files(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    for k in range(3):
        (tmp_path / "images" / f"u{k}.jpg").write_bytes(b"x")
    (tmp_path / "gender.csv").write_text("userid,gender\nu0.jpg,m\nu1,f\nu2,f\n")
    found = find_train(PrepareConfig(challenge=tmp_path))  # the one CSV, its id-like column
    assert found.ids == ["u0", "u1", "u2"] and found.label_text == ["m", "f", "f"]
