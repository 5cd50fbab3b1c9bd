"""--exclude and --relabel, applied to the training set before anything is decoded."""

from __future__ import annotations

from pathlib import Path

import pytest

from comp.errors import CompError
from comp.prepare.corrections import apply_corrections
from comp.prepare.files import TrainSet


def _found() -> TrainSet:
    return TrainSet(paths=[f"/x/{k}.png" for k in "abcd"], ids=list("abcd"),
                    label_text=["0", "1", "0", "1"], skipped=[], source="train.csv")


def test_relabel_then_exclude_counts_what_changed(tmp_path: Path) -> None:
    (tmp_path / "fix.csv").write_text("id,label\na,1\nb,1\nd,0\n")  # b already has 1
    (tmp_path / "drop.csv").write_text("id,score\nc,0.9\n")  # other columns are ignored
    out, counts = apply_corrections(_found(), exclude=tmp_path / "drop.csv",
                                    relabel=tmp_path / "fix.csv")
    assert counts == {"excluded": 1, "relabelled": 2}
    assert out.ids == ["a", "b", "d"] and out.label_text == ["1", "1", "0"]
    assert out.given_text == ["0", "1", "1"]  # the labels as the organisers gave them
    assert out.paths == ["/x/a.png", "/x/b.png", "/x/d.png"]


def test_nothing_to_correct_is_the_same_set() -> None:
    found = _found()
    assert apply_corrections(found, exclude=None, relabel=None) == (
        found, {"excluded": 0, "relabelled": 0})


@pytest.mark.parametrize(("exclude", "relabel", "words"), [
    ("id\nzz\n", None, "1 id(s) of --exclude are not training images ('zz')"),
    (None, "id,label\na,7\n", "label '7' is not one of the classes (0, 1)"),
    ("id\na\nb\nc\nd\n", None, "excludes every training image"),
    (None, "id,label\na,1\nc,1\n", "relabel.csv: after them every training label is '1': a "
     "classifier needs at least two classes"),
    ("id\nb\nd\n", None, "exclude.csv: after them every training label is '0'"),
])
def test_bad_corrections_are_one_line(exclude: str | None, relabel: str | None, words: str,
                                      tmp_path: Path) -> None:
    paths = {}
    for name, text in (("exclude", exclude), ("relabel", relabel)):
        if text is not None:
            paths[name] = tmp_path / f"{name}.csv"
            paths[name].write_text(text)
    with pytest.raises(CompError) as refused:
        apply_corrections(_found(), exclude=paths.get("exclude"), relabel=paths.get("relabel"))
    assert words in str(refused.value)
