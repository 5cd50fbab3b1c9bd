"""The nested choice of the rule: candidates and decisions chosen without the fold they score,
so the headline is not the best of many numbers chosen on themselves."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score

from comp.submit import select, stacker
from comp.submit.decision import best_threshold, oof_decisions
from comp.submit.select import Candidate, Rule, Source


def _two(p1: np.ndarray) -> np.ndarray:
    return np.stack([1 - p1, p1], axis=1)


def test_paired_spread_by_hand() -> None:
    y = np.array([0, 0, 1, 1])
    same = np.array([0, 1, 1, 0])
    assert select.paired_spread(y, same, same) == 0.0
    # a differs from b on every image of class 1: its recall there is 1 against 0
    a, b = np.array([0, 0, 1, 1]), np.array([0, 0, 0, 0])
    rng_free = select.paired_spread(y, a, b, boots=200, seed=0)
    assert 0.0 < rng_free < 0.5


def test_the_tuned_threshold_is_kept_only_when_it_wins_by_more_than_its_spread() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random(2000) < 0.5).astype(int)
    calibrated = _two(np.clip(0.5 + 0.3 * (2 * y - 1) + rng.normal(0, 0.25, 2000), 0, 1))
    fold = np.arange(2000) % 5
    rule, score = select.pick_rule(calibrated, y, fold, seed=0)
    assert rule == Rule.HALF  # 0.5 is already right: a tuned one cannot win by its spread
    assert score == pytest.approx(balanced_accuracy_score(y, calibrated[:, 1] >= 0.5))
    skewed = _two(np.clip(calibrated[:, 1] - 0.3, 0, 1))  # far too few positives at 0.5
    rule, score = select.pick_rule(skewed, y, fold, seed=0)
    assert rule == Rule.THRESHOLD
    assert score == pytest.approx(balanced_accuracy_score(
        y, oof_decisions(skewed, y, fold, num_classes=2)))


def test_max_over_candidates_is_optimistic_and_the_nested_score_is_not() -> None:
    """30 candidates of pure noise: the best one's own out-of-fold score is well above
    chance, the nested score of choosing among them is not."""
    nested, best_own = [], []
    for seed in range(3):
        rng = np.random.default_rng(seed)
        y = np.arange(300) % 2
        fold = rng.permutation(np.arange(300) % 5)
        cands = [Candidate(f"noise {i}", Source.CNN, (f"r{i}",), False,
                           _two(rng.uniform(size=300))) for i in range(30)]
        chosen = select.select(cands, y, fold, seed=0)
        nested.append(chosen.balanced_accuracy(y))
        best_own.append(max(score for _, score in chosen.choice.scores))
    assert np.mean(best_own) > 0.56
    assert abs(np.mean(nested) - 0.5) < 0.04
    assert np.mean(best_own) - np.mean(nested) > 0.04


def test_fold_k_is_decided_without_its_labels() -> None:
    """Relabelling fold k's images changes nothing decided on fold k, even with a level-2
    candidate (refitted without fold k) among the candidates."""
    rng = np.random.default_rng(4)
    n = 400
    y = (rng.random(n) < 0.35).astype(int)
    fold = np.arange(n) % 5
    probs = [_two(np.clip(0.25 * y + rng.normal(0.35, 0.2, n), 0, 1)) for _ in range(2)]

    def candidates(labels: np.ndarray) -> list[Candidate]:
        x = stacker.level2_features(probs)
        fit = lambda exclude=None: stacker.cross_val(  # noqa: E731
            stacker.level2_fit_predict, x, labels, fold, num_classes=2, exclude=exclude)
        return [Candidate("a", Source.CNN, ("a",), False, probs[0]),
                Candidate("b", Source.CNN, ("b",), False, probs[1]),
                Candidate("stack", Source.STACK, ("a", "b"), False, fit(),
                          nested=lambda j: fit(exclude=j))]

    base = select.select(candidates(y), y, fold, seed=0)
    for k in range(5):
        other = y.copy()
        other[fold == k] = rng.integers(0, 2, (fold == k).sum())
        # fold k's probabilities must not move either: level 2 predicts fold k from the
        # other folds only
        again = select.select(candidates(other), other, fold, seed=0)
        np.testing.assert_array_equal(again.decided[fold == k], base.decided[fold == k])


def test_deployed_rule_is_the_procedure_on_every_fold() -> None:
    rng = np.random.default_rng(2)
    y = (rng.random(500) < 0.3).astype(int)
    fold = np.arange(500) % 5
    good = _two(np.clip(0.4 * y + rng.normal(0.2, 0.15, 500), 0, 1))
    bad = _two(rng.uniform(size=500))
    chosen = select.select([Candidate("bad", Source.CNN, ("b",), False, bad),
                            Candidate("good", Source.CNN, ("g",), False, good)], y, fold,
                           seed=0)
    assert chosen.choice.index == 1 and chosen.choice.rule == Rule.THRESHOLD
    assert chosen.parameter == pytest.approx(best_threshold(y, good[:, 1])[0])
    assert all(p.startswith("good") for p in chosen.picked)
    np.testing.assert_array_equal(chosen.prob, good)


def test_each_row_keeps_the_probabilities_of_the_candidate_that_decided_it() -> None:
    """When the outer folds pick different candidates, a row's saved probabilities are its
    own fold's pick's (what `comp inspect` draws beside the decision), never another's."""
    rng = np.random.default_rng(3)
    n = 600
    y = np.arange(n) % 2
    fold = np.arange(n) % 3
    signal = rng.normal(0, 1, n) + 1.2 * (2 * y - 1)
    # "a" is sharp on folds 0 and 1 and noise on fold 2; "b" the other way round: without
    # fold 2 "a" wins, without fold 0 or 1 "b" does
    a = 1 / (1 + np.exp(-np.where(fold == 2, rng.normal(0, 1, n), signal)))
    b = 1 / (1 + np.exp(-np.where(fold == 2, signal, 0.3 * signal)))
    chosen = select.select([Candidate("a", Source.CNN, ("a",), False, _two(a)),
                            Candidate("b", Source.CNN, ("b",), False, _two(b))], y, fold,
                           seed=0)
    names = [p.split(" (")[0] for p in chosen.picked]
    assert len(set(names)) == 2  # the folds disagree
    for k, name in enumerate(names):
        expected = _two(a if name == "a" else b)[fold == k]
        np.testing.assert_array_equal(chosen.prob[fold == k], expected)
        # and the decisions are that candidate's
        assert ((expected[:, 1] >= 0.5) == chosen.decided[fold == k]).mean() > 0.9


def test_a_complex_candidate_must_beat_the_plain_one_by_its_spread() -> None:
    """A flip or a stacker is chosen over a run's plain CNN only when it wins by more than
    the paired bootstrap spread of the difference; a clear win is still chosen."""
    rng = np.random.default_rng(5)
    n = 1000
    y = np.arange(n) % 2
    fold = np.arange(n) % 5
    plain = _two(np.clip(0.5 + 0.2 * (2 * y - 1) + rng.normal(0, 0.25, n), 0, 1))
    wiggle = plain.copy()  # the same model with 12 decisions flipped, 7 of them mended
    wrong = (plain[:, 1] >= 0.5) != y
    idx = np.concatenate([np.flatnonzero(wrong)[:7], np.flatnonzero(~wrong)[:5]])
    wiggle[idx] = 1 - wiggle[idx]
    cands = [Candidate("r", Source.CNN, ("r",), False, plain),
             Candidate("r +flip", Source.CNN, ("r",), True, wiggle)]
    choice = select.choose([c.full for c in cands], y, fold, seed=0,
                           plain=[True, False])
    assert choice.scores[1][1] > choice.scores[0][1]  # it wins on itself ...
    assert choice.index == 0  # ... but not by its spread: the plain CNN is kept
    assert select.choose([c.full for c in cands], y, fold, seed=0).index == 1  # ungated
    clear = _two(np.clip(0.5 + 0.45 * (2 * y - 1) + rng.normal(0, 0.1, n), 0, 1))
    strong = Candidate("r LightGBM", Source.STACKER, ("r",), False, clear)
    assert select.choose([plain, clear], y, fold, seed=0, plain=[True, False]).index == 1
    assert select.select([cands[0], strong], y, fold, seed=0).choice.index == 1


def test_a_stacker_with_the_flip_must_beat_the_flip_alone_by_its_spread() -> None:
    """The flip clearly beats the plain CNN; the stacker + flip beats the flip on itself,
    but only by a few decisions: it stands on the flip, so the flip is chosen (before, it
    only had to beat the plain CNN). Each candidate's simpler ones, by hand."""
    rng = np.random.default_rng(5)
    n = 1000
    y = np.arange(n) % 2
    fold = np.arange(n) % 5
    plain = _two(np.clip(0.5 + 0.2 * (2 * y - 1) + rng.normal(0, 0.25, n), 0, 1))
    flip = _two(np.clip(0.5 + 0.3 * (2 * y - 1) + rng.normal(0, 0.2, n), 0, 1))
    stack = flip.copy()  # the flip with 12 decisions flipped, 7 of them mended
    wrong = (flip[:, 1] >= 0.5) != y
    idx = np.concatenate([np.flatnonzero(wrong)[:7], np.flatnonzero(~wrong)[:5]])
    stack[idx] = 1 - stack[idx]
    cands = [Candidate("r", Source.CNN, ("r",), False, plain),
             Candidate("r +flip", Source.CNN, ("r",), True, flip),
             Candidate("r LightGBM +flip", Source.STACKER, ("r",), True, stack)]
    simpler = select.simpler_of(cands)
    assert simpler == [[], [0], [1]]
    probs, plain_mask = [c.full for c in cands], [True, False, False]
    choice = select.choose(probs, y, fold, seed=0, plain=plain_mask, simpler=simpler)
    assert choice.scores[2][1] > choice.scores[1][1] > choice.scores[0][1]
    assert choice.index == 1
    assert select.choose(probs, y, fold, seed=0, plain=plain_mask).index == 2  # the old rule
    both = [Candidate("a", Source.CNN, ("a",), False, plain),
            Candidate("b", Source.CNN, ("b",), False, plain),
            Candidate("a +flip", Source.CNN, ("a",), True, plain),
            Candidate("stack of 2 runs +flip", Source.STACK, ("a", "b"), True, plain),
            Candidate("stack of 2 runs", Source.STACK, ("a", "b"), False, plain)]
    assert select.simpler_of(both) == [[], [], [0], [4, 2], [0, 1]]
