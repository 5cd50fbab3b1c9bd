"""The submission CSV: following the sample, validation, never overwriting."""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path

import pandas as pd
import pytest

from comp.errors import CompError
from comp.submit import submission
from comp.workspace import claim_name

IDS = {"id_column": "id", "label_column": "label"}


def test_csv_follows_the_sample_and_validates() -> None:
    sample = pd.DataFrame({"Id": ["c", "a", "b"], "Category": ["0", "0", "0"]})
    named = {"id_column": "Id", "label_column": "Category"}
    frame = submission.build_frame(["a", "b", "c"], ["1", "0", "1"], sample, **named)
    assert frame.columns.tolist() == ["Id", "Category"]
    assert frame["Id"].tolist() == ["c", "a", "b"] and frame["Category"].tolist() == ["1", "1", "0"]
    submission.validate(frame, ["a", "b", "c"], ["0", "1"], **named)
    with pytest.raises(CompError, match="sample submission does not match"):
        submission.build_frame(["a", "b"], ["1", "0"], sample, **named)
    with pytest.raises(CompError, match="more than once"):
        submission.validate(pd.DataFrame({"id": ["a", "a"], "label": ["0", "1"]}), ["a"],
                            ["0", "1"], **IDS)
    with pytest.raises(CompError, match="1 missing, 1 extra"):
        submission.validate(pd.DataFrame({"id": ["a", "x"], "label": ["0", "1"]}), ["a", "b"],
                            ["0", "1"], **IDS)
    with pytest.raises(CompError, match="label '2' is not one of"):
        submission.validate(pd.DataFrame({"id": ["a"], "label": ["2"]}), ["a"], ["0", "1"],
                            **IDS)


def _manifest(tag: str) -> submission.Manifest:
    return submission.Manifest(
        csv="", created="now", target="val", images=1, runs=[], tta=False, decision={},
        leaks={}, predicted_counts={}, sample_submission=None, data_fingerprint=tag,
        workspace="ws", command=tag, seconds=0.0)


def test_a_name_taken_between_choice_and_write_gets_the_next_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process creates the chosen CSV name just before ours is linked there: ours
    goes to `-2`, and the other file keeps its bytes."""
    real_link = os.link
    intruder = tmp_path / "stem.csv"

    def link(src: str | Path, dst: str | Path) -> None:
        if Path(dst) == intruder and not intruder.exists():
            intruder.write_text("someone else's\n")  # appears after the name was chosen
        real_link(src, dst)

    monkeypatch.setattr(os, "link", link)
    frame = pd.DataFrame({"id": ["a"], "label": ["1"]})
    written = submission.write(frame, _manifest("mine"), tmp_path, "stem")
    assert written.csv == str(tmp_path / "stem-2.csv")
    assert intruder.read_text() == "someone else's\n"
    assert pd.read_csv(written.csv, dtype=str)["label"].tolist() == ["1"]
    assert json.loads((tmp_path / "stem-2.json").read_text())["csv"] == written.csv
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stem-2.csv", "stem-2.json",
                                                          "stem.csv"]


def test_an_earlier_manifest_keeps_its_name(tmp_path: Path) -> None:
    (tmp_path / "stem.json").write_text("{}")
    written = submission.write(pd.DataFrame({"id": ["a"], "label": ["0"]}), _manifest("x"),
                               tmp_path, "stem")
    assert Path(written.csv).name == "stem-2.csv"
    assert (tmp_path / "stem.json").read_text() == "{}"


def _write_many(args: tuple[str, int]) -> list[str]:
    folder, worker = args
    frame = pd.DataFrame({"id": ["a"], "label": [str(worker)]})
    return [submission.write(frame, _manifest(str(worker)), Path(folder), "same").csv
            for _ in range(15)]


def test_concurrent_writers_never_share_a_name(tmp_path: Path) -> None:
    with multiprocessing.get_context("fork").Pool(4) as pool:
        names = [n for part in pool.map(_write_many, [(str(tmp_path), w) for w in range(4)])
                 for n in part]
    assert len(names) == len(set(names)) == 60
    assert len(list(tmp_path.glob("*.csv"))) == 60 and len(list(tmp_path.glob("*.json"))) == 60
    for name in names:  # every CSV still holds what its own writer wrote
        label = pd.read_csv(name, dtype=str)["label"].iloc[0]
        assert json.loads(Path(name).with_suffix(".json").read_text())["command"] == label


def test_claim_name_by_hand(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run-2").mkdir()
    assert claim_name(tmp_path, "run", "", Path.mkdir) == tmp_path / "run-3"
