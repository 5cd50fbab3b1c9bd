"""The resume state and the history it is checked against."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from comp.errors import CompError
from comp.runs import RunDir
from comp.train.callbacks import TrainState, load_checkpoint


def _run(tmp_path: Path, history: str, epoch: int = 2) -> RunDir:
    run_dir = RunDir(tmp_path / "r")
    run_dir.path.mkdir()
    run_dir.state.write_text(json.dumps({"epoch": epoch, "best_score": 0.7, "best_epoch": 2,
                                         "plateau": {}}))
    run_dir.history.write_text(history)
    return run_dir


def test_the_state_keeps_the_history_of_its_epochs_only(tmp_path: Path) -> None:
    """Rows beyond the state's epoch (written before a kill that came ahead of state.json)
    are dropped, so no epoch appears twice."""
    state = TrainState.load(_run(tmp_path, "epoch,loss\n1,0.7\n2,0.6\n3,0.5\n"))
    assert (state.epoch, state.best_score) == (2, 0.7)
    assert [r["epoch"] for r in state.history] == [1, 2]


@pytest.mark.parametrize(("history", "words"), [
    ("\x00 garbage\n1,2\n", "history is damaged"),
    ("step,loss\n1,0.7\n2,0.6\n", "history is damaged (no column 'epoch')"),
    ("epoch,loss\n1,0.7\n", "it does not hold one row per epoch 1..2"),
    ("epoch,loss\n1,high\n2,low\n", "it does not hold one row per epoch"),
    ("", "history is damaged"),
])
def test_a_damaged_history_is_one_line_with_what_to_do(tmp_path: Path, history: str,
                                                      words: str) -> None:
    with pytest.raises(CompError) as refused:
        TrainState.load(_run(tmp_path, history))
    assert words in str(refused.value)
    assert "start a new run with `comp train`, or delete the file" in str(refused.value)


def test_a_missing_history_resumes_without_it(tmp_path: Path) -> None:
    run_dir = _run(tmp_path, "")
    run_dir.history.unlink()
    assert TrainState.load(run_dir).history == []


def test_a_missing_or_damaged_checkpoint_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(CompError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "none.keras")
    (tmp_path / "cut.keras").write_bytes(b"PK\x03\x04 cut")
    with pytest.raises(CompError, match="cut.keras: checkpoint is damaged"):
        load_checkpoint(tmp_path / "cut.keras")
