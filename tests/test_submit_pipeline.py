"""comp submit and comp evaluate end to end on a tiny trained run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from comp.cli import app
from comp.config import SubmitConfig, TrainConfig
from comp.runs import RunDir
from comp.submit.predict import predict_run
from comp.workspace import Workspace

pytestmark = pytest.mark.backends  # CI runs these under TensorFlow and JAX

runner = CliRunner()


@pytest.fixture(scope="module")
def trained(workspace: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from comp.train import train

    ck = tmp_path_factory.mktemp("ck")
    train(TrainConfig(workspace=workspace, model="b1", epochs=2, batch_size=32, folds=1,
                      checkpoints=ck,
                      run_name="b1", max_images=200, learning_rate=1e-3, progress=False))
    return ck


def test_predict_run_equals_keras_predict(workspace: Path, trained: Path) -> None:
    """Batched prediction (a batch size that does not divide N, flip TTA) equals Keras'."""
    import keras

    from comp.train.models import EMBEDDING

    x = np.asarray(Workspace(workspace).load_store("val"))[:45]
    model = keras.models.load_model(RunDir(trained / "b1").best, compile=False)
    both = keras.Model(model.input, [model.get_layer(EMBEDDING).output, model.output])
    emb, prob = both.predict(x.astype(np.float32), verbose=0)
    flipped = both.predict(x[:, :, ::-1].astype(np.float32), verbose=0)
    pred = predict_run(RunDir(trained / "b1").best, x, batch_size=16)
    np.testing.assert_allclose(pred.prob[:, 1], prob[:, 0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(pred.prob.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(pred.embedding, emb, rtol=1e-5, atol=1e-5)
    tta = predict_run(RunDir(trained / "b1").best, x, tta=True, batch_size=16)
    np.testing.assert_allclose(tta.prob[:, 1], (prob[:, 0] + flipped[1][:, 0]) / 2, rtol=1e-5,
                               atol=1e-6)
    assert predict_run(RunDir(trained / "b1").best, x[:0]).prob.shape == (0, 2)


def _submit(ws: Path, ck: Path, out: Path, *extra: str) -> tuple[int, str]:
    result = runner.invoke(app, ["submit", "-w", str(ws), "--checkpoints", str(ck),
                                 "--submissions", str(out), *extra])
    return result.exit_code, result.output


def test_evaluate_prints_the_table(workspace: Path, trained: Path) -> None:
    result = runner.invoke(app, ["evaluate", "b1", "-w", str(workspace), "--checkpoints",
                                 str(trained)])
    assert result.exit_code == 0, result.output
    assert "| b1 | B1 |" in result.output and RunDir(trained / "b1").confusion.exists()
    saved = json.loads(RunDir(trained / "b1").evaluation.read_text())
    assert sum(map(sum, saved["confusion"])) == saved["images"]


def test_submit_phase1_then_phase2(demo_dir: Path, workspace: Path, trained: Path,
                                   tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    shutil.copytree(workspace, ws, symlinks=True)
    out = tmp_path / "subs"
    code, output = _submit(ws, trained, out)  # default: every run of the workspace
    assert code == 0, output
    lines = output.splitlines()
    assert lines[0].startswith("out-of-fold balanced accuracy ")
    assert any(line.startswith("runs considered: b1") for line in lines)
    csvs = sorted(out.glob("*.csv"))
    assert len(csvs) == 1
    frame = pd.read_csv(csvs[0], dtype=str)
    sample = pd.read_csv(demo_dir / "sample_submission_val.csv", dtype=str)
    assert frame["id"].tolist() == sample["id"].tolist()
    manifest = json.loads(csvs[0].with_suffix(".json").read_text())
    for key in ("runs", "decision", "tta", "leaks", "data_fingerprint", "command"):
        assert key in manifest
    for key in ("threshold", "rule", "candidates", "oof_balanced_accuracy", "images"):
        assert key in manifest["decision"]
    # val is all copies of train, whose labels agree far more often than b1 is right
    check = manifest["leaks"]
    assert check["applied"] in ("evidence", "always") and check["matched"] >= 0.9 * len(frame)
    assert check["expected"]["evidence"] >= check["expected"]["never"]
    assert "expected balanced accuracy on leaked images" in output
    code, output = _submit(ws, trained, out, "--run", "b1", "--profile")
    assert code == 0 and len(list(out.glob("*.csv"))) == 2  # never overwritten
    assert "decision rule: cache lookup" in output and "rule: nested choice" not in output
    code, output = _submit(ws, trained, out, "--run", "b1", "--tta", "off", "--profile")
    assert code == 0, output  # another rule: fitted now, its stages timed
    for stage in ("rule: out-of-fold predictions", "rule: candidates", "rule: nested choice",
                  "rule: the chosen one fitted"):
        assert stage in output, stage
    code, output = _submit(ws, trained, out, "--run", "b1", "--test",
                           str(demo_dir / "phase2/test"), "--tta", "on")
    assert code == 0, output
    latest = json.loads(max(out.glob("*.json"), key=lambda p: p.stat().st_mtime_ns).read_text())
    assert latest["target"] == "test" and latest["tta"] is True
    answers = pd.read_csv(demo_dir / "answers/test.csv", dtype=str, keep_default_na=False)
    assert latest["images"] == len(answers)
    assert latest["leaks"]["matched"] >= (answers["train_id"] != "").sum() - 1
    code, output = _submit(ws, trained, out, "--run", "b1", "--target", "test", "--leaks",
                           "never")
    assert code == 0 and "--leaks never: the model decides them (0 changed)" in output


def test_runs_are_stacked_when_none_is_named(workspace: Path, trained: Path,
                                            tmp_path: Path) -> None:
    from comp.submit import submit
    from comp.train import train

    ck = tmp_path / "ck"
    shutil.copytree(trained / "b1", ck / "b1", symlinks=True)
    train(TrainConfig(workspace=workspace, model="b1", epochs=1, batch_size=32, folds=1,
                      checkpoints=ck, run_name="other", max_images=200, seed=5,
                      learning_rate=1e-3, progress=False))
    result = submit(SubmitConfig(workspace=workspace, checkpoints=ck, tta="off",
                                 submissions=tmp_path / "subs"))
    d = result.decision
    assert d.considered == ["b1", "other"]
    names = [c.name for c in d.candidates]
    assert names == ["b1", "other", "b1 LightGBM", "other LightGBM", "stack of 2 runs"]
    assert d.candidate in names and set(d.runs) <= {"b1", "other"}
    assert d.oof_balanced_accuracy <= max(c.balanced_accuracy for c in d.candidates) + 0.05


def test_submit_bad_inputs(demo_dir: Path, workspace: Path, workspace4: Path, trained: Path,
                           tmp_path: Path) -> None:
    code, output = _submit(workspace, trained, tmp_path, "--run", "nope")
    assert code == 1 and "run 'nope' not found" in output
    code, output = _submit(workspace4, trained, tmp_path, "--run", "b1")
    assert code == 1 and "trained on other data" in output
    bad_sample = tmp_path / "sample.csv"
    bad_sample.write_text("id,label\nzzz,0\n")
    code, output = _submit(workspace, trained, tmp_path, "--run", "b1", "--sample",
                           str(bad_sample))
    assert code == 1 and "sample submission does not match" in output
    assert [p.name for p in tmp_path.glob("*.csv")] == ["sample.csv"]
    odd = tmp_path / "odd"
    odd.mkdir()
    for k in range(3):
        Image.new("RGB", (40, 40), (k, k, k)).save(odd / f"t{k}.png")
    ws = tmp_path / "ws"
    shutil.copytree(workspace, ws, symlinks=True)
    code, output = _submit(ws, trained, tmp_path, "--run", "b1", "--test", str(odd))
    assert code == 1 and "image is 40x40 but the training images were 32x32" in output
    code, output = _submit(ws, trained, tmp_path / "s", "--run", "b1", "--test", str(odd),
                           "--on-size-mismatch", "resize")
    assert code == 0, output


def test_four_classes_use_argmax(workspace4: Path, tmp_path: Path) -> None:
    from comp.submit import submit
    from comp.train import train

    train(TrainConfig(workspace=workspace4, model="b1", epochs=1, batch_size=32, folds=1,
                      checkpoints=tmp_path, run_name="four", progress=False))
    manifest = submit(SubmitConfig(workspace=workspace4, runs=("four",), checkpoints=tmp_path,
                                   submissions=tmp_path / "subs", folds=3)).manifest
    assert manifest.decision.threshold is None
    assert manifest.decision.rule in ("arg-max", "offsets")
    frame = pd.read_csv(manifest.csv, dtype=str)
    assert set(frame["label"]) <= {"plain", "glasses", "smile", "glasses_smile"}
