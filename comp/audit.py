"""`comp audit`: likely label errors among the training images, found by cleanlab's confident
learning on out-of-fold probabilities (every labelled image predicted by the fold model that
did not train on it), ranked, pictured, and written as a file `comp prepare --exclude` or
`--relabel` reads.

cleanlab does the statistics (`find_label_issues`, `get_label_quality_scores`,
`estimate_joint`): it is the well-kept reference for confident learning (Northcutt et al.
2021); comp supplies the honest probabilities and the workspace's duplicate groups.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from comp import pictures
from comp.commit import fresh_folder, reading
from comp.config import DEFAULT_SEED, AuditConfig
from comp.errors import CompError
from comp.metrics import probability_matrix
from comp.runs import open_run
from comp.workspace import Workspace, write_csv, write_text

MONTAGE = 30  # suspects pictured
AUDIT_COLUMNS = ["rank", "id", "given_label", "suggested_label", "score", "p_given",
                 "p_suggested", "near_duplicates"]


@dataclass
class Audit:
    folder: Path
    suspects: int
    images: int
    per_class: dict[str, int]  # suspects by given label
    noise_rate: dict[str, float]  # estimated share of each given label that is wrong


def normalised(prob: np.ndarray) -> np.ndarray:
    """(N, K) class probabilities summing to 1 per row, none exactly 0 (cleanlab's input)."""
    prob = np.asarray(probability_matrix(prob), np.float64)
    return np.clip(prob / prob.sum(axis=1, keepdims=True), 1e-12, 1.0)


def find_suspects(labels: np.ndarray, probs: np.ndarray, *, rank_by: str
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(suspect indices ranked most likely wrong first, every image's label-quality score,
    the (K, K) joint distribution of given (rows) and true (columns) labels), by cleanlab."""
    from cleanlab.count import estimate_joint
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    ranked = find_label_issues(labels=labels, pred_probs=probs,
                               return_indices_ranked_by=rank_by)
    scores = get_label_quality_scores(labels, probs, method=rank_by)
    joint = estimate_joint(labels=labels, pred_probs=probs)
    return np.asarray(ranked, np.int64), np.asarray(scores), np.asarray(joint)


@reading()  # a run resumed meanwhile keeps the versions read here
def audit(cfg: AuditConfig) -> Audit:
    """Write `checkpoints/<run>/audit/` (audit.csv, suspects.png, summary.md), replacing an
    earlier audit whole."""
    from comp.submit.evaluate import best_run, holdout_predictions

    ws = Workspace(cfg.workspace)
    meta, index = ws.load_meta(), ws.load_index()
    name = cfg.run or best_run(ws, cfg.checkpoints, fingerprint=meta.fingerprint,
                               folds=None, seed=DEFAULT_SEED, cross_fitted=True)
    run_dir, record = open_run(cfg.checkpoints, name, fingerprint=meta.fingerprint,
                               pixels=meta.pixels)
    if not run_dir.cross_fitted:
        raise CompError(f"run {name} is one model on the train split: an audit needs an "
                        "out-of-fold probability for every training image; train one model "
                        "per fold (`comp train`, the default) and audit that run")
    rows = ws.labelled(index)
    pred = holdout_predictions(ws, index, run_dir, tta=False, fingerprint=meta.fingerprint)
    labels = rows["label"].to_numpy(np.int64)
    probs = normalised(pred.prob)
    ranked, scores, joint = find_suspects(labels, probs, rank_by=cfg.rank_by)
    classes = meta.classes
    suggested = probs.argmax(axis=1)
    train = index[index["source"] == "train"]
    members = train.groupby("group")["id"].apply(list)
    ids = rows["id"].astype(str).to_numpy()
    groups = rows["group"].to_numpy()
    frame = pd.DataFrame({
        "rank": np.arange(1, len(ranked) + 1), "id": ids[ranked],
        "given_label": [classes[c] for c in labels[ranked]],
        "suggested_label": [classes[c] for c in suggested[ranked]],
        "score": scores[ranked], "p_given": probs[ranked, labels[ranked]],
        "p_suggested": probs[ranked, suggested[ranked]],
        "near_duplicates": [" ".join(str(i) for i in members[groups[r]] if str(i) != ids[r])
                            for r in ranked]}, columns=AUDIT_COLUMNS)
    per_class = {c: int((frame["given_label"] == c).sum()) for c in classes}
    given = joint.sum(axis=1)
    noise = {c: float(1 - joint[k, k] / given[k]) if given[k] > 0 else 0.0
             for k, c in enumerate(classes)}
    with fresh_folder(run_dir.path / "audit") as tmp:  # an earlier audit is replaced whole
        write_csv(tmp / "audit.csv", frame)
        write_csv(tmp / "relabel.csv", frame[["id", "suggested_label"]].rename(
            columns={"suggested_label": "label"}))
        store = ws.load_store("train")
        shown = ranked[:MONTAGE]
        shown_px = np.asarray(store[rows["row"].to_numpy()[shown]])
        cells = [(shown_px[j], f"#{j + 1} {ids[r]}\ngiven {classes[labels[r]]} "
                  f"p={probs[r, labels[r]]:.2f}\nsays {classes[suggested[r]]}")
                 for j, r in enumerate(shown)]
        pictures.montage([cells[s:s + 10] for s in range(0, len(cells), 10)],
                       f"run {name}: the {len(shown)} likeliest label errors of "
                       f"{len(ranked)} (cleanlab, ranked by {cfg.rank_by})",
                       tmp / "suspects.png")
        write_text(tmp / "summary.md", _summary(name, record.model, len(rows), frame,
                                                per_class, noise, cfg.rank_by))
    return Audit(run_dir.path / "audit", len(frame), len(rows), per_class, noise)


def _summary(run: str, model: str, images: int, frame: pd.DataFrame,
             per_class: dict[str, int], noise: dict[str, float], rank_by: str) -> str:
    lines = [f"# Label audit of run {run} ({model})", "",
             f"{len(frame):,} of {images:,} labelled images are likely mislabelled (cleanlab's "
             f"confident learning on out-of-fold probabilities, ranked by {rank_by}).", "",
             "| given label | suspects | estimated noise rate |", "|---|---|---|"]
    lines += [f"| {c} | {per_class[c]:,} | {noise[c]:.3f} |" for c in per_class]
    lines += ["", "Act on it: `comp prepare ... --exclude audit.csv` drops the suspects; "
              "`--relabel relabel.csv` gives them the label the model suggests. Either makes a "
              "new workspace version with a new fingerprint, so runs on the old labels are "
              "never mixed with the new.", ""]
    return "\n".join(lines)
