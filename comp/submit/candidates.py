"""The candidates of a submission's rule, built from runs' out-of-fold predictions, and the
fitted `Decision` (`comp.submit.select` chooses among them, nested).

Per run and per flip setting: the CNN's own probabilities, and its LightGBM stacker inside
that run's embedding spaces (`comp.submit.stacker`); with several runs, a level-2 logistic
regression on their logits. Listed simplest first, so a tie keeps the simpler one.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from comp.config import SubmitConfig, Tta
from comp.runs import RunDir
from comp.stopwatch import Stopwatch
from comp.submit import stacker
from comp.submit.evaluate import holdout_predictions, scored_rows, scoring_folds
from comp.submit.predict import Predictions
from comp.submit.rule import Decision, Nested, Scored, save_oof
from comp.submit.select import Candidate, Rule, Source, select
from comp.train.features import flippable, learned_embedding
from comp.workspace import Meta, Workspace


def flips(policy: Tta) -> list[bool]:
    return {Tta.AUTO: [False, True], Tta.ON: [True], Tta.OFF: [False]}[policy]


def _label(name: str, tta: bool) -> str:
    return f"{name} +flip" if tta else name


def _excluding(fit: Callable[..., np.ndarray]) -> Callable[[int], np.ndarray]:
    """`fit` refitted without any label of outer fold j."""
    return lambda j: fit(exclude=j)


def build(preds: dict[tuple[str, bool], Predictions], run_dirs: list[RunDir], y: np.ndarray,
          fold: np.ndarray, groups: np.ndarray, *, num_classes: int, tta: list[bool],
          ensemble: bool, seed: int, flipped: frozenset[str] | None = None,
          stacked: frozenset[str] | None = None) -> list[Candidate]:
    """Every candidate, simplest first: CNNs, then stackers, then level-2 stacks. `flipped`:
    the runs flip TTA applies to (None: all); the others' "+flip" candidates would repeat
    their plain ones, and a stack + flip reads their plain predictions. `stacked`: the runs
    whose embeddings a LightGBM stacker reads (None: all; `features.learned_embedding`)."""
    flipped = frozenset(r.name for r in run_dirs) if flipped is None else flipped
    stacked = frozenset(r.name for r in run_dirs) if stacked is None else stacked

    def settings(r: RunDir) -> list[bool]:
        return tta if r.name in flipped else [False]

    order = [t for t in (False, True) if any(t in settings(r) for r in run_dirs)]
    k = num_classes
    out = [Candidate(_label(r.name, t), Source.CNN, (r.name,), t, preds[(r.name, t)].prob)
           for t in order for r in run_dirs if t in settings(r)]
    # a stacker or a stack needs every class in every part of its cross-validation
    if not ensemble or not stacker.fits(y, k, 2 * len(np.unique(fold))):
        return out
    todo = [(t, r) for t in order for r in run_dirs if t in settings(r) and r.name in stacked]
    for t, r in tqdm(todo, desc="LightGBM stackers, cross-validated", unit="stacker",
                     leave=False, disable=None):
        pred = preds[(r.name, t)]
        name = _label(f"{r.name} LightGBM", t)
        if r.cross_fitted:  # one stacker per fold model, on its own rows only
            full = stacker.member_oof(pred, y, fold, groups, num_classes=k, seed=seed)
            if full is not None:
                out.append(Candidate(name, Source.STACKER, (r.name,), t, full))
            continue
        features = stacker.stack_features(pred)
        fit = functools.partial(stacker.cross_val, stacker.lgbm_fit_predict(k, seed),
                                features, y, fold, num_classes=k)
        out.append(Candidate(name, Source.STACKER, (r.name,), t, fit(),
                             nested=_excluding(fit)))
    if len(run_dirs) > 1:
        for t in tta:
            x = stacker.level2_features([preds[(r.name, t)].prob for r in run_dirs])
            fit = functools.partial(stacker.cross_val, stacker.level2_fit_predict, x, y, fold,
                                    num_classes=k)
            out.append(Candidate(_label(f"stack of {len(run_dirs)} runs", t), Source.STACK,
                                 tuple(r.name for r in run_dirs), t, fit(),
                                 nested=_excluding(fit)))
    return out


def deploy(chosen: Candidate, preds: dict[tuple[str, bool], Predictions],
           run_dirs: dict[str, RunDir], y: np.ndarray, fold: np.ndarray, *,
           num_classes: int, seed: int, folder: Path) -> None:
    """Fit the chosen candidate's stacker on every scored row and save it in `folder`."""
    if chosen.source == Source.STACKER:
        run_dir = run_dirs[chosen.runs[0]]
        pred = preds[(run_dir.name, chosen.tta)]
        models = (stacker.fit_members(pred, y, fold, num_classes=num_classes, seed=seed)
                  if run_dir.cross_fitted else
                  [stacker.fit_lgbm(stacker.stack_features(pred), y, num_classes=num_classes,
                                    seed=seed)])
        stacker.save_boosters(models, folder)
    elif chosen.source == Source.STACK:
        x = stacker.level2_features([preds[(r, chosen.tta)].prob for r in chosen.runs])
        stacker.fit_level2(x, y).save(folder)


def fit_decision(cfg: SubmitConfig, ws: Workspace, meta: Meta, index: pd.DataFrame,
                 run_dirs: list[RunDir], *, folder: Path,
                 clock: Stopwatch | None = None) -> Decision:
    """The rule for these runs: candidates from their out-of-fold predictions, the nested
    selection, the chosen candidate fitted on every scored row; saved in `folder`. Each
    stage timed into `clock` (`--profile`)."""
    clock = clock or Stopwatch()
    with clock.stage("rule: out-of-fold predictions (cached per run and flip)"):
        rows = scored_rows(ws, index, run_dirs[0])
        y = rows["label"].to_numpy(np.int64)
        fold = scoring_folds(rows, y, run_dirs[0], folds=cfg.folds, seed=cfg.seed)
        tta = flips(cfg.tta)
        models = {r.name: r.load_record().model for r in run_dirs}
        flipped = frozenset(name for name, m in models.items() if flippable(m))
        stacked = frozenset(name for name, m in models.items() if learned_embedding(m))
        preds = {(r.name, t): holdout_predictions(ws, index, r, tta=t,
                                                  fingerprint=meta.fingerprint)
                 for t in (False, True) for r in run_dirs if t in tta or r.name not in flipped}
    k = len(meta.classes)
    with clock.stage("rule: candidates (stackers cross-validated)"):
        candidates = build(preds, run_dirs, y, fold, rows["split_group"].to_numpy(),
                           num_classes=k, tta=tta, ensemble=cfg.ensemble, seed=cfg.seed,
                           flipped=flipped, stacked=stacked)
    with clock.stage("rule: nested choice"), tqdm(
            total=len(np.unique(fold)), desc="nested choice of the rule", unit="fold",
            leave=False, disable=None) as bar:
        selection = select(candidates, y, fold, seed=cfg.seed, progress=lambda: bar.update())
    chosen = candidates[selection.choice.index]
    folder.mkdir(parents=True, exist_ok=True)
    with clock.stage("rule: the chosen one fitted on every row"):
        deploy(chosen, preds, {r.name: r for r in run_dirs}, y, fold, num_classes=k,
               seed=cfg.seed, folder=folder)
    rule = selection.choice.rule
    decision = Decision(
        classes=meta.classes, fingerprint=meta.fingerprint,
        cross_fitted=run_dirs[0].cross_fitted, folds=int(len(np.unique(fold))),
        images=int(len(y)), considered=[r.name for r in run_dirs], runs=list(chosen.runs),
        candidate=chosen.name, source=str(chosen.source), tta=chosen.tta, rule=str(rule),
        threshold=(float(selection.parameter) if rule == Rule.THRESHOLD
                   and isinstance(selection.parameter, float) else None),
        offsets=(list(selection.parameter) if rule == Rule.OFFSETS
                 and isinstance(selection.parameter, list) else None),
        oof_balanced_accuracy=selection.balanced_accuracy(y),
        oof_accuracy=float((selection.decided == y).mean()),
        temperature=selection.temperature,
        members=len(run_dirs[0].members()),
        candidates=[Scored(c.name, score, str(r)) for c, (r, score)
                    in zip(candidates, selection.choice.scores, strict=True)],
        picked=selection.picked)
    save_oof(folder, rows["id"].astype(str).to_numpy(), selection.prob,
             Nested(y, selection.decided, selection.margins, selection.temperatures))
    decision.save(folder)
    return decision
