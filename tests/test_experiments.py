"""comp runs: every run of the workspace with its out-of-fold score, its submissions and the
leaderboard scores given to them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from comp.errors import CompError
from comp.experiments import options_changed, set_leaderboard, table
from comp.runs import RunDir

from .test_hostile import PREPARE, SUBMIT, TRAIN, make_challenge, run


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two runs (one submitted), and a run of other data."""
    base = tmp_path_factory.mktemp("runs")
    make_challenge(base / "c")
    assert run(base, *PREPARE).code == 0
    assert run(base, *TRAIN, "--name", "r1").code == 0
    assert run(base, *TRAIN, "--name", "r2", "--l2", "0.001", "--epochs", "2").code == 0
    assert run(base, *SUBMIT).code == 0  # --run r1
    return base


def test_the_table_shows_every_run_its_score_and_its_submissions(scored: Path) -> None:
    rows, others = table(scored / "ws", scored / "ck", scored / "subs")
    by = {r.run: r for r in rows}
    assert set(by) == {"r1", "r2"} and others == []
    submitted = json.loads(next((scored / "subs").glob("*.json")).read_text())
    r1 = by["r1"]
    assert [s.name for s in r1.submissions] == [Path(submitted["csv"]).stem]
    own = {c["name"]: c["balanced_accuracy"] for c in submitted["decision"]["candidates"]}
    # the nested headline submit printed, not the best candidate selected on itself
    assert r1.oof == submitted["decision"]["oof_balanced_accuracy"]
    decision = submitted["decision"]
    assert r1.oof_by == f"{decision['candidate']} ({decision['rule']}), nested holdout"
    assert r1.best_own == max(v for k, v in own.items() if k.startswith("r1"))
    assert r1.best_own_by.endswith(", holdout")  # a one-model run: on its holdout split
    assert r1.folds == 0 and r1.epochs == 1 and r1.model == "b1"
    assert r1.options == {"batch_size": 8, "folds": 1}
    assert by["r2"].options == {"batch_size": 8, "folds": 1, "l2": 0.001}
    assert by["r2"].oof is None and by["r2"].submissions == []  # never submitted or evaluated
    assert by["r2"].epochs == 2 and by["r2"].seconds > 0


def test_a_leaderboard_score_is_kept_and_sorts_the_table(scored: Path, tmp_path: Path) -> None:
    import shutil

    subs = tmp_path / "subs"
    shutil.copytree(scored / "subs", subs)
    csv = next(subs.glob("*.csv"))
    assert set_leaderboard(subs, str(csv), 0.8125) == csv.stem
    assert set_leaderboard(subs, csv.name, 0.83) == csv.stem  # by name too: the latest wins
    rows, _ = table(scored / "ws", scored / "ck", subs, sort="lb")
    assert [r.run for r in rows] == ["r1", "r2"]
    assert rows[0].best_lb == 0.83 and rows[0].submissions[0].leaderboard == 0.83
    with pytest.raises(CompError, match="--lb: no submission 'nope' in"):
        set_leaderboard(subs, "nope.csv", 0.5)
    with pytest.raises(CompError, match="--lb: the score must be a number from 0 to 1"):
        set_leaderboard(subs, csv.name, 83.0)
    with pytest.raises(CompError, match="--sort must be one of"):
        table(scored / "ws", scored / "ck", subs, sort="luck")


def test_the_command_prints_the_table_or_json(scored: Path) -> None:
    base = ("runs", "-w", "{ws}", "--checkpoints", "{ck}", "--submissions", "{subs}")
    shown = run(scored, *base)
    assert shown.code == 0, shown.output
    lines = shown.output.splitlines()
    assert lines[0].startswith("| run | model | folds | epochs | out-of-fold (nested) | best "
                               "own candidate (self-selected) | leaderboard |")
    assert any(line.startswith("| r1 | b1 | 1 | 1 | 0.") for line in lines)
    data = json.loads(run(scored, *base, "--json").output)
    assert {r["run"] for r in data["runs"]} == {"r1", "r2"}
    assert data["other_data"] == []


def test_a_run_keeps_its_headline_alone_beside_a_later_one_with_other_runs(tmp_path: Path
                                                                          ) -> None:
    from comp.experiments import _headline
    from comp.submit.submission import record_scores

    run_dir = RunDir(tmp_path / "a")
    run_dir.path.mkdir()
    cands = [{"name": "a", "balanced_accuracy": 0.9, "rule": "threshold"},
             {"name": "a +flip", "balanced_accuracy": 0.93, "rule": "threshold"},
             {"name": "b", "balanced_accuracy": 0.95, "rule": "threshold"}]
    record_scores(run_dir, candidates=cands, scored_on="out-of-fold", images=10,
                  headline=0.88, rule="a (threshold)", runs=["a", "b"])
    assert _headline(run_dir, json.loads(run_dir.submit_score.read_text())) == (
        0.88, "a (threshold), nested out-of-fold; with b", ["b"])
    record_scores(run_dir, candidates=cands[:2], scored_on="out-of-fold", images=10,
                  headline=0.87, rule="a +flip (threshold)", runs=["a"])
    record_scores(run_dir, candidates=cands, scored_on="out-of-fold", images=10,
                  headline=0.91, rule="stack of 2 runs (0.5)", runs=["a", "b"])
    saved = json.loads(run_dir.submit_score.read_text())
    assert _headline(run_dir, saved) == (0.87, "a +flip (threshold), nested out-of-fold", [])
    assert [c["name"] for c in saved["candidates"]] == ["a", "a +flip"]  # b's are not a's
    run_dir.submit_score.write_text('{"headlines": {"a": {"headline": "x"}}}')
    assert _headline(run_dir, json.loads(run_dir.submit_score.read_text()))[0] is None


def test_the_table_marks_a_headline_chosen_with_other_runs(scored: Path) -> None:
    import dataclasses

    from comp.experiments import as_lines

    rows, _ = table(scored / "ws", scored / "ck", scored / "subs", sort="name")
    alone = rows[0]
    assert alone.run == "r1" and alone.oof is not None and alone.oof_with == []
    stacked = dataclasses.replace(alone, oof_with=["r2"])
    line_alone, line_stacked = (next(line for line in as_lines([r], []) if line.startswith(
        "| r1 |")) for r in (alone, stacked))
    assert f"| {alone.oof:.4f} |" in line_alone
    assert f"| {alone.oof:.4f} (with other runs) |" in line_stacked


def test_runs_of_other_data_are_named_not_mixed_in(scored: Path, tmp_path: Path) -> None:
    import shutil

    shutil.copytree(scored, tmp_path / "b", symlinks=True)
    record = RunDir(tmp_path / "b" / "ck" / "r2").load_record()
    from dataclasses import replace

    with RunDir(tmp_path / "b" / "ck" / "r2").lock():
        RunDir(tmp_path / "b" / "ck" / "r2").save_record(replace(record, fingerprint="other"))
    rows, others = table(tmp_path / "b" / "ws", tmp_path / "b" / "ck", tmp_path / "b" / "subs")
    assert [r.run for r in rows] == ["r1"] and others == ["r2"]
    assert options_changed(replace(record, config={**record.config, "mixup": 0.4})) == {
        "batch_size": 8, "folds": 1, "l2": 0.001, "mixup": 0.4}


def test_json_is_the_machine_form_of_each_summary(scored: Path, tmp_path: Path) -> None:
    evaluated = json.loads(run(scored, "evaluate", "r1", "-w", "{ws}", "--checkpoints", "{ck}",
                               "--folds", "2", "--json").output)
    assert evaluated[0]["run"] == "r1" and evaluated[0]["scored_on"] == "holdout"
    assert 0 <= evaluated[0]["balanced_accuracy"] <= 1
    submitted = run(scored, *SUBMIT, "--json")
    assert submitted.code == 0, submitted.output
    manifest = json.loads(submitted.output)
    assert manifest["images"] == 6 and manifest["runs"][0]["run"] == "r1"
    assert manifest["decision"]["runs"] == ["r1"] and manifest["notes"]
    made = run(scored, "demo-data", str(tmp_path / "d"), "--train", "40", "--val", "4",
               "--test", "4", "--size", "16", "--json")
    assert json.loads(made.output)["test_leaks"] >= 0
    shown = run(scored, "demo-data", str(tmp_path / "e"), "--train", "40", "--val", "4",
                "--test", "4", "--size", "16")
    assert shown.output.startswith("wrote 40 training images (")
    assert len(shown.output.strip().splitlines()) == 2
