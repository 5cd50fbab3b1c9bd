"""Leaks as evidence: the temperature, the rule's margins, the weighed decision, and the
out-of-fold estimate of each policy, by hand and on planted leaks."""

from __future__ import annotations

import numpy as np
import pytest

from comp.config import Leaks
from comp.metrics import balanced_accuracy
from comp.submit import evidence
from comp.submit.leaks import choose_policy
from comp.submit.select import Rule, apply_rule, rule_margins


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("k", [2, 4])
def test_the_temperature_undoes_a_known_overconfidence(k: int) -> None:
    """Labels drawn from softmax(z); the model says softmax(3 z): T comes out near 3."""
    rng = np.random.default_rng(0)
    z = rng.normal(0, 1.5, (20000, k))
    y = np.array([rng.choice(k, p=p) for p in _softmax(z)])
    assert abs(evidence.fit_temperature(_softmax(3 * z), y) - 3) < 0.25
    assert abs(evidence.fit_temperature(_softmax(z), y) - 1) < 0.1


@pytest.mark.parametrize(("rule", "parameter", "k"), [
    (Rule.THRESHOLD, 0.3127, 2), (Rule.HALF, None, 2), (Rule.ARGMAX, None, 3),
    (Rule.OFFSETS, [0.2, -0.4, 0.1], 3)])
def test_margins_decide_what_the_rule_decides(rule: Rule, parameter: object, k: int) -> None:
    prob = _softmax(np.random.default_rng(1).normal(0, 2, (500, k)))
    margins = rule_margins(prob, rule, parameter)  # type: ignore[arg-type]
    assert (evidence.decide(margins) == apply_rule(prob, rule, parameter)).all()  # type: ignore[arg-type]


def test_evidence_by_hand() -> None:
    """p = 0.6 against a threshold 0.5: margin logit(0.6) = 0.405. A copy's 0 at a = 0.9
    weighs log 9 = 2.197 (x T): it wins at T = 1, loses at T = 0.1 (0.220 < 0.405)."""
    margins = rule_margins(np.array([[0.4, 0.6]] * 3), Rule.THRESHOLD, 0.5)
    inherited = np.array([0, 0, -1])
    assert evidence.with_evidence(margins, 1.0, inherited, agreement=0.9).tolist() == [0, 0, 1]
    assert evidence.with_evidence(margins, 0.1, inherited, agreement=0.9).tolist() == [1, 1, 1]
    assert abs(evidence.evidence_weight(0.9, 2) - np.log(9)) < 1e-12
    assert abs(evidence.evidence_weight(0.9, 4) - np.log(27)) < 1e-12


def test_leak_scores_by_hand() -> None:
    """Two images, T = 1, a = 0.9 (weight log 9 = 2.197). Image 0 (class 0, margin +1:
    wrongly 1): a right copy flips it (+1 - 2.197 < 0), a wrong one keeps it wrong: 0.9.
    Image 1 (class 1, margin +3): right either way (3 - 2.197 > 0): 1. Balanced: 0.95."""
    margins = np.array([[0.0, 1.0], [0.0, 3.0]])
    scores = evidence.leak_scores(np.array([0, 1]), np.array([1, 1]), margins, np.ones(2),
                                  agreement=0.9)
    assert scores.never == 0.5 and scores.always == 0.9
    assert abs(scores.evidence - 0.95) < 1e-12


@pytest.mark.parametrize(("copies_right", "model_skill"), [
    (0.98, 0.0), (0.98, 1.0), (0.6, 3.0), (0.9, 2.0)])
def test_weighed_leaks_never_lose_to_the_better_of_model_or_copies(copies_right: float,
                                                                    model_skill: float) -> None:
    """Planted leaks: 4,000 images whose true class the model sees through noise
    (`model_skill`: 0 is chance), and copies whose label is right at `copies_right` (the
    wrong ones: conflicting copies). The evidence, estimated from out-of-fold stand-ins of the
    same kind, scores at least the better of the model alone and the copies alone."""
    rng = np.random.default_rng(7)
    n = 4000
    y = rng.integers(0, 2, n)
    logit = model_skill * (2 * y - 1) + rng.normal(0, 1.5, n)
    prob = np.stack([1 - 1 / (1 + np.exp(-logit)), 1 / (1 + np.exp(-logit))], axis=1)
    copy = np.where(rng.random(n) < copies_right, y, 1 - y)
    half = np.arange(n) < n // 2  # the scored stand-ins / the leaked target images
    t = evidence.fit_temperature(prob[half], y[half])
    margins = rule_margins(prob, Rule.HALF, None)
    scores = evidence.leak_scores(y[half], apply_rule(prob[half], Rule.HALF, None),
                                  margins[half], np.full(half.sum(), t),
                                  agreement=copies_right)
    never = balanced_accuracy(y[~half], apply_rule(prob[~half], Rule.HALF, None))
    always = balanced_accuracy(y[~half], copy[~half])
    weighed = balanced_accuracy(y[~half], evidence.with_evidence(
        margins[~half], t, copy[~half], agreement=copies_right))
    assert weighed >= max(never, always) - 0.01
    assert abs(scores.evidence - weighed) < 0.03 and abs(scores.never - never) < 0.03
    applied, _ = choose_policy(Leaks.AUTO, scores)  # auto: never below the better of the two
    auto = {Leaks.NEVER: never, Leaks.ALWAYS: always, Leaks.EVIDENCE: weighed}[applied]
    assert auto >= max(never, always) - 0.01


def test_one_conflicting_pair_no_longer_throws_the_copies_away() -> None:
    """A 300-image challenge: the model is at chance, 59 of 60 target images copy training
    images, and the only labelled duplicates are one conflicting pair (0 of 2 agree). The
    prior keeps the copies' estimate at 0.75; auto weighs them in and the leaks take their
    copies' (right) labels, where the former gate kept the model's coin flips."""
    from comp.submit.leaks import CopyAgreement

    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 240)
    prob = np.stack([p := rng.uniform(0.3, 0.7, 240), 1 - p], axis=1)
    fold = np.arange(240) % 5
    temperatures = np.array([evidence.fit_temperature(prob[fold != k], y[fold != k])
                             for k in fold])
    a = CopyAgreement(right=0, measured=2, max_distance=0).estimate
    assert a == 0.75
    margins = rule_margins(prob, Rule.HALF, None)
    scores = evidence.leak_scores(y, apply_rule(prob, Rule.HALF, None), margins, temperatures,
                                  agreement=a)
    assert abs(scores.never - 0.5) < 0.08 and scores.always == 0.75
    assert scores.evidence >= 0.74
    assert choose_policy(Leaks.AUTO, scores)[0] == Leaks.EVIDENCE
    target_y = rng.integers(0, 2, 60)
    target_prob = np.stack([q := rng.uniform(0.3, 0.7, 60), 1 - q], axis=1)
    inherited = np.r_[target_y[:59], -1]  # 59 copies of training images, one new image
    t = evidence.fit_temperature(prob, y)
    weighed = evidence.with_evidence(rule_margins(target_prob, Rule.HALF, None), t, inherited,
                                     agreement=a)
    assert (weighed[:59] == target_y[:59]).all()
