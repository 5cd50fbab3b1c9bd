"""The one error type, and the one-line notes comp prints about what it did on its own."""

from __future__ import annotations

import pytest

from comp.errors import CompError, note


def test_a_note_is_one_line_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    note("x.npz: unreadable cache; computing it again")
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "note: x.npz: unreadable cache; computing it again\n"


def test_comp_error_carries_its_message() -> None:
    assert str(CompError("a.csv: row 2 has no label")) == "a.csv: row 2 has no label"
