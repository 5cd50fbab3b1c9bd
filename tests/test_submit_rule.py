"""The saved rule: applied as chosen (CNN, stacker per fold model, level-2 stack), kept
across processes, refused when edited out of range."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from comp.submit import stacker
from comp.submit.predict import Predictions, members_of
from comp.submit.rule import Decision, Scored, describe


def _rule(**changes) -> Decision:
    base = Decision(classes=["0", "1"], fingerprint="f", cross_fitted=True, folds=5,
                    images=400, considered=["a", "b"], runs=["a"], candidate="a",
                    source="cnn", tta=False, rule="threshold", threshold=0.3, offsets=None,
                    oof_balanced_accuracy=0.8, oof_accuracy=0.82, temperature=1.5, members=3,
                    candidates=[Scored("a", 0.81, "threshold"), Scored("b", 0.79, "0.5")],
                    picked=["a (threshold)"] * 5)
    return replace(base, **changes)


def _members(rng: np.random.Generator, n: int = 20) -> Predictions:
    parts = []
    for _ in range(3):
        p1 = rng.uniform(size=n)
        parts.append(Predictions(np.stack([1 - p1, p1], axis=1), rng.normal(size=(n, 4))))
    return members_of(parts)


def test_saved_rule_round_trips_and_edited_values_are_refused(tmp_path: Path) -> None:
    rule = _rule()
    rule.save(tmp_path)
    assert Decision.load(tmp_path, fingerprint="f") == rule
    assert Decision.load(tmp_path, fingerprint="other") is None
    data = json.loads((tmp_path / "decision.json").read_text())
    data["threshold"] = 2.5
    (tmp_path / "decision.json").write_text(json.dumps(data))
    assert Decision.load(tmp_path, fingerprint="f") is None
    data["threshold"], data["temperature"] = 0.3, 0.0  # a calibration no fit gives
    (tmp_path / "decision.json").write_text(json.dumps(data))
    assert Decision.load(tmp_path, fingerprint="f") is None
    (tmp_path / "decision.json").write_text("{not json")
    assert Decision.load(tmp_path, fingerprint="f") is None


def test_cnn_rule_is_the_mean_of_the_fold_models_at_the_threshold(tmp_path: Path) -> None:
    pred = _members(np.random.default_rng(0))
    prob, labels = _rule().apply({"a": pred}, tmp_path)
    np.testing.assert_allclose(prob, pred.prob)
    np.testing.assert_array_equal(labels, (pred.prob[:, 1] >= 0.3).astype(int))


def test_stack_rule_averages_level2_over_fold_members(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 200)
    x = rng.normal(size=(200, 2)) + y[:, None]
    level2 = stacker.fit_level2(x, y)
    level2.save(tmp_path)
    a, b = _members(rng), _members(rng)
    rule = _rule(source="stack", runs=["a", "b"], rule="0.5", threshold=None)
    prob, labels = rule.apply({"a": a, "b": b}, tmp_path)
    expected = np.mean([level2.prob(stacker.level2_features([a.parts()[m].prob,
                                                             b.parts()[m].prob]))
                        for m in range(3)], axis=0)
    np.testing.assert_allclose(prob, expected)
    np.testing.assert_array_equal(labels, (expected[:, 1] >= 0.5).astype(int))


def test_headline_comes_first_and_says_what_it_estimates() -> None:
    lines = describe(_rule())
    assert lines[0].startswith("out-of-fold balanced accuracy 0.8000 on 400 images")
    assert "without the fold it scores" in lines[0]
    assert any("estimates one fold model" in line and "averages 3 fold models" in line
               for line in lines)
    assert any("selected on itself" in line and "a 0.8100 (threshold)" in line
               for line in lines)
