"""comp demo end to end: the default path (one res per fold, the out-of-fold rule, phase 2)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from comp.cli import app

runner = CliRunner()


def test_demo_runs_the_default_path_and_submits_what_the_rule_says(tmp_path: Path) -> None:
    from comp.config import Leaks
    from comp.runs import RunDir
    from comp.submit import leaks
    from comp.submit.pipeline import leak_decisions, predict_rule
    from comp.submit.rule import last_rule
    from comp.workspace import Workspace

    out = tmp_path / "demo"
    result = runner.invoke(app, ["demo", "--out", str(out), "--train", "3000", "--epochs", "8"])
    assert result.exit_code == 0, result.output
    assert "5 fold models" in result.output and "out-of-fold balanced accuracy" in result.output
    answers = pd.read_csv(out / "challenge" / "answers" / "test.csv", dtype=str)
    manifests = sorted((out / "submissions").glob("*.json"),
                       key=lambda p: json.loads(p.read_text())["created"])
    assert len(manifests) == 3  # phase 1, phase 2, phase 2 without the leak override
    phase2 = json.loads(manifests[1].read_text())
    csv = pd.read_csv(phase2["csv"], dtype=str)
    truth = answers.set_index("id").loc[csv["id"], "label"].to_numpy()
    per_class = [np.mean(csv["label"].to_numpy()[truth == c] == c) for c in ("0", "1")]
    assert np.mean(per_class) > 0.65  # chance is 0.5

    # the CSV holds the rule's labels, except where the leak override gave the copy's label
    ws, checkpoints = Workspace(out / "workspace"), out / "checkpoints"
    run_dir = RunDir(checkpoints / "res-demo")
    assert run_dir.load_record().folds == 5
    saved = last_rule(run_dir, checkpoints, fingerprint=ws.load_meta().fingerprint)
    assert saved is not None
    decision, folder = saved
    index = ws.load_index()
    rows = index[index["source"] == "test"].sort_values("row")
    prob, labels = predict_rule(decision, folder, checkpoints, ws.load_store("test"))
    ids = rows["id"].astype(str).tolist()
    labels = leak_decisions(Leaks(phase2["leaks"]["applied"]), decision, prob, labels,
                            leaks.leak_labels(ws.load_overlap(), "test", ids, index),
                            agreement=phase2["leaks"]["agreement"])
    expected = pd.Series([decision.classes[k] for k in labels], index=ids)
    assert (csv.set_index("id")["label"] == expected.loc[csv["id"]]).all()
