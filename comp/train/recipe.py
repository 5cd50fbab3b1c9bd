"""How a run is trained, and which options act on it: the `Recipe` (the options given,
else the model's `ModelSpec` defaults) and `check_given`, which refuses, before any work, an
option that would not act on the run."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

from comp.config import Schedule, TrainConfig, option
from comp.errors import CompError
from comp.specs import SPECS, epochs_of, shape_problem, spec
from comp.train import torchvision


@dataclass(frozen=True)
class Recipe:
    """How the models of a run are trained: the options given, else the model's defaults."""

    learning_rate: float
    augment: bool
    schedule: Schedule
    weight_decay: float
    label_smoothing: float
    warmup: int = 0  # first epochs with the pretrained base frozen (the head alone)

    @classmethod
    def of(cls, cfg: TrainConfig) -> Recipe:
        d = spec(cfg.model)
        epochs = epochs_of(cfg.model, cfg.epochs)
        pretrained = cfg.weights is not None and cfg.weights.lower() != "none"
        warmup = (0 if d.warmup is None or not pretrained else
                  cfg.warmup_epochs if cfg.warmup_epochs is not None
                  else min(d.warmup, epochs - 1))
        return cls(
            learning_rate=d.learning_rate if cfg.learning_rate is None else cfg.learning_rate,
            augment=d.augment if cfg.augment is None else cfg.augment,
            schedule=d.schedule if cfg.schedule is None else cfg.schedule,
            weight_decay=d.weight_decay,
            label_smoothing=(d.label_smoothing if cfg.label_smoothing is None
                             else cfg.label_smoothing),
            warmup=warmup)


RESUME_OPTIONS = frozenset({"resume", "epochs", "checkpoints", "workspace", "time_limit"})


WEIGHT_FILES = (".h5", ".keras")  # what keras.applications loads into its base


def weights_problem(model: str, weights: str | None) -> str | None:
    """Why `--weights` cannot name weights for this model, from the name alone (None: it
    may: a file's contents are checked when the model is built)."""
    if weights is None or weights.lower() in ("none", "imagenet"):
        return None
    if weights.lower() == torchvision.TORCHVISION:
        return (None if model == "mobilenetv2" else
                f"--weights torchvision (torchvision's ImageNet MobileNetV2) applies to "
                f"mobilenetv2 only; for {model} pass --weights imagenet, a weights file or none")
    path = Path(weights)
    base = spec(model).pretrained or model
    kinds = WEIGHT_FILES + (torchvision.FILES if model == "mobilenetv2" else ())
    if not weights.lower().endswith(kinds):
        return (f"--weights {weights}: {model} reads a weights file ending in "
                f"{', '.join(kinds)} ({base}), not {path.suffix or 'a file without a suffix'}; "
                "pass one, or --weights imagenet or none")
    if not path.is_file():
        return f"--weights {weights}: file not found; pass the path of a {base} weights file"
    return None


def check_given(cfg: TrainConfig, recipe: Recipe) -> None:
    """Every option typed acts on this run, or it is refused here, before any work."""
    typed = cfg.given & {f.name for f in fields(TrainConfig)}
    if cfg.resume is not None:
        extra = sorted(typed - RESUME_OPTIONS)
        if extra:
            raise CompError(f"--resume {cfg.resume} continues the run with its own options, so "
                            f"{option(extra[0])} would not be used: drop it, or train a new run "
                            "with it")
        return
    plateau = sorted(typed & {"plateau_factor", "plateau_patience"})
    if plateau and recipe.schedule != Schedule.PLATEAU:
        raise CompError(f"{option(plateau[0])} applies to the plateau schedule; this run "
                        f"follows {recipe.schedule} ({cfg.model}'s default): pass --schedule "
                        "plateau to use it, or drop it")
    if "weights" in typed and spec(cfg.model).pretrained is None:
        bases = ", ".join(s.model for s in SPECS.values() if s.pretrained)
        raise CompError(f"--weights applies to the models with a pretrained base ({bases}); "
                        f"{cfg.model} has none: drop it")
    if "weights" in typed:
        problem = weights_problem(str(cfg.model), cfg.weights)
        if problem is not None:
            raise CompError(problem)
    if "warmup_epochs" in typed:
        backbones = ", ".join(s.model for s in SPECS.values() if s.warmup is not None)
        if spec(cfg.model).warmup is None:
            raise CompError(f"--warmup-epochs freezes an ImageNet backbone ({backbones}) for "
                            f"its first epochs; {cfg.model} has none: drop it")
        if cfg.weights is None or cfg.weights.lower() == "none":
            raise CompError("--warmup-epochs trains the head on a frozen pretrained base; with "
                            "--weights none the base is random: drop one of them")
        if recipe.warmup >= epochs_of(cfg.model, cfg.epochs):
            raise CompError(f"--warmup-epochs {recipe.warmup} leaves no epoch to fine-tune "
                            f"the base in (--epochs {epochs_of(cfg.model, cfg.epochs)}); pass "
                            "fewer warm-up epochs or more --epochs")
    problem = shape_problem(str(cfg.model), width=cfg.width, dropout=cfg.dropout,
                            input_scale=cfg.input_scale, augment=recipe.augment)
    if problem is not None:
        raise CompError(problem)
    if "augment_strength" in typed and not recipe.augment:
        raise CompError("--augment-strength scales the augmentation, which is off for this "
                        f"run (--no-augment, or {cfg.model}'s default): pass --augment to use "
                        "it, or drop it")
