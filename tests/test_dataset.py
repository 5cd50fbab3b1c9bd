"""Labels, groups, conflicts, splits and folds, with answers worked out by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from comp import dataset
from comp.errors import CompError


def test_read_labels_keeps_leading_zeros_and_strips_extensions(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("userid,gender\n000123.jpg,1\n0042,0\n")
    frame = dataset.read_labels(path, "userid", "gender")
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
        dataset.read_labels(path)


def test_encode_labels_binary_and_names() -> None:
    codes, classes = dataset.encode_labels(pd.Series(["1", "0", "1"]), None, "x")
    assert codes.tolist() == [1, 0, 1] and classes == ["0", "1"]
    codes, classes = dataset.encode_labels(pd.Series(["law", "art", "math", "art"]), None, "x")
    assert classes == ["art", "law", "math"] and codes.tolist() == [1, 0, 2, 0]


@pytest.mark.parametrize("values, classes", [(["0", "1", "2"], None), (["0", ""], None),
                                             (["cat", "dog"], ["cat", "cow"])])
def test_encode_labels_rejects_unknown(values: list[str], classes: list[str] | None) -> None:
    with pytest.raises(CompError, match="is not one of"):
        dataset.encode_labels(pd.Series(values, index=[f"id{i}" for i in range(len(values))]),
                              classes, "labels.csv")


def test_group_ids_by_hand() -> None:
    pairs = np.array([[0, 3], [3, 5], [1, 2]])
    assert dataset.group_ids(7, pairs).tolist() == [0, 1, 1, 0, 4, 0, 6]
    assert dataset.group_ids(3, np.zeros((0, 2), int)).tolist() == [0, 1, 2]


def test_resolve_groups_drop_and_majority() -> None:
    groups = np.array([0, 0, 2, 2, 2, 5, 6, 6])
    labels = np.array([1, 1, 0, 1, 1, 0, 0, 1])
    kept, final, conflict = dataset.resolve_groups(groups, labels, "drop", "keep-one")
    assert kept.tolist() == [True, False, False, False, False, True, False, False]
    assert conflict.tolist() == [False, False, True, True, True, False, True, True]
    kept, final, _ = dataset.resolve_groups(groups, labels, "majority", "keep-all")
    # group 2 -> majority label 1 for all three; group 6 is a 1-1 tie -> dropped
    assert kept.tolist() == [True, True, True, True, True, True, False, False]
    assert final[2:5].tolist() == [1, 1, 1]


def test_pixel_distance_of_no_pairs() -> None:
    empty = np.zeros((0, 6, 6, 3), np.uint8)
    assert dataset.pixel_distance(empty, empty).shape == (0,)


def test_pixel_distance_ignores_brightness_offset() -> None:
    rng = np.random.default_rng(0)
    a = rng.integers(10, 240, size=(1, 8, 8, 3), dtype=np.uint8)
    assert dataset.pixel_distance(a, a + 3)[0] == pytest.approx(0.0, abs=1e-5)
    b = a.copy()
    b[0, :2, :2, 0] += 8  # one 2x2 block, one channel: |8 - 8/48| on 1 of 48 block values
    assert dataset.pixel_distance(a, b)[0] == pytest.approx((8 - 8 / 48) / 48 + 47 * (8 / 48) / 48,
                                                            rel=1e-4)


def _toy(n: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.3).astype(int)
    groups = np.arange(n)
    groups[1::7] = groups[0::7][: len(groups[1::7])]  # some pairs
    labels[1::7] = labels[0::7][: len(labels[1::7])]
    return groups, labels


def test_split_is_reproducible_stratified_and_grouped() -> None:
    groups, labels = _toy()
    split = dataset.split_frame(groups, labels, (0.595, 0.105, 0.3), seed=7)
    assert (split == dataset.split_frame(groups, labels, (0.595, 0.105, 0.3), seed=7)).all()
    assert not (split == dataset.split_frame(groups, labels, (0.595, 0.105, 0.3), seed=8)).all()
    frame = pd.DataFrame({"g": groups, "s": split, "y": labels})
    assert (frame.groupby("g")["s"].nunique() == 1).all()
    for name, frac in (("train", 0.595), ("val", 0.105), ("holdout", 0.3)):
        part = frame[frame["s"] == name]
        assert len(part) / len(frame) == pytest.approx(frac, abs=0.01)
        assert part["y"].mean() == pytest.approx(labels.mean(), abs=0.02)


def test_split_is_the_same_on_every_machine() -> None:
    """PCG64 is platform independent: pin the first assignments."""
    groups, labels = np.arange(12), np.array([0, 1] * 6)
    split = dataset.split_frame(groups, labels, (0.5, 0.25, 0.25), seed=0)
    # per stratum of 6: group midpoints at (k + 0.5) / 6 cut at 0.5 and 0.75 -> 3 / 1 / 2
    assert split.tolist() == ["holdout", "holdout", "holdout", "train", "train", "val", "train",
                              "holdout", "val", "train", "train", "train"]


def test_folds_are_balanced_and_grouped() -> None:
    groups, labels = _toy(1000, 3)
    folds = dataset.assign_folds(groups, labels, 5, seed=1)
    assert set(folds) == set(range(5))
    frame = pd.DataFrame({"g": groups, "f": folds})
    assert (frame.groupby("g")["f"].nunique() == 1).all()
    assert np.bincount(folds).min() >= 180


@pytest.mark.parametrize("shape", [(56, 56, 3), (50, 50, 1), (37, 23, 3)])
def test_coarse_bound_never_exceeds_the_pixel_distance(shape: tuple[int, int, int]) -> None:
    rng = np.random.default_rng(sum(shape))
    a = rng.integers(0, 256, size=(200, *shape), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-40, 40, size=a.shape) * (rng.random((200, 1, 1, 1))
                                                                       < 0.5), 0, 255)
    b = b.astype(np.uint8)
    b[100:] = rng.integers(0, 256, size=(100, *shape), dtype=np.uint8)
    full = dataset.pixel_distance(a, b)
    (sa, share), (sb, _) = dataset._coarse(a), dataset._coarse(b)
    bound = dataset.coarse_bound(sa, sb, share)
    assert (bound <= full + 1e-3).all()
    pairs = np.stack([np.arange(200), np.arange(200)], axis=1)
    merged = np.concatenate([a, b])
    pairs_ab = np.stack([np.arange(200), 200 + np.arange(200)], axis=1)
    for threshold in (0.0, 5.0, np.inf):
        got = dataset.confirm_pairs(pairs, a, b, threshold=threshold)
        assert ((got <= threshold) == (full <= threshold)).all()
        np.testing.assert_allclose(got[full <= threshold], full[full <= threshold], rtol=1e-5)
        same = dataset.confirm_pairs(pairs_ab, merged, threshold=threshold)
        np.testing.assert_allclose(same, got, rtol=1e-5)
