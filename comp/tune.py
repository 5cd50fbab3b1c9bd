"""`comp tune`: a hyper-parameter search with Optuna (TPE sampler, median pruning on each
epoch's validation balanced accuracy), its study in SQLite in the workspace so a killed search
resumes where it stopped; the best parameters saved as JSON for `comp train --params`.

Optuna does the search (samplers, pruners, storage, importances): it is the maintained
reference for this, and its study survives a kill. Each trial is `comp train` on the
train/val split (one model) with the trial's options, in a scratch folder removed after it.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from comp.config import TrainConfig, TuneConfig, option
from comp.errors import CompError
from comp.specs import shape_problem
from comp.workspace import Workspace, write_json


@dataclass(frozen=True)
class Param:
    """One searched option: a float drawn on a log scale or uniformly between two bounds, or
    one of a few choices."""

    kind: Literal["log", "float", "choice"]
    values: tuple[Any, ...]  # (low, high), or the choices

    def draw(self, trial: Any, name: str) -> Any:
        if self.kind == "choice":
            return trial.suggest_categorical(name, list(self.values))
        return trial.suggest_float(name, *self.values, log=self.kind == "log")

    def kinds(self) -> set[type]:
        """The Python types a parameters file may hold for it (an int is a float too)."""
        kinds: set[type] = ({float} if self.kind != "choice"
                            else {type(v) for v in self.values})
        return kinds | {int} if float in kinds else kinds


# what a trial may change: TrainConfig fields, each with its search range
SPACE: dict[str, Param] = {
    "learning_rate": Param("log", (1e-4, 1e-2)),
    "batch_size": Param("choice", (32, 64, 128)),
    "augment": Param("choice", (True, False)),
    "augment_strength": Param("float", (0.5, 2.0)),
    "label_smoothing": Param("float", (0.0, 0.2)),
    "mixup": Param("choice", (0.0, 0.2, 0.4)),
    "schedule": Param("choice", ("plateau", "cosine")),
    "balance": Param("choice", ("none", "weights", "oversample")),
    "l2": Param("choice", (0.0, 1e-5, 1e-4, 1e-3)),  # weight decay as a kernel penalty
    "init": Param("choice", ("glorot", "he")),
    "dropout": Param("float", (0.0, 0.5)),
    "width": Param("choice", (0.5, 1.0, 1.5, 2.0)),
    "input_scale": Param("choice", (1.0, 0.75, 0.5)),
}


def space_for(model: str, side: int) -> dict[str, Param]:
    """`SPACE` as it applies to `model` on stored images whose shorter side is `side`: no
    width for logreg and ResNet50, no dropout for logreg, and only the input scales that
    leave the model an image it takes (the store's own size always); nothing on pixels
    (augmentation, input scale) for a feature model."""
    from comp.specs import spec

    model_spec = spec(model)
    space = dict(SPACE)
    if not model_spec.width:
        del space["width"]
    if not model_spec.hidden:
        del space["dropout"]
    if model_spec.features is not None:  # it reads frozen features, not pixels
        for name in ("augment", "augment_strength", "input_scale"):
            del space[name]
        return space
    scales = tuple(f for f in SPACE["input_scale"].values
                   if f == 1.0 or round(side * f) >= model_spec.min_side)
    if len(scales) > 1:
        space["input_scale"] = Param("choice", scales)
    else:
        del space["input_scale"]
    return space


@dataclass
class Tuned:
    study: str
    storage: Path
    best_params: dict[str, Any]
    best_value: float
    trials: list[dict[str, Any]]  # number, state, value, params
    best_file: Path
    history_png: Path
    warning: str  # what the tuned options cost the later out-of-fold estimate


def tune_folder(ws: Workspace) -> Path:
    return ws.root / "tune"


def best_params_path(ws: Workspace, study: str) -> Path:
    return tune_folder(ws) / f"{study}-best.json"


def suggest(trial: Any, space: dict[str, Param]) -> dict[str, Any]:
    """One point of `space`, drawn by the trial's sampler."""
    return {name: param.draw(trial, name) for name, param in space.items()}


def _reporter(trial: Any) -> Any:
    """A Keras callback: each epoch's validation balanced accuracy to the trial; stops the
    trial (optuna.TrialPruned) when the pruner says its curve is clearly worse."""
    import keras
    import optuna

    class Report(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            trial.report(float((logs or {}).get("val_balanced_accuracy", 0.0)), epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned after epoch {epoch + 1}")

    return Report()


def study_path(ws: Workspace, study: str) -> Path:
    return tune_folder(ws) / f"{study}.db"


@contextmanager
def study_errors(path: Path) -> Iterator[None]:
    """The study's SQLite file failing (damaged, a full disk, locked): one line naming it."""
    import sqlalchemy.exc

    try:
        yield
    except sqlalchemy.exc.OperationalError as exc:
        why = str(exc.orig) if exc.orig is not None else str(exc).splitlines()[0]
        if "full" in why:
            raise CompError(f"{path}: {why}: the disk is full; free some space and run `comp "
                            "tune` again (the finished trials are kept)") from None
        if "locked" in why:
            raise CompError(f"{path}: {why}: another `comp tune` is using this study; wait for "
                            "it, or pass --study NEW_NAME") from None
        raise CompError(f"{path}: the study cannot be read or written ({why}); delete the "
                        "file to start the search again, or pass --study NEW_NAME") from None
    except sqlalchemy.exc.DatabaseError as exc:
        why = str(exc.orig) if exc.orig is not None else str(exc).splitlines()[0]
        raise CompError(f"{path}: the study is damaged ({why}); delete the file to start the "
                        "search again, or pass --study NEW_NAME") from None


def open_study(cfg: TuneConfig, ws: Workspace) -> Any:
    """The study in SQLite under the workspace (created, or resumed: trials a kill left
    running are marked failed, so only finished trials count)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    folder = tune_folder(ws)
    folder.mkdir(parents=True, exist_ok=True)
    storage = f"sqlite:///{study_path(ws, cfg.study)}"
    study = optuna.create_study(
        study_name=cfg.study, storage=storage, load_if_exists=True, direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=cfg.seed, n_startup_trials=cfg.startup),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=cfg.startup, n_warmup_steps=1))
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
    return study


def tune(cfg: TuneConfig) -> Tuned:


    ws = Workspace(cfg.workspace)
    with study_errors(study_path(ws, cfg.study)):
        return _tune(cfg, ws)


def _tune(cfg: TuneConfig, ws: Workspace) -> Tuned:
    import optuna

    from comp.train import train

    meta = ws.load_meta()
    study = open_study(cfg, ws)
    if study.user_attrs.get("fingerprint", meta.fingerprint) != meta.fingerprint:
        raise CompError(f"study {cfg.study} was run on other data; pass --study NEW_NAME")
    study.set_user_attr("fingerprint", meta.fingerprint)
    study.set_user_attr("model", str(cfg.model))
    space = space_for(str(cfg.model), min(meta.size))
    done = [t for t in study.trials if t.state in (optuna.trial.TrialState.COMPLETE,
                                                   optuna.trial.TrialState.PRUNED)]

    val = ws.split("val", ws.load_index())  # read once: every trial is scored on it
    if len(np.unique(val[1])) < 2:
        raise CompError(f"{ws.root}: the val split has one class only; prepare with a larger "
                        "val fraction (--split)")

    def objective(trial: Any) -> float:
        params = suggest(trial, space)
        with tempfile.TemporaryDirectory(prefix="comp-tune-") as scratch:
            train(TrainConfig(
                workspace=cfg.workspace, model=cfg.model, epochs=cfg.epochs, folds=1,
                checkpoints=Path(scratch), run_name=f"trial-{trial.number}",
                max_images=cfg.max_images, seed=cfg.seed, progress=False, **params),
                watch=(_reporter(trial),))
            return trial_score(Path(scratch) / f"trial-{trial.number}", val, seed=cfg.seed,
                               ws=ws)

    remaining = max(cfg.trials - len(done), 0)
    if remaining:
        study.optimize(objective, n_trials=remaining, timeout=cfg.timeout,
                       catch=(CompError,), show_progress_bar=False)
    finished = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not finished:
        raise CompError(f"study {cfg.study}: no trial finished yet; run `comp tune` again "
                        "with more --trials or a longer --timeout")
    best = study.best_trial
    best_file = best_params_path(ws, cfg.study)
    write_json(best_file, {"model": str(cfg.model), "value": best.value,
                           "params": best.params, "study": cfg.study, "epochs": cfg.epochs,
                           "scored_on": "val split, threshold (or class offsets) tuned "
                                        "out-of-fold on it"})
    history_png = tune_folder(ws) / f"{cfg.study}-history.png"
    _plot(study, history_png)
    rows = [{"number": t.number, "state": t.state.name.lower(), "value": t.value,
             "epochs": len(t.intermediate_values), **t.params} for t in study.trials]
    warning = (f"note: the options were chosen on the {len(val[1]):,} val-split images, which "
               "a cross-fitted run also scores out-of-fold: its out-of-fold estimate is then "
               "slightly optimistic (the holdout split, and a carved-off test, stay clean)")
    return Tuned(cfg.study, study_path(ws, cfg.study), best.params,
                 float(best.value), rows, best_file, history_png, warning)


def trial_score(run: Path, val: tuple[np.ndarray, np.ndarray, Any], *, seed: int,
                ws: Workspace | None = None) -> float:
    """What `comp submit` would score: the trial's best checkpoint on the val split (`val`:
    its pixels, labels and index rows, as `Workspace.split` gives them; a feature model reads
    the features its run trained on, kept in `ws`'s cache), the threshold (or class offsets)
    tuned out-of-fold there, kept only where it beats 0.5 (the arg-max) by its spread."""
    from comp.runs import RunDir
    from comp.submit.evaluate import holdout_folds
    from comp.submit.predict import predict_run
    from comp.submit.select import pick_rule
    from comp.train.features import run_inputs

    x, y, rows = val
    run_dir = RunDir(run)
    x = run_inputs(run_dir.load_record(), x, ws=ws)
    prob = predict_run(run_dir.best, x, desc="trial val").prob
    folds = holdout_folds(rows, y, folds=min(5, max(2, len(y) // 20)), seed=seed)
    return pick_rule(prob, y, folds, seed=seed)[1]



def _plot(study: Any, path: Path) -> None:
    """The search history (each trial's score, the best so far) and, with enough finished
    trials, the parameter importances (Optuna's fANOVA)."""
    import optuna

    from comp import pictures

    plt = pictures.pyplot()
    finished = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    numbers = [t.number for t in finished]
    values = [t.value for t in finished]
    axes[0].plot(numbers, values, "o", label="finished trial")
    best = [max(values[:k + 1]) for k in range(len(values))]
    axes[0].step(numbers, best, where="post", label="best so far")
    pruned = [t.number for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    axes[0].plot(pruned, [min(values)] * len(pruned), "x", color="gray", label="pruned")
    axes[0].set_xlabel("trial")
    axes[0].set_ylabel("val balanced accuracy")
    axes[0].legend(fontsize=8)
    import warnings

    try:
        with warnings.catch_warnings():  # "importances will be equal" on a few trials
            warnings.simplefilter("ignore")
            importance = (optuna.importance.get_param_importances(study)
                          if len(finished) > 1 else {})
    except (RuntimeError, ValueError):  # too few distinct trials to tell
        importance = {}
    if importance:
        axes[1].barh(list(importance)[::-1], list(importance.values())[::-1])
        axes[1].set_title("parameter importance (fANOVA)", fontsize=9)
    else:
        axes[1].text(0.5, 0.5, "importances need more finished trials", ha="center")
        axes[1].axis("off")
    pictures.save_figure(fig, path)


def params_path(spec: str, ws: Workspace, model: str) -> Path:
    """The file `--params SPEC` names: `best` is the study named after the model."""
    return best_params_path(ws, model) if spec == "best" else Path(spec)


def tuned_epochs(spec: str, ws: Workspace, model: str) -> int | None:
    """The epochs per trial the parameters were tuned for (None: not recorded)."""
    path = params_path(spec, ws, model)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    epochs = data.get("epochs") if isinstance(data, dict) else None
    return epochs if isinstance(epochs, int) else None


def load_params(spec: str, ws: Workspace, model: str) -> dict[str, Any]:
    """`--params best` (the study named after the model, in the workspace) or a JSON file:
    the TrainConfig options it sets."""
    path = params_path(spec, ws, model)
    if not path.exists():
        hint = (f"run `comp tune --model {model}` first" if spec == "best"
                else "pass a JSON file of parameters or --params best")
        raise CompError(f"{path}: no tuned parameters; {hint}")
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CompError(f"{path}: not a parameters file ({exc}); run `comp tune` again") from None
    params = data.get("params", data) if isinstance(data, dict) else None
    if not isinstance(params, dict):
        raise CompError(f"{path}: expected a JSON object of parameters")
    unknown = sorted(set(params) - set(SPACE))
    if unknown:
        raise CompError(f"{path}: unknown parameter {unknown[0]!r}; known: {', '.join(SPACE)}")
    return params


KIND_WORDS = {int: "a whole number", float: "a number", bool: "true or false", str: "a name"}


def with_params(cfg: TrainConfig, params: dict[str, Any], *, source: Path) -> TrainConfig:
    """The config with the tuned parameters of the file `source` (options given on the
    command line are kept only where the parameters do not set them). A value of the wrong
    kind or out of range is refused naming the file and the parameter, and so is a parameter
    that an option typed on the same command line also sets."""
    if cfg.resume is not None:
        raise CompError(f"--params {source}: --resume {cfg.resume} continues the run with its "
                        "own options, so the file's would not be used: drop --params")
    both = sorted(set(params) & cfg.given)
    if both:
        raise CompError(f"{source} sets {both[0]}, and {option(both[0])} on the command line "
                        "sets it too: drop one of them")
    for name, value in params.items():
        kinds = SPACE[name].kinds()
        problem = "" if type(value) in kinds else (
            "expected " + " or ".join(sorted(KIND_WORDS[k] for k in kinds - {int} or kinds)))
        if not problem:
            try:
                replace(cfg, **{name: value})
            except CompError as exc:
                problem = str(exc).split(". Received")[0]
        if problem:
            raise CompError(f"{source}: parameter {name!r} is {value!r}: {problem}; fix the "
                            "file or run `comp tune` again")
    tuned = replace(cfg, **params)
    refused = shape_problem(str(tuned.model), width=tuned.width, dropout=tuned.dropout,
                            input_scale=tuned.input_scale)
    if refused is not None:  # a file tuned for another model: refused before any work
        raise CompError(f"{source}: {refused.split('. Received')[0]}; fix the file or run "
                        f"`comp tune --model {tuned.model}`")
    return tuned

