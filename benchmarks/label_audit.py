"""How well `comp audit` finds wrong labels where the truth is known: the demo challenge flips
3 % of its training labels and writes which (answers/train_labels.csv). Precision = share of
the audit's suspects whose given label is wrong; recall = share of the wrong labels (among the
kept, labelled training images the run saw) that the audit names. Conflicting duplicates,
which prepare drops, are not counted.

    python benchmarks/label_audit.py --challenge DIR --workspace W --checkpoints C --run RUN
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--challenge", type=Path, required=True)
    parser.add_argument("--workspace", type=Path, required=True)
    parser.add_argument("--checkpoints", type=Path, required=True)
    parser.add_argument("--run", required=True)
    parser.add_argument("--rank-by", default="self_confidence")
    args = parser.parse_args()
    from comp.workspace import Workspace

    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "comp.cli", "audit", args.run, "-w",
                    str(args.workspace), "--checkpoints", str(args.checkpoints), "--rank-by",
                    args.rank_by], check=True)
    seconds = time.perf_counter() - started
    truth = pd.read_csv(args.challenge / "answers" / "train_labels.csv", dtype=str)
    wrong = set(truth.loc[truth["label"] != truth["true_label"], "id"])
    seen = set(Workspace(args.workspace).labelled()["id"].astype(str))
    wrong &= seen
    audit = pd.read_csv(args.checkpoints / args.run / "audit" / "audit.csv", dtype={"id": str})
    named = set(audit["id"])
    hits = len(named & wrong)
    precision = hits / max(len(named), 1)
    recall = hits / max(len(wrong), 1)
    print(f"\n{len(seen):,} labelled training images, {len(wrong):,} with a flipped label "
          f"({len(wrong) / len(seen):.1%}); the audit names {len(named):,} "
          f"(ranked by {args.rank_by}, {seconds:.1f} s): precision {precision:.3f}, "
          f"recall {recall:.3f} (goal on a 10 % flip: precision >= 0.8 at recall >= 0.6)")
    for top in (50, 100, 200):
        head = set(audit["id"].head(top))
        print(f"  top {top}: {len(head & wrong)} of {len(head)} are flipped labels")


if __name__ == "__main__":
    main()
