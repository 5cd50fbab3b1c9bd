"""The workspace: damaged files are reported with the command that rebuilds them; writes are
atomic and new files never replace old ones."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from comp.errors import CompError
from comp.workspace import Workspace, atomic_write, write_new


@pytest.mark.parametrize(("name", "spoil"), [
    ("meta.json", lambda p: p.write_text(p.read_text()[:40])),
    ("meta.json", lambda p: p.write_text('{"classes": ["0", "1"]}')),
    ("index.csv", lambda p: p.write_bytes(b"\x00\xff\xfe garbage\n\x00")),
    ("images-train.npy", lambda p: p.write_bytes(p.read_bytes()[:50])),
])
def test_damaged_workspace_files_are_one_line(workspace: Path, tmp_path: Path, name: str,
                                              spoil) -> None:
    ws = tmp_path / "ws"
    shutil.copytree(workspace, ws, symlinks=True)
    spoil(Workspace(ws).dir / name)
    reader = {"meta.json": lambda w: w.load_meta(), "index.csv": lambda w: w.load_index(),
              "images-train.npy": lambda w: w.load_store("train")}[name]
    with pytest.raises(CompError) as err:
        reader(Workspace(ws))
    text = str(err.value)
    assert f"{name}: damaged" in text and "comp prepare" in text and "\n" not in text


def test_atomic_write_leaves_the_old_file_when_writing_fails(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text("old")

    def fail(p: Path) -> None:
        p.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_write(path, fail)
    assert path.read_text() == "old" and list(tmp_path.iterdir()) == [path]


def test_write_new_never_replaces(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    write_new(path, lambda p: p.write_text("first"))
    with pytest.raises(FileExistsError):
        write_new(path, lambda p: p.write_text("second"))
    assert path.read_text() == "first" and list(tmp_path.iterdir()) == [path]
