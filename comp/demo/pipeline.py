"""`comp demo`: the whole two-phase challenge on the demo data, as a competitor would run it."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from comp.config import (
    DEMO_EPOCHS,
    DEMO_TRAIN,
    Leaks,
    PrepareConfig,
    SubmitConfig,
    Target,
    TrainConfig,
)
from comp.demo.generate import DemoSpec, make_demo
from comp.prepare import prepare
from comp.submit import submit
from comp.submit.rule import describe
from comp.submit.submission import score_against
from comp.train import train


@dataclass(frozen=True)
class DemoResult:
    """What the demo measured: the rule's own out-of-fold estimate, and phase 2 scored
    against the demo's answers with and without the leak override."""

    oof_balanced_accuracy: float
    with_leaks: float
    without_leaks: float
    phase1_csv: Path
    phase2_csv: Path


def run_demo(out: Path, *, n_train: int = DEMO_TRAIN, epochs: int = DEMO_EPOCHS, seed: int = 0,
             echo: Callable[[str], None] = print) -> DemoResult:
    """Generate, prepare, train the default (one `res` per fold), submit phase 1 (val) by the
    out-of-fold rule, then phase 2 (the test set lands), scored against the answers."""
    started = time.perf_counter()
    challenge, ws = out / "challenge", out / "workspace"
    checkpoints, submissions = out / "checkpoints", out / "submissions"
    echo(f"1/5 demo challenge -> {challenge}")
    make_demo(challenge, DemoSpec(train=n_train, val=max(n_train // 12, 10),
                                  test=max(n_train // 4, 10), seed=seed))
    echo(f"2/5 comp prepare {challenge} -w {ws}")
    prepared = prepare(PrepareConfig(challenge=challenge, workspace=ws, seed=seed))
    for line in prepared.lines():
        echo(f"    {line}")
    echo(f"3/5 comp train --epochs {epochs}: comp's default, one res per fold, each scored on "
         "the fold it never saw")
    run = train(TrainConfig(workspace=ws, epochs=epochs, checkpoints=checkpoints, seed=seed,
                            run_name="res-demo", progress=False))
    echo(f"    run {run.run}: {run.folds} fold models -> {checkpoints / run.run}")
    echo("4/5 comp submit: the rule chosen out-of-fold, phase 1 (validation set)")
    base = SubmitConfig(workspace=ws, checkpoints=checkpoints, submissions=submissions,
                        seed=seed)
    phase1 = submit(base)
    for line in describe(phase1.decision) + phase1.notes:
        echo(f"    {line}")
    echo(f"    wrote {phase1.manifest.csv}")
    echo(f"5/5 comp submit --test {challenge / 'phase2/test'}: the test set lands")
    phase2 = submit(replace(base, test=challenge / "phase2/test"))
    no_leaks = submit(replace(base, target=Target.TEST, leaks=Leaks.NEVER)).manifest
    answers = challenge / "answers/test.csv"
    with_leaks = score_against(Path(phase2.manifest.csv), answers)
    without = score_against(Path(no_leaks.csv), answers)
    echo(f"    {phase2.manifest.csv} written in {phase2.manifest.seconds} s; "
         f"{phase2.notes[-1]}")
    echo(f"    phase-2 balanced accuracy against the demo's answers: {with_leaks:.4f} as "
         f"submitted, {without:.4f} without the leak override (the rule's out-of-fold "
         f"estimate: {phase1.decision.oof_balanced_accuracy:.4f})")
    echo(f"done in {time.perf_counter() - started:.0f} s")
    return DemoResult(phase1.decision.oof_balanced_accuracy, with_leaks, without,
                      Path(phase1.manifest.csv), Path(phase2.manifest.csv))
