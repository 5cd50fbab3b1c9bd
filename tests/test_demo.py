"""comp demo end to end."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from comp.cli import app

runner = CliRunner()

def test_demo_command_runs_end_to_end(tmp_path: Path) -> None:
    result = runner.invoke(app, ["demo", "--out", str(tmp_path / "demo"), "--train", "600",
                                 "--epochs", "1"])
    assert result.exit_code == 0, result.output
    assert "phase-2 balanced accuracy against the demo's answers" in result.output
    assert len(list((tmp_path / "demo" / "submissions").glob("*.csv"))) == 3
