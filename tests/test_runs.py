"""Run folders: names, listing, opening with the fingerprint check, damaged records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from comp.errors import CompError
from comp.runs import RunDir, RunRecord, check_run_name, list_runs, new_run, open_run, runs_for


def _record(name: str, fingerprint: str = "f") -> RunRecord:
    return RunRecord(run=name, model="b1", classes=["0", "1"], input_shape=[8, 8, 3],
                     fingerprint=fingerprint, workspace="ws", learning_rate=1e-3,
                     augment=False, params=1, trainable_params=1, images_train=1,
                     images_val=1, created="now", config={})


def _make(ck: Path, name: str, fingerprint: str = "f") -> RunDir:
    run_dir = new_run(ck, name)
    run_dir.save_record(_record(run_dir.name, fingerprint))
    run_dir.best.write_bytes(b"model")
    return run_dir


@pytest.mark.parametrize("name", ["../x", "a/b", ".hidden", "", "x y", "/abs"])
def test_run_names_must_be_plain(name: str, tmp_path: Path) -> None:
    with pytest.raises(CompError, match="not a plain name"):
        new_run(tmp_path, name)
    assert list(tmp_path.iterdir()) == []


def test_plain_names_pass() -> None:
    for name in ("b3-20261122-101500", "b3_long", "tl3.v2", "b1+b3"):
        assert check_run_name(name) == name


def test_new_list_open(tmp_path: Path) -> None:
    a, b = _make(tmp_path, "r"), _make(tmp_path, "r")
    other = _make(tmp_path, "o", fingerprint="g")
    assert (a.name, b.name) == ("r", "r-2")
    assert list_runs(tmp_path) == ["o", "r", "r-2"]
    assert runs_for(tmp_path, "f") == ["r", "r-2"]
    run_dir, record = open_run(tmp_path, "r-2", fingerprint="f")
    assert run_dir == b and record == _record("r-2")
    with pytest.raises(CompError, match="trained on other data"):
        open_run(tmp_path, other.name, fingerprint="f")
    with pytest.raises(CompError, match=r"run 'x' not found .*runs: o, r, r-2"):
        open_run(tmp_path, "x", fingerprint="f")


def test_a_damaged_record_is_one_line(tmp_path: Path) -> None:
    run_dir = _make(tmp_path, "r")
    run_dir.record.write_text('{"run": "r", "mod')
    with pytest.raises(CompError, match="run record is damaged") as err:
        open_run(tmp_path, "r", fingerprint="f")
    assert "\n" not in str(err.value)
    run_dir.record.write_text(json.dumps({"run": "r"}))
    with pytest.raises(CompError, match="run record 'r' is damaged"):
        open_run(tmp_path, "r", fingerprint="f")
    assert runs_for(tmp_path, "f") == []  # a damaged run is no candidate for the best run
