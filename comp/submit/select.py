"""The nested choice of a submission's rule: which candidate (a run's CNN with or without the
flip, its LightGBM stacker, a level-2 stack of runs) and which decision (0.5 or a tuned
threshold; the arg-max or class offsets), every choice made without the fold it is scored on.

`select` runs an outer loop over the folds: for fold k, every candidate is scored on the
other folds only (each inner fold decided by a rule tuned on the remaining ones), the best
candidate and decision are chosen there (a candidate only when it beats each simpler one it
builds on, and the best plain CNN, by more than their paired bootstrap spread), fitted on the
other folds, and applied to fold k.
The balanced accuracy of those fold-k decisions is the score of the whole procedure; it is
the headline, and it was never measured on the data any choice was made on. The rule that
is deployed is the same procedure run on every fold (`choose`), and each candidate's own
score there is printed as what it is: the best of them is selected on itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from comp.metrics import balanced_accuracy, predict_labels
from comp.submit.decision import apply_offsets, best_offsets, best_threshold, oof_decisions
from comp.submit.evidence import fit_temperature

BOOTS = 100  # bootstrap resamples of the paired spread


class Rule(StrEnum):
    """How probabilities become classes."""

    HALF = "0.5"  # two classes: p(class 1) >= 0.5
    THRESHOLD = "threshold"  # two classes: p(class 1) >= a tuned threshold
    ARGMAX = "arg-max"  # K classes: the most probable
    OFFSETS = "offsets"  # K classes: arg-max of log-probability plus tuned class offsets


class Source(StrEnum):
    CNN = "cnn"  # a run's own probabilities (fold models averaged on new images)
    STACKER = "stacker"  # LightGBM on one model's embeddings and logit (level 1)
    STACK = "stack"  # logistic regression on several runs' logits (level 2)


@dataclass
class Candidate:
    """One way to get probabilities for every scored image, out-of-fold.

    `full`: (N, K) out-of-fold probabilities. `nested(k)`: the same computed without any
    label of fold k (level 2 and a one-model run's stacker are fitted across folds, so
    they are refitted; None: `full` never reads another fold's labels)."""

    name: str
    source: Source
    runs: tuple[str, ...]
    tta: bool
    full: np.ndarray
    nested: Callable[[int], np.ndarray] | None = None

    def without(self, k: int) -> np.ndarray:
        return self.full if self.nested is None else self.nested(k)


def paired_spread(y: np.ndarray, a: np.ndarray, b: np.ndarray, *, boots: int = BOOTS,
                  seed: int = 0) -> float:
    """Standard deviation over bootstrap resamples (the same images for both) of the
    balanced accuracy of decisions `a` minus that of `b`."""
    y = np.asarray(y, np.int64)
    k, n = int(y.max(initial=0)) + 1, len(y)
    hit_a, hit_b = (a == y).astype(float), (b == y).astype(float)
    rng = np.random.default_rng(seed)
    diffs = np.empty(boots)
    for i in range(boots):
        w = np.bincount(rng.integers(0, n, n), minlength=n).astype(float)
        total = np.bincount(y, weights=w, minlength=k)
        seen = total > 0
        ra = np.bincount(y, weights=w * hit_a, minlength=k)[seen] / total[seen]
        rb = np.bincount(y, weights=w * hit_b, minlength=k)[seen] / total[seen]
        diffs[i] = ra.mean() - rb.mean()
    return float(diffs.std())


def plain_rule(num_classes: int) -> Rule:
    return Rule.HALF if num_classes == 2 else Rule.ARGMAX


def tuned_rule(num_classes: int) -> Rule:
    return Rule.THRESHOLD if num_classes == 2 else Rule.OFFSETS


def pick_rule(prob: np.ndarray, y: np.ndarray, fold: np.ndarray, *, seed: int
              ) -> tuple[Rule, float]:
    """The decision for these out-of-fold probabilities, and its out-of-fold score: the
    tuned one (each fold decided by a threshold or offsets tuned on the other folds) only
    when it beats the plain one by more than the bootstrap spread of their difference."""
    rule, score, _ = _decide(prob, y, fold, seed=seed)
    return rule, score


def _decide(prob: np.ndarray, y: np.ndarray, fold: np.ndarray, *, seed: int
            ) -> tuple[Rule, float, np.ndarray]:
    """`pick_rule`, with the out-of-fold decisions it scored."""
    k = prob.shape[1]
    plain = predict_labels(prob)
    tuned = oof_decisions(prob, y, fold, num_classes=k, offsets=True)
    s_plain, s_tuned = balanced_accuracy(y, plain), balanced_accuracy(y, tuned)
    if s_tuned - s_plain > paired_spread(y, tuned, plain, seed=seed):
        return tuned_rule(k), s_tuned, tuned
    return plain_rule(k), s_plain, plain


def fit_rule(prob: np.ndarray, y: np.ndarray, rule: Rule) -> float | list[float] | None:
    """The rule's parameter fitted on these rows: a threshold, class offsets, or None."""
    if rule == Rule.THRESHOLD:
        return best_threshold(y, prob[:, 1])[0]
    if rule == Rule.OFFSETS:
        return best_offsets(y, prob)[0].tolist()
    return None


def apply_rule(prob: np.ndarray, rule: Rule, parameter: float | list[float] | None
               ) -> np.ndarray:
    if rule == Rule.THRESHOLD:
        assert isinstance(parameter, float)
        return predict_labels(prob, parameter)
    if rule == Rule.OFFSETS:
        assert isinstance(parameter, list)
        return apply_offsets(prob, np.asarray(parameter))
    return predict_labels(prob)


def rule_margins(prob: np.ndarray, rule: Rule, parameter: float | list[float] | None
                 ) -> np.ndarray:
    """(N, K) scores in log-probability units whose `evidence.decide` is the rule's class:
    log p plus the rule's offsets (two classes: 0 and logit(p) - logit(threshold))."""
    logp = np.log(np.clip(np.asarray(prob, np.float64), 1e-12, None))
    if prob.shape[1] == 2:
        cut = float(parameter) if rule == Rule.THRESHOLD and isinstance(parameter, float) \
            else 0.5
        cut = min(max(cut, 1e-12), 1 - 1e-12)
        margin = logp[:, 1] - logp[:, 0] - float(np.log(cut / (1 - cut)))
        return np.stack([np.zeros(len(prob)), margin], axis=1)
    if rule == Rule.OFFSETS:
        assert isinstance(parameter, list)
        return logp + np.asarray(parameter)
    return logp


@dataclass(frozen=True)
class Choice:
    index: int  # of the candidate
    rule: Rule
    scores: list[tuple[Rule, float]]  # every candidate's rule and out-of-fold score


def simpler_of(candidates: list[Candidate]) -> list[list[int]]:
    """Per candidate, the simpler candidates it must beat by their spread to be chosen over
    them: the same without the flip; a stacker's own CNN; a stack's runs' CNNs (each with
    the same flip setting)."""
    where = {(c.source, c.runs, c.tta): i for i, c in enumerate(candidates)}
    out: list[list[int]] = []
    for c in candidates:
        simpler = []
        if c.tta and (c.source, c.runs, False) in where:
            simpler.append(where[(c.source, c.runs, False)])
        if c.source != Source.CNN:
            simpler += [where[(Source.CNN, (r,), c.tta)] for r in c.runs
                        if (Source.CNN, (r,), c.tta) in where]
        out.append(simpler)
    return out


def choose(probs: list[np.ndarray], y: np.ndarray, fold: np.ndarray, *, seed: int,
           plain: list[bool] | None = None, simpler: list[list[int]] | None = None) -> Choice:
    """The best candidate and its decision on these rows. A candidate is chosen over a
    simpler one (`simpler`: the flip over none, a stacker or a stack over its CNNs) only
    when it beats it by more than the bootstrap spread of their difference, as a tuned
    threshold must beat 0.5: the best candidate steps down to the simpler one it fails to
    beat, until it beats all of its own. `plain` marks the simplest (a run's own CNN, no
    flip): the survivor must also beat the best of them by its spread, else that one is
    chosen (ties: the earlier candidate, so list the simpler ones first)."""
    decided = [_decide(p, y, fold, seed=seed) for p in probs]
    scores = [(rule, score) for rule, score, _ in decided]

    def beats(a: int, b: int) -> bool:
        return scores[a][1] - scores[b][1] > paired_spread(y, decided[a][2], decided[b][2],
                                                           seed=seed)

    def order(i: int) -> tuple[float, int]:
        return scores[i][1], -i

    best = max(range(len(scores)), key=order)
    while simpler is not None:
        lost = [j for j in sorted(simpler[best], key=order, reverse=True)
                if not beats(best, j)]
        if not lost:
            break
        best = lost[0]
    simple = [i for i in range(len(probs)) if plain is None or plain[i]]
    base = max(simple, key=order) if simple else best
    if best != base and (best in simple or not beats(best, base)):
        best = base
    return Choice(best, scores[best][0], scores)


@dataclass(frozen=True)
class Selection:
    """The whole procedure, scored nested, and the rule it deploys."""

    decided: np.ndarray  # every row's class, decided without its fold (the headline's)
    prob: np.ndarray  # (N, K) the probabilities that decided each row: its fold's pick's
    margins: np.ndarray  # (N, K) the same rule's margins (`rule_margins`)
    temperatures: np.ndarray  # (N,) its calibration, fitted without the row's fold
    picked: list[str]  # per outer fold: the candidate and rule chosen without it
    choice: Choice  # on every fold: the deployed candidate and rule
    parameter: float | list[float] | None  # the deployed rule's threshold or offsets
    temperature: float  # the deployed candidate's, fitted on every row

    def balanced_accuracy(self, y: np.ndarray) -> float:
        return balanced_accuracy(y, self.decided)


def select(candidates: list[Candidate], y: np.ndarray, fold: np.ndarray, *, seed: int,
           progress: Callable[[], None] | None = None) -> Selection:
    """Nested selection over `candidates` (see the module docstring)."""
    decided = np.zeros(len(y), np.int64)
    prob = np.zeros_like(candidates[0].full, dtype=np.float64)
    margins = np.zeros((len(y), candidates[0].full.shape[1]))
    temperatures = np.ones(len(y))
    picked = []
    plain = [c.source == Source.CNN and not c.tta for c in candidates]
    simpler = simpler_of(candidates)
    for k in np.unique(fold):
        inside, outside = fold != k, fold == k
        probs = [c.without(int(k))[inside] for c in candidates]
        inner = choose(probs, y[inside], fold[inside], seed=seed, plain=plain,
                       simpler=simpler)
        parameter = fit_rule(probs[inner.index], y[inside], inner.rule)
        chosen = candidates[inner.index]
        decided[outside] = apply_rule(chosen.full[outside], inner.rule, parameter)
        prob[outside] = chosen.full[outside]
        margins[outside] = rule_margins(chosen.full[outside], inner.rule, parameter)
        temperatures[outside] = fit_temperature(probs[inner.index], y[inside])
        picked.append(f"{chosen.name} ({inner.rule})")
        if progress is not None:
            progress()
    final = choose([c.full for c in candidates], y, fold, seed=seed, plain=plain,
                   simpler=simpler)
    parameter = fit_rule(candidates[final.index].full, y, final.rule)
    return Selection(decided, prob, margins, temperatures, picked, final, parameter,
                     fit_temperature(candidates[final.index].full, y))
