"""How a run is trained, and which options act on it: the `Recipe` (the options given,
else the model's `ModelSpec` defaults) and `check_given`, which refuses, before any work, an
option that would not act on the run."""

from __future__ import annotations

from dataclasses import dataclass, fields

from comp.config import DEFAULT_EPOCHS, Schedule, TrainConfig, option
from comp.errors import CompError
from comp.specs import SPECS, spec


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
        epochs = cfg.epochs or DEFAULT_EPOCHS
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
    if "warmup_epochs" in typed:
        backbones = ", ".join(s.model for s in SPECS.values() if s.warmup is not None)
        if spec(cfg.model).warmup is None:
            raise CompError(f"--warmup-epochs freezes an ImageNet backbone ({backbones}) for "
                            f"its first epochs; {cfg.model} has none: drop it")
        if cfg.weights is None or cfg.weights.lower() == "none":
            raise CompError("--warmup-epochs trains the head on a frozen pretrained base; with "
                            "--weights none the base is random: drop one of them")
        if recipe.warmup >= (cfg.epochs or DEFAULT_EPOCHS):
            raise CompError(f"--warmup-epochs {recipe.warmup} leaves no epoch to fine-tune "
                            f"the base in (--epochs {cfg.epochs or DEFAULT_EPOCHS}); pass "
                            "fewer warm-up epochs or more --epochs")
    if spec(cfg.model).features is not None and (recipe.augment or cfg.input_scale != 1):
        raise CompError(spec(cfg.model).pixels_only(
            "--augment" if recipe.augment else "--input-scale"))
    if "augment_strength" in typed and not recipe.augment:
        raise CompError("--augment-strength scales the augmentation, which is off for this "
                        f"run (--no-augment, or {cfg.model}'s default): pass --augment to use "
                        "it, or drop it")
