"""Label noise on real faces: flip 10 % of a shared dataset's training labels on purpose
(seeded, at random within each class), after carving off an untouched test set as
`real_data.py` does. Then:
(a) comp's default on the noisy labels (prepare, train one model per fold, submit --test);
    `comp audit` of that run: precision and recall of the flipped labels at its default cut;
(b) the same after `comp prepare --exclude audit.csv`;
(c) the same after `comp prepare --relabel relabel.csv`.
Score = balanced accuracy on the carved-off test. Goal: precision >= 0.8 at recall >= 0.6,
and (b) or (c) above (a).

    python benchmarks/label_noise.py [--dataset celeba-male] [--flip 0.1] [--epochs 6]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from real_data import carve, trained_score  # noqa: E402

from comp import metrics  # noqa: E402
from comp.audit import audit  # noqa: E402
from comp.config import AuditConfig  # noqa: E402


def flip_labels(labels: pd.DataFrame, share: float, seed: int) -> tuple[pd.DataFrame, set[str]]:
    """`share` of each class's labels flipped to the other class (two classes)."""
    rng = np.random.default_rng(seed)
    out = labels.copy()
    flipped: set[str] = set()
    for value in sorted(out["label"].unique()):
        rows = np.nonzero((labels["label"] == value).to_numpy())[0]
        pick = rng.choice(rows, size=int(round(share * len(rows))), replace=False)
        out.loc[pick, "label"] = 1 - value
        flipped |= set(out.loc[pick, "id"].astype(str))
    return out, flipped


def arm(name: str, tag: str, challenge: Path, answers: pd.DataFrame, args: argparse.Namespace,
        **prepare_extra: object) -> tuple[float, Path, Path, float]:
    """The default cross-fitted model on the carved-off test: (balanced accuracy, workspace,
    checkpoints, seconds)."""
    pred, seconds, ws, ck = trained_score(name, tag, challenge, answers, model=args.model,
                                          epochs=args.epochs, seed=args.seed,
                                          prepare_extra=prepare_extra)
    return metrics.balanced_accuracy(answers["label"].to_numpy(), pred), ws, ck, seconds


CUTS = ("prune_by_noise_rate", "confident_learning", "predicted_neq_given",
        "low_self_confidence")


def other_cuts(ws: Path, ck: Path, run: str, clean: pd.DataFrame) -> None:
    """Precision and recall of cleanlab's other `filter_by` cuts, and of the k likeliest, on
    the run's out-of-fold probabilities (the audit's own input)."""
    from cleanlab.filter import find_label_issues

    from comp.audit import probability_matrix
    from comp.runs import RunDir
    from comp.submit.evaluate import holdout_predictions
    from comp.workspace import Workspace

    w = Workspace(ws)
    meta, index = w.load_meta(), w.load_index()
    rows = w.labelled(index)
    pred = holdout_predictions(w, index, RunDir(ck / run), tta=False,
                               fingerprint=meta.fingerprint)
    labels, probs = rows["label"].to_numpy(np.int64), probability_matrix(pred.prob)
    truth = clean.set_index("id")["label"].loc[rows["id"].astype(str)].to_numpy() != labels
    print(f"\n{len(labels):,} kept labelled images, {int(truth.sum()):,} of them flipped:")
    print("| cut | suspects | precision | recall |\n|---|---|---|---|")
    for cut in CUTS:
        named = find_label_issues(labels=labels, pred_probs=probs, filter_by=cut)
        print(f"| `filter_by={cut}`{' (the default)' if cut == CUTS[0] else ''} | "
              f"{int(named.sum()):,} | {(named & truth).sum() / max(named.sum(), 1):.3f} | "
              f"{(named & truth).sum() / truth.sum():.3f} |")
    order = find_label_issues(labels=labels, pred_probs=probs,
                              return_indices_ranked_by="self_confidence")
    for k in (200, 400, 480, 600):
        hits = truth[order[:k]].sum()
        print(f"| the {k} likeliest | {k} | {hits / k:.3f} | {hits / truth.sum():.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", default="celeba-male")
    parser.add_argument("--flip", type=float, default=0.1)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--model", default="res")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--cuts-only", action="store_true", help="only the table of audit "
                        "cuts, from the noisy-label run an earlier call trained")
    args = parser.parse_args()
    name = f"{args.dataset}-noise"
    from real_data import DATASETS, OUT, read_labels

    DATASETS[name] = DATASETS[args.dataset]
    if args.cuts_only:
        other_cuts(OUT / name / "ws-noisy", OUT / name / "ck-noisy", "noisy",
                   read_labels(name))
        return
    challenge, answers = carve(name, args.seed)
    clean = pd.read_csv(challenge / "train.csv", dtype={"id": str})
    noisy, flipped = flip_labels(clean, args.flip, args.seed)
    noisy.to_csv(challenge / "train.csv", index=False)
    rows = []
    score, ws, ck, seconds = arm(name, "noisy", challenge, answers, args)
    rows.append(("(a) noisy labels", score, seconds))
    found = audit(AuditConfig(workspace=ws, run="noisy", checkpoints=ck))
    suspects = pd.read_csv(found.folder / "audit.csv", dtype={"id": str})
    named = set(suspects["id"])
    hits = len(named & flipped)
    print(f"\n{len(clean):,} training labels, {len(flipped):,} flipped; the audit names "
          f"{len(named):,}: precision {hits / max(len(named), 1):.3f}, recall "
          f"{hits / len(flipped):.3f}")
    other_cuts(ws, ck, "noisy", clean)
    for tag, option in (("exclude", "exclude"), ("relabel", "relabel")):
        file = found.folder / ("audit.csv" if tag == "exclude" else "relabel.csv")
        score, _, _, seconds = arm(name, tag, challenge, answers, args, **{option: file})
        rows.append((f"({'b' if tag == 'exclude' else 'c'}) after --{tag}", score, seconds))
    print(f"\n{args.dataset}, {args.flip:.0%} of the training labels flipped, {args.model} "
          f"x 5 folds, {args.epochs} epochs; balanced accuracy on the carved-off test "
          f"({len(answers):,} images):")
    print("| training labels | balanced accuracy | wall time (s) |\n|---|---|---|")
    for label, value, secs in rows:
        print(f"| {label} | {value:.4f} | {secs:,.0f} |")


if __name__ == "__main__":
    main()
