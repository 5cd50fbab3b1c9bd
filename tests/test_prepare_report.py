"""prepare's summary: typed, stored in meta.json, and short for a person."""

from __future__ import annotations

from comp.prepare.report import PrepareSummary


def _summary(**extra: object) -> PrepareSummary:
    return PrepareSummary(
        images_read=1200, skipped=0, size=[56, 56], channels=3, store_mb=10.8,
        duplicate_pairs=5, duplicate_pairs_exact_hash=3, duplicate_groups=4,
        images_in_duplicate_groups=9, conflict_groups=1, dropped_conflicts=2,
        dropped_duplicates=4, kept=1194, class_balance={"train": {"0": 500, "1": 210},
                                                        "val": {"0": 90, "1": 35},
                                                        "holdout": {"0": 250, "1": 109}},
        seconds=1.5, classes=["0", "1"], folds=5, **extra)  # type: ignore[arg-type]


def test_the_summary_round_trips_through_json() -> None:
    s = _summary(val_images=50, val_in_train=50, val_in_train_consistent=49)
    assert PrepareSummary.from_json(s.to_json()) == s
    assert PrepareSummary.from_json({**s.to_json(), "unknown": 1}) == s  # a newer key


def test_the_lines_a_person_reads() -> None:
    lines = _summary(val_images=50, val_in_train=50, val_in_train_consistent=49,
                     no_face=3, no_face_action="skip").lines()
    assert lines[0] == ("read 1,200 training images (56x56 RGB, store 10.8 MB) in 1.5 s; "
                        "classes: 0, 1")
    assert lines[1] == ("duplicates: 4 groups of 9 images (4 dropped, one kept per group); "
                        "conflicting labels: 1 groups (2 images dropped)")
    assert lines[2] == ("kept 1,194: train 710 (0: 500, 1: 210); val 125 (0: 90, 1: 35); "
                        "holdout 359 (0: 250, 1: 109), 5 folds over all of them")
    assert lines[3] == ("val: 50 images, 50 copy labelled training images (49 with one "
                        "consistent label)")
    assert lines[4] == "faces: none found in 3 training images (dropped)"
    assert len(lines) == 5


def test_a_phase2_ingest_replaces_the_test_counts() -> None:
    s = _summary(test_images=60, test_in_train=6).with_test(
        images=40, in_train=4, consistent=3, no_face=None, seconds=0.4)
    assert (s.test_images, s.test_in_train, s.test_in_train_consistent, s.seconds) == (
        40, 4, 3, 0.4)
    assert s.target_lines(("test",)) == [
        "test: 40 images, 4 copy labelled training images (3 with one consistent label)"]
