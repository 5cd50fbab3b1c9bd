"""Which runs to stack: one `comp submit --test` of a set of runs against another, on the
workspaces `benchmarks/real_data.py --recipe` leaves (its carved-off tests and answers, its
5 prepared folds, its finished runs `comp-res`, `comp-facenet`, `comp-facenet-stages-flip`).

Each set is submitted as a competitor would (`comp submit --run A --run B ... --test`, the
rule chosen nested among every run, their stackers and their stack); printed: the test's
balanced accuracy, the headline, the rule, the seconds of the submit, and the first set minus
the second with its 95 % paired bootstrap interval (2,000 resamples of the test images).

    python benchmarks/recipe_runs.py --runs comp-res,comp-facenet,comp-facenet-stages-flip \
        --against comp-res,comp-facenet-stages-flip [--dataset celeba-smiling ...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from real_data import OUT, _submitted, paired_bootstrap  # noqa: E402

from comp import metrics  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", required=True, help="comma-separated runs, stacked")
    parser.add_argument("--against", required=True, help="comma-separated runs, stacked")
    parser.add_argument("--dataset", action="append",
                        help="a dataset real_data.py --recipe finished (default: every one)")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    sets = [tuple(args.runs.split(",")), tuple(args.against.split(","))]
    names = args.dataset or sorted(p.name for p in OUT.iterdir() if (p / "ck").is_dir())
    rows = []
    for name in names:
        ck = OUT / name / "ck"
        missing = [r for s in sets for r in s if not (ck / r / "current" / "run.json").exists()]
        if missing:
            print(f"skipping {name}: no run {missing[0]} in {ck} (run real_data.py --recipe)")
            continue
        answers = pd.read_csv(OUT / name / "answers.csv", dtype={"id": str})
        y = answers["label"].to_numpy()
        preds = []
        for runs in sets:
            pred, seconds, how = _submitted(OUT / name / "ws-comp", ck, runs,
                                            OUT / name / "challenge", answers, args.seed,
                                            "runs-" + "-".join(r.removeprefix("comp-")
                                                               for r in runs))
            preds.append(pred)
            score = metrics.balanced_accuracy(y, pred)
            print(f"{name}: {' + '.join(runs)}: {score:.4f} ({seconds:.0f} s); {how}",
                  flush=True)
            rows.append((name, " + ".join(runs), score, how.split(";")[0], seconds))
        diff, low, high = paired_bootstrap(y, preds[0], preds[1], seed=args.seed)
        print(f"PAIR {name}: {args.runs} minus {args.against}: {diff:+.4f} "
              f"[{low:+.4f}, {high:+.4f}]", flush=True)
    print("\n| dataset | runs | test balanced accuracy | headline | submit (s) |")
    print("|---|---|---|---|---|")
    for name, runs, score, headline, seconds in rows:
        print(f"| {name} | {runs} | {score:.4f} | {headline} | {seconds:.0f} |")


if __name__ == "__main__":
    main()
