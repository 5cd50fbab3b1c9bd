"""A leaked image's inherited label as evidence beside the rule's probability.

A target image whose labelled training copies agree on one original label carries that label
as evidence: it is right with probability `a` (the copies' agreement, `comp.submit.leaks`).
The rule's out-of-fold probabilities are calibrated by a temperature (and class biases,
fitted by log-loss), so that evidence and model speak in one unit: with `log q = log p / T +
b`, multiplying q's odds by the evidence's likelihood ratio is, in the rule's own margins
(log-probability plus the rule's offsets, so that the rule is their arg-max), adding
`T * log(a (K-1) / (1-a))` to the inherited class. With no evidence the rule is unchanged;
with `a` near 1 the copy's label wins; with a model no better than chance (T large) too.

`leak_scores` estimates, out-of-fold, what each policy is worth on leaked images like the
scored ones: every scored image stands in for a leak whose copy's label is right with
probability `a` (else one of the other classes), its margins and temperature those of the
nested rule (chosen, fitted and calibrated without its fold).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

EPS = 1e-12


def _log(prob: np.ndarray) -> np.ndarray:
    return np.log(np.clip(np.asarray(prob, np.float64), EPS, None))


def fit_temperature(prob: np.ndarray, y: np.ndarray) -> float:
    """The temperature T of `softmax(log p / T + b)` (b: per-class biases) with the least
    log-loss on these rows. Large T: the probabilities claim more than they know."""
    logp, y = _log(prob), np.asarray(y, np.int64)
    n, k = logp.shape
    onehot = np.eye(k)[y]

    def loss(params: np.ndarray) -> tuple[float, np.ndarray]:
        u, b = np.exp(params[0]), params[1:]
        z = logp * u + b
        z -= z.max(axis=1, keepdims=True)
        logz = np.log(np.exp(z).sum(axis=1, keepdims=True))
        q = np.exp(z - logz)
        nll = -float(((z - logz) * onehot).sum() / n)
        diff = (q - onehot) / n
        return nll, np.r_[float((diff * logp).sum()) * u, diff.sum(axis=0)]

    fitted = minimize(loss, np.zeros(k + 1), jac=True, method="L-BFGS-B",
                      bounds=[(-12.0, 6.0)] + [(None, None)] * k)
    return float(np.exp(-fitted.x[0]))


def evidence_weight(agreement: float, num_classes: int) -> float:
    """The inherited label's log-likelihood ratio: log(a (K-1) / (1-a))."""
    a = float(np.clip(agreement, EPS, 1 - 1e-9))
    return float(np.log(a * (num_classes - 1) / (1 - a)))


def decide(margins: np.ndarray) -> np.ndarray:
    """The class of each row of the rule's margins (two classes: class 1 at margin >= 0)."""
    if margins.shape[1] == 2:
        return (margins[:, 1] - margins[:, 0] >= 0).astype(np.int64)
    return margins.argmax(axis=1)


def with_evidence(margins: np.ndarray, temperature: np.ndarray | float, inherited: np.ndarray,
                  *, agreement: float) -> np.ndarray:
    """Classes of rows whose inherited class (>= 0) is added as evidence; rows without one
    (-1) keep the rule's margins."""
    shifted = np.array(margins, np.float64)
    hit = np.asarray(inherited) >= 0
    weight = evidence_weight(agreement, margins.shape[1])
    rows = np.nonzero(hit)[0]
    t = np.broadcast_to(np.asarray(temperature, np.float64), (len(margins),))
    shifted[rows, np.asarray(inherited)[rows]] += t[rows] * weight
    return decide(shifted)


@dataclass(frozen=True)
class LeakScores:
    """Expected balanced accuracy on leaked images like the scored ones, out-of-fold, of
    the model alone, the copies' labels alone, and both as evidence."""

    never: float
    always: float
    evidence: float
    images: int


def _balanced(y: np.ndarray, right: np.ndarray, k: int) -> float:
    totals = np.bincount(y, minlength=k)
    seen = totals > 0
    return float((np.bincount(y, weights=right, minlength=k)[seen] / totals[seen]).mean())


def leak_scores(y: np.ndarray, decided: np.ndarray, margins: np.ndarray,
                temperature: np.ndarray, *, agreement: float) -> LeakScores:
    """Each scored image as a leak whose copy's label is its own with probability
    `agreement`, else each other class alike. `decided`, `margins`, `temperature`: the
    nested rule's, per row (chosen, fitted and calibrated without the row's fold)."""
    y = np.asarray(y, np.int64)
    k = margins.shape[1]
    never = (np.asarray(decided) == y).astype(float)
    right = with_evidence(margins, temperature, y, agreement=agreement) == y
    wrong = np.zeros(len(y))
    for shift in range(1, k):  # each wrong copy label, weighted alike
        wrong += with_evidence(margins, temperature, (y + shift) % k,
                               agreement=agreement) == y
    evidence = agreement * right + (1 - agreement) * wrong / max(k - 1, 1)
    return LeakScores(never=_balanced(y, never, k), always=float(agreement),
                      evidence=_balanced(y, evidence, k), images=int(len(y)))
