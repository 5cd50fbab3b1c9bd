"""Versioned folders: commits, pruning, and readers that hold the version they read."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from comp.commit import CURRENT, KEEP, READ_LOCK, VERSIONS, Staging, reading, version_dir
from comp.errors import CompError


def commit(root: Path, text: str) -> Path:
    """A new version of `root` holding one file, data.txt = text."""
    with Staging(root, busy="busy") as stage:
        (stage.dir / "data.txt").write_text(text)
        return stage.commit()


def versions(root: Path) -> list[str]:
    return sorted(p.name for p in (root / VERSIONS).iterdir())


def test_a_commit_keeps_the_current_version_and_the_one_before(tmp_path: Path) -> None:
    made = [commit(tmp_path, str(k)) for k in range(4)]
    assert versions(tmp_path) == [m.name for m in made[-KEEP:]]
    assert (version_dir(tmp_path, None) / "data.txt").read_text() == "3"


def test_a_reader_keeps_its_version_while_writers_commit(tmp_path: Path) -> None:
    first = commit(tmp_path, "first")
    with reading():
        read = version_dir(tmp_path, None)
        assert read == first
        for k in range(KEEP + 2):  # enough commits to prune `first` twice over
            commit(tmp_path, f"later {k}")
        assert first.name in versions(tmp_path)
        assert version_dir(tmp_path, None) == first  # the same version, however often read
        assert (version_dir(tmp_path, None) / "data.txt").read_text() == "first"
    assert (version_dir(tmp_path, None) / "data.txt").read_text() == f"later {KEEP + 1}"
    commit(tmp_path, "after")  # the reader has gone: its version is pruned, its lock too
    assert first.name not in versions(tmp_path)
    assert not list(tmp_path.glob(f"{READ_LOCK}{first.name}"))


def test_without_a_reader_old_versions_go(tmp_path: Path) -> None:
    first = commit(tmp_path, "first")
    for k in range(KEEP):
        commit(tmp_path, str(k))
    assert first.name not in versions(tmp_path)


def test_nested_reading_blocks_share_the_outer_pins(tmp_path: Path) -> None:
    first = commit(tmp_path, "first")
    with reading():
        version_dir(tmp_path, None)
        with reading():
            commit(tmp_path, "second")
            assert version_dir(tmp_path, None) == first
        for k in range(KEEP):
            commit(tmp_path, str(k))
        assert first.name in versions(tmp_path)  # still held by the outer block


def test_a_reader_of_a_dangling_current_is_refused_then_reads_the_mended_one(
        tmp_path: Path) -> None:
    commit(tmp_path, "old")
    link = tmp_path / CURRENT
    newer = commit(tmp_path, "new")
    os.replace(link, tmp_path / "saved-link")
    os.symlink(f"{VERSIONS}/gone", link)  # `current` names a version that no longer exists
    with reading(), pytest.raises(CompError, match="points to a missing version"):
        version_dir(tmp_path, None)
    os.replace(tmp_path / "saved-link", link)
    with reading():
        assert version_dir(tmp_path, None) == newer


def test_a_damaged_current_is_mended_by_the_next_commit(tmp_path: Path) -> None:
    commit(tmp_path, "old")
    link = tmp_path / CURRENT
    link.unlink()
    os.symlink(f"{VERSIONS}/nowhere", link)
    with pytest.raises(CompError, match="the folder is damaged; rebuild it"):
        version_dir(tmp_path, None, fix="rebuild it")
    commit(tmp_path, "mended")
    assert (version_dir(tmp_path, None) / "data.txt").read_text() == "mended"
