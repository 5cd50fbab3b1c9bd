"""Labels CSV, class codes and conflict resolution, with answers worked out by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from comp.config import Conflicts, Duplicates
from comp.errors import CompError
from comp.prepare.labels import encode_labels, read_labels, resolve_groups


def test_read_labels_keeps_leading_zeros_and_strips_extensions(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("userid,gender\n000123.jpg,1\n0042,0\n")
    frame = read_labels(path, id_column="userid", label_column="gender")
    assert frame["id"].tolist() == ["000123", "0042"]
    assert frame["label_text"].tolist() == ["1", "0"]


@pytest.mark.parametrize("text, fragment", [
    ("id,label\n1,0\n1,1\n", "appears more than once (rows 2, 3)"),
    ("id,label\n,0\n", "row 2 has an empty id"),
    ("name,label\n1,0\n", "no column 'id'"),
])
def test_read_labels_errors_name_the_row(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "labels.csv"
    path.write_text(text)
    with pytest.raises(CompError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        read_labels(path)


def test_encode_labels_binary_and_names() -> None:
    codes, classes = encode_labels(pd.Series(["1", "0", "1"]), classes=None, source="x")
    assert codes.tolist() == [1, 0, 1] and classes == ["0", "1"]
    codes, classes = encode_labels(pd.Series(["law", "art", "math", "art"]), classes=None,
                                   source="x")
    assert classes == ["art", "law", "math"] and codes.tolist() == [1, 0, 2, 0]


@pytest.mark.parametrize("values, classes", [(["0", "1", "2"], None),
                                             (["cat", "dog"], ["cat", "cow"])])
def test_encode_labels_rejects_unknown(values: list[str], classes: list[str] | None) -> None:
    with pytest.raises(CompError, match="is not one of"):
        encode_labels(pd.Series(values, index=[f"id{i}" for i in range(len(values))]),
                      classes=classes, source="labels.csv")


def test_resolve_groups_drop_and_majority() -> None:
    groups = np.array([0, 0, 2, 2, 2, 5, 6, 6])
    labels = np.array([1, 1, 0, 1, 1, 0, 0, 1])
    kept, final, conflict = resolve_groups(groups, labels, conflicts=Conflicts.DROP,
                                           duplicates=Duplicates.KEEP_ONE)
    assert kept.tolist() == [True, False, False, False, False, True, False, False]
    assert conflict.tolist() == [False, False, True, True, True, False, True, True]
    kept, final, _ = resolve_groups(groups, labels, conflicts=Conflicts.MAJORITY,
                                    duplicates=Duplicates.KEEP_ALL)
    # group 2 -> majority label 1 for all three; group 6 is a 1-1 tie -> dropped
    assert kept.tolist() == [True, True, True, True, True, True, False, False]
    assert final[2:5].tolist() == [1, 1, 1]


@pytest.mark.parametrize("bad", ["", "NaN", "nan", "NA", "null", " "])
def test_missing_labels_are_refused_with_the_row(bad: str) -> None:
    texts = pd.Series(["1", "0", bad, "1"], index=["a", "b", "c", "d"])
    with pytest.raises(CompError, match=r"labels.csv: row 4 \(id 'c'\) has no label"):
        encode_labels(texts, classes=None, source="labels.csv")


def test_numeric_spellings_of_one_class_are_one_class() -> None:
    texts = pd.Series(["1", "1.0", "0", "0.0", "+1", "1e0"])
    codes, classes = encode_labels(texts, classes=None, source="x")
    assert classes == ["0", "1"] and codes.tolist() == [1, 1, 0, 0, 1, 1]
    codes, classes = encode_labels(pd.Series(["2.0", "0", "1"]), classes=["0", "1", "2"],
                                   source="x")
    assert codes.tolist() == [2, 0, 1]
    with pytest.raises(CompError, match="has label '0.5'"):
        encode_labels(pd.Series(["0.5", "1", "0"]), classes=None, source="x")


@pytest.mark.parametrize("values", [["1", "1", "1.0"], ["cat", "cat"]])
def test_a_single_class_is_refused(values: list[str]) -> None:
    with pytest.raises(CompError, match="a classifier needs at least two classes"):
        encode_labels(pd.Series(values), classes=None, source="x")


def _series(values: list[str]) -> pd.Series:
    return pd.Series(values, index=[f"id{k}" for k in range(len(values))])


def test_whole_number_labels_are_k_classes_sorted_numerically() -> None:
    values = [str(k % 12) for k in range(120)]  # 0..11: "10" and "11" after "9"
    codes, classes = encode_labels(_series(values), classes=None, source="l.csv")
    assert classes == [str(k) for k in range(12)]
    assert codes.tolist() == [k % 12 for k in range(120)]
    codes, classes = encode_labels(_series(["1", "2"] * 5), classes=None, source="l.csv")
    assert classes == ["1", "2"] and codes.tolist() == [0, 1] * 5


@pytest.mark.parametrize(("values", "rare"), [
    (["0", "1"] * 20 + ["7"], "'7'"),  # one image of 41: a typo, not a class
    (["0", "1", "2"] * 1000 + ["3", "3"], "'3'"),  # 2 of 3,002 images
    (["0", "1"] * 2000 + ["2"] * 3, "'2'"),  # 3 of 4,003: under 0.1 %
])
def test_a_whole_number_rare_enough_to_be_a_typo_is_refused(values: list[str],
                                                           rare: str) -> None:
    with pytest.raises(CompError, match=f"has label {rare}, which is not one of .*a typo"):
        encode_labels(_series(values), classes=None, source="l.csv")
    codes, classes = encode_labels(_series(values), classes=sorted(set(values)),
                                   source="l.csv")  # named by --classes: a class
    assert classes == sorted(set(values))


def test_a_five_class_integer_challenge_prepares_with_no_flags(tmp_path: Path) -> None:
    from PIL import Image

    from comp.config import PrepareConfig
    from comp.prepare import prepare
    from comp.workspace import Workspace

    root = tmp_path / "c"
    (root / "train").mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = []
    for k in range(60):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), np.uint8)).save(
            root / "train" / f"{k}.png")
        rows.append(f"{k},{k % 5}")
    (root / "train.csv").write_text("id,label\n" + "\n".join(rows) + "\n")
    result = prepare(PrepareConfig(challenge=root, workspace=tmp_path / "ws", workers=1))
    assert result.summary.classes == ["0", "1", "2", "3", "4"]
    assert "classes: 0, 1, 2, 3, 4" in result.lines()[0]
    index = Workspace(tmp_path / "ws").load_index()
    assert index.set_index("id")["label"].loc[["0", "7", "14"]].tolist() == [0, 2, 4]
