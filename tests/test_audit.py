"""Label audit (cleanlab on out-of-fold probabilities) and acting on it in prepare."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from comp.audit import find_suspects, normalised
from comp.cli import app
from comp.config import PrepareConfig
from comp.errors import CompError
from comp.prepare import prepare
from comp.workspace import Workspace

runner = CliRunner()


def test_planted_flips_are_found_first() -> None:
    """400 images of two classes whose model is confident and right; 20 labels flipped on
    purpose: every suspect is a flip (cleanlab's pruning keeps to the estimated noise, so it
    may leave a few out), the flips score lowest, the noise estimate is about 20/400."""
    rng = np.random.default_rng(0)
    truth = np.arange(400) % 2
    p1 = np.where(truth == 1, rng.uniform(0.85, 0.99, 400), rng.uniform(0.01, 0.15, 400))
    given = truth.copy()
    flipped = rng.choice(400, 20, replace=False)
    given[flipped] = 1 - given[flipped]
    probs = normalised(p1)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    ranked, scores, joint = find_suspects(given, probs, rank_by="self_confidence")
    assert set(ranked.tolist()) <= set(flipped.tolist()) and len(ranked) >= 15
    assert scores[flipped].max() < scores[np.setdiff1d(np.arange(400), flipped)].min()
    assert (np.diff(scores[ranked]) >= 0).all()  # most likely wrong first
    noise = 1 - np.diag(joint) / joint.sum(axis=1)
    np.testing.assert_allclose(noise, 0.05, atol=0.03)


@pytest.fixture(scope="module")
def audited(demo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A freshly prepared copy of the demo, a 5-fold b1 run on it (1 epoch), its audit."""
    root = tmp_path_factory.mktemp("audit")
    ws, ck = root / "ws", root / "ck"
    prepare(PrepareConfig(challenge=demo_dir, workspace=ws, workers=2))
    for args in (["train", "-w", str(ws), "--model", "b1", "--epochs", "1", "--checkpoints",
                  str(ck), "--name", "folds", "--batch-size", "32"],
                 ["audit", "folds", "-w", str(ws), "--checkpoints", str(ck)]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
    assert "likely mislabelled" in result.output
    return ws, ck / "folds" / "audit"


def test_audit_files(audited: tuple[Path, Path]) -> None:
    ws, folder = audited
    frame = pd.read_csv(folder / "audit.csv", dtype={"id": str, "near_duplicates": str})
    assert list(frame.columns) == ["rank", "id", "given_label", "suggested_label", "score",
                                   "p_given", "p_suggested", "near_duplicates"]
    assert len(frame) > 0 and (frame["rank"] == np.arange(1, len(frame) + 1)).all()
    labelled = Workspace(ws).labelled()
    assert set(frame["id"]) <= set(labelled["id"].astype(str))
    relabel = pd.read_csv(folder / "relabel.csv", dtype=str)
    assert list(relabel.columns) == ["id", "label"] and len(relabel) == len(frame)
    assert (folder / "suspects.png").stat().st_size > 1000
    assert "estimated noise rate" in (folder / "summary.md").read_text()


def test_exclude_and_relabel_make_new_data(audited: tuple[Path, Path], demo_dir: Path,
                                           tmp_path: Path) -> None:
    ws, folder = audited
    before = Workspace(ws).load_meta().fingerprint
    ids = pd.read_csv(folder / "audit.csv", dtype={"id": str})["id"].tolist()[:3]
    (tmp_path / "drop.csv").write_text("id\n" + "\n".join(ids) + "\n")
    dropped = prepare(PrepareConfig(challenge=demo_dir, workspace=tmp_path / "a", workers=2,
                                    exclude=tmp_path / "drop.csv"))
    index = Workspace(tmp_path / "a").load_index()
    assert dropped.summary.excluded == 3 and not set(ids) & set(index["id"].astype(str))
    labels = pd.read_csv(demo_dir / "train.csv", dtype=str).set_index("id")["label"]
    flip = {i: "1" if labels[i] == "0" else "0" for i in ids}
    (tmp_path / "flip.csv").write_text("id,label\n" + "".join(
        f"{i},{v}\n" for i, v in flip.items()))
    relabelled = prepare(PrepareConfig(challenge=demo_dir, workspace=tmp_path / "b", workers=2,
                                       relabel=tmp_path / "flip.csv"))
    rows = Workspace(tmp_path / "b").load_index().set_index("id")
    assert relabelled.summary.relabelled == 3
    assert [str(rows.loc[i, "original_label"]) for i in ids] == [flip[i] for i in ids]
    prints = {before, Workspace(tmp_path / "a").load_meta().fingerprint,
              Workspace(tmp_path / "b").load_meta().fingerprint}
    assert len(prints) == 3  # runs on the old labels are never mixed with the new


def test_corrections_refuse_unknown_ids_and_classes(demo_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("id\nnot-an-id\n")
    with pytest.raises(CompError, match=r"x.csv: 1 id\(s\) of --exclude are not training "
                       r"images \('not-an-id'\)"):
        prepare(PrepareConfig(challenge=demo_dir, workspace=tmp_path / "w",
                              exclude=tmp_path / "x.csv"))
    first = pd.read_csv(demo_dir / "train.csv", dtype=str)["id"].iloc[0]
    (tmp_path / "y.csv").write_text(f"id,label\n{first},purple\n")
    with pytest.raises(CompError, match="label 'purple' is not one of the classes"):
        prepare(PrepareConfig(challenge=demo_dir, workspace=tmp_path / "w",
                              relabel=tmp_path / "y.csv"))
    assert not (tmp_path / "w").exists() or not Workspace(tmp_path / "w").is_prepared()


def test_audit_of_a_one_model_run_says_what_it_needs(workspace: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", "-w", str(workspace), "--model", "logreg",
                                 "--epochs", "1", "--checkpoints", str(tmp_path), "--name",
                                 "one", "--folds", "1"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["audit", "one", "-w", str(workspace), "--checkpoints",
                                 str(tmp_path)])
    assert result.exit_code == 1 and result.output.startswith(
        "error: run one is one model on the train split: an audit needs an out-of-fold "
        "probability for every training image")
