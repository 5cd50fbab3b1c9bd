"""comp evaluate / submit: threshold search, out-of-fold discipline, leaks, CSV and manifest."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.metrics import balanced_accuracy_score
from typer.testing import CliRunner

from comp import ensemble, leaks, metrics, submission
from comp.cli import app
from comp.config import SubmitConfig, TrainConfig
from comp.errors import CompError

runner = CliRunner()


# -- threshold ----------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1, 2])
def test_threshold_search_equals_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = (rng.random(400) < 0.3).astype(int)
    prob = np.round(np.clip(0.3 * y + rng.normal(0.4, 0.2, 400), 0, 1), 2)  # many ties
    thresholds, scores = metrics.threshold_scores(y, prob)
    for t, s in zip(thresholds, scores, strict=True):
        assert s == pytest.approx(balanced_accuracy_score(y, prob >= t), abs=1e-12)
    brute = max(balanced_accuracy_score(y, prob >= t) for t in [*np.unique(prob), np.inf])
    value, score = metrics.best_threshold(y, prob)
    assert score == pytest.approx(brute, abs=1e-12)
    assert balanced_accuracy_score(y, prob >= value) == pytest.approx(brute, abs=1e-12)
    tuned = metrics.tune_threshold(y, prob, boots=50)
    assert tuned.score_at_half == pytest.approx(balanced_accuracy_score(y, prob >= 0.5))
    assert tuned.spread >= 0 and tuned.score >= tuned.score_at_half


def test_threshold_by_hand() -> None:
    y = np.array([0, 0, 1, 1, 1])
    prob = np.array([0.1, 0.4, 0.35, 0.8, 0.9])
    # t=0.35 -> tp 3/3, tn 1/2 -> 0.75; t=0.8 -> tp 2/3, tn 2/2 -> 0.8333 (best)
    value, score = metrics.best_threshold(y, prob)
    assert score == pytest.approx(5 / 6)
    assert value == pytest.approx((0.4 + 0.8) / 2)


# -- out-of-fold discipline --------------------------------------------------------------------

def test_lightgbm_probabilities_are_out_of_fold(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    n = 300
    ids = np.arange(n, dtype=float)
    y = (rng.random(n) < 0.4).astype(int)
    features = np.column_stack([ids, y + rng.normal(0, 1, n), rng.normal(0, 1, (n, 3))])
    folds = np.repeat(np.arange(5), n // 5)
    seen: list[set[int]] = []
    real_fit = ensemble.fit_lgbm

    def spy(x, yy, k, seed):
        seen.append(set(x[:, 0].astype(int)))
        return real_fit(x, yy, k, seed)

    monkeypatch.setattr(ensemble, "fit_lgbm", spy)
    ensemble.oof_lgbm(features, y, folds, 2, 0)
    assert len(seen) == 5
    for k, trained_on in enumerate(seen):
        assert trained_on.isdisjoint(set(np.nonzero(folds == k)[0]))
        assert len(trained_on) == n - (folds == k).sum()


def test_thresholds_are_tuned_out_of_fold(monkeypatch: pytest.MonkeyPatch) -> None:
    y = np.array([0, 1] * 50)
    prob = np.linspace(0, 1, 100)
    folds = np.arange(100) % 4
    calls: list[int] = []
    real = metrics.best_threshold
    monkeypatch.setattr(metrics, "best_threshold",
                        lambda yy, pp: (calls.append(len(yy)), real(yy, pp))[1])
    ensemble.oof_decisions(prob, y, folds, 2)
    assert calls == [75, 75, 75, 75]


# -- leaks --------------------------------------------------------------------------------------

def test_override_by_hand() -> None:
    pred = np.array([0, 1, 1, 0])
    inherited = np.array([-1, 0, 1, 1])
    out, overridden, changed = leaks.override(pred, inherited)
    assert out.tolist() == [0, 0, 1, 1] and overridden == 3 and changed == 2


def test_match_label_accuracy_by_hand() -> None:
    index = pd.DataFrame({"source": "train", "original_label": [1, 1, 0, 1, 0, 0],
                          "label": [1, 1, 0, 1, 0, 0], "group": [0, 0, 2, 2, 4, 5],
                          "kept": [True, False, False, False, True, True],
                          "split": ["holdout", "duplicate", "conflict", "conflict", "train",
                                    "holdout"]})
    pairs = pd.DataFrame({"i": [0, 2], "j": [1, 3]})
    # pair (0,1) agrees, pair (2,3) conflicts: 4 images, 2 right
    assert leaks.match_label_accuracy(index, pairs) == (0.5, 4)
    assert leaks.match_label_accuracy(index, pairs, "holdout") == (1.0, 2)


def test_every_planted_leak_is_overridden_and_none_else(demo_dir: Path, workspace: Path,
                                                        tmp_path: Path) -> None:
    from comp.config import PrepareConfig
    from comp.prepare import prepare

    ws = tmp_path / "ws"
    shutil.copytree(workspace, ws)
    prepare(PrepareConfig(workspace=ws, test=demo_dir / "phase2/test", workers=1))
    overlap = pd.read_csv(ws / "overlap.csv", dtype={"id": str})
    answers = pd.read_csv(demo_dir / "answers/test.csv", dtype=str, keep_default_na=False)
    inherited = leaks.leak_labels(overlap, "test", answers["id"].tolist())
    planted = (answers["train_id"] != "").to_numpy()
    copies = pd.read_csv(demo_dir / "answers/train_copies.csv", dtype=str)
    conflicted = set(copies[copies["kind"] == "conflict"]["original_id"])
    ambiguous = answers["train_id"].isin(conflicted).to_numpy()
    assert (inherited[planted & ~ambiguous] >= 0).all()
    assert (inherited[~planted] == -1).all()
    assert (inherited[planted & ~ambiguous] ==
            answers["label"][planted & ~ambiguous].astype(int)).all()


# -- CSV ----------------------------------------------------------------------------------------

def test_csv_follows_the_sample_and_validates(tmp_path: Path) -> None:
    sample = pd.DataFrame({"Id": ["c", "a", "b"], "Category": ["0", "0", "0"]})
    frame = submission.build_frame(["a", "b", "c"], ["1", "0", "1"], sample, "Id", "Category")
    assert frame.columns.tolist() == ["Id", "Category"]
    assert frame["Id"].tolist() == ["c", "a", "b"] and frame["Category"].tolist() == ["1", "1", "0"]
    submission.validate(frame, ["a", "b", "c"], ["0", "1"], "Id", "Category")
    with pytest.raises(CompError, match="sample submission does not match"):
        submission.build_frame(["a", "b"], ["1", "0"], sample, "Id", "Category")
    with pytest.raises(CompError, match="more than once"):
        submission.validate(pd.DataFrame({"id": ["a", "a"], "label": ["0", "1"]}), ["a"],
                            ["0", "1"], "id", "label")
    with pytest.raises(CompError, match="1 missing, 1 extra"):
        submission.validate(pd.DataFrame({"id": ["a", "x"], "label": ["0", "1"]}), ["a", "b"],
                            ["0", "1"], "id", "label")
    with pytest.raises(CompError, match="label '2' is not one of"):
        submission.validate(pd.DataFrame({"id": ["a"], "label": ["2"]}), ["a"], ["0", "1"],
                            "id", "label")


# -- the whole command --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained(workspace: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from comp.training import train

    ck = tmp_path_factory.mktemp("ck")
    train(TrainConfig(workspace=workspace, model="b1", epochs=2, batch_size=32, checkpoints=ck,
                      run_name="b1", max_images=200, learning_rate=1e-3, verbose=False))
    return ck


def test_predict_run_equals_keras_predict(workspace: Path, trained: Path) -> None:
    """Batched prediction (a batch size that does not divide N, flip TTA) equals Keras'."""
    import keras

    from comp.images import load_store
    from comp.models import EMBEDDING

    x = np.asarray(load_store(workspace / "images-val.npy"))[:45]
    model = keras.models.load_model(trained / "b1" / "best.keras", compile=False)
    both = keras.Model(model.input, [model.get_layer(EMBEDDING).output, model.output])
    emb, prob = both.predict(x.astype(np.float32), verbose=0)
    flipped = both.predict(x[:, :, ::-1].astype(np.float32), verbose=0)
    pred = ensemble.predict_run(trained / "b1" / "best.keras", x, batch_size=16)
    np.testing.assert_allclose(pred.prob, prob[:, 0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(pred.embedding, emb, rtol=1e-5, atol=1e-5)
    tta = ensemble.predict_run(trained / "b1" / "best.keras", x, tta=True, batch_size=16)
    np.testing.assert_allclose(tta.prob, (prob[:, 0] + flipped[1][:, 0]) / 2, rtol=1e-5,
                               atol=1e-6)
    assert ensemble.predict_run(trained / "b1" / "best.keras", x[:0]).prob.shape == (0,)


def _submit(ws: Path, ck: Path, out: Path, *extra: str) -> tuple[int, str]:
    result = runner.invoke(app, ["submit", "-w", str(ws), "--checkpoints", str(ck),
                                 "--submissions", str(out), *extra])
    return result.exit_code, result.output


def test_evaluate_prints_the_table(workspace: Path, trained: Path) -> None:
    result = runner.invoke(app, ["evaluate", "b1", "-w", str(workspace), "--checkpoints",
                                 str(trained)])
    assert result.exit_code == 0, result.output
    assert "| b1 | B1 |" in result.output and (trained / "b1" / "confusion.png").exists()
    saved = json.loads((trained / "b1" / "holdout.json").read_text())
    assert sum(map(sum, saved["confusion"])) == saved["holdout_images"]


def test_submit_phase1_then_phase2(demo_dir: Path, workspace: Path, trained: Path,
                                   tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    shutil.copytree(workspace, ws)
    out = tmp_path / "subs"
    code, output = _submit(ws, trained, out)  # default run: the best by holdout score
    assert code == 0, output
    csvs = sorted(out.glob("*.csv"))
    assert len(csvs) == 1
    frame = pd.read_csv(csvs[0], dtype=str)
    sample = pd.read_csv(demo_dir / "sample_submission_val.csv", dtype=str)
    assert frame["id"].tolist() == sample["id"].tolist()
    manifest = json.loads(csvs[0].with_suffix(".json").read_text())
    for key in ("runs", "threshold", "ensemble", "tta", "leaks", "holdout", "data_fingerprint",
                "command"):
        assert key in manifest
    assert manifest["leaks"]["overridden"] >= 0.9 * len(frame)  # val is all copies of train
    code, output = _submit(ws, trained, out, "--run", "b1")
    assert code == 0 and len(list(out.glob("*.csv"))) == 2  # never overwritten
    code, output = _submit(ws, trained, out, "--run", "b1", "--test",
                           str(demo_dir / "phase2/test"), "--tta")
    assert code == 0, output
    latest = json.loads(max(out.glob("*.json"), key=lambda p: p.stat().st_mtime_ns).read_text())
    assert latest["target"] == "test" and latest["tta"] is True
    answers = pd.read_csv(demo_dir / "answers/test.csv", dtype=str, keep_default_na=False)
    assert latest["images"] == len(answers)
    assert latest["leaks"]["overridden"] >= (answers["train_id"] != "").sum() - 1


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
    shutil.copytree(workspace, ws)
    code, output = _submit(ws, trained, tmp_path, "--run", "b1", "--test", str(odd))
    assert code == 1 and "images are 40x40 but the training images were 32x32" in output
    code, output = _submit(ws, trained, tmp_path / "s", "--run", "b1", "--test", str(odd),
                           "--on-size-mismatch", "resize")
    assert code == 0, output


def test_four_classes_use_argmax(workspace4: Path, tmp_path: Path) -> None:
    from comp.submit import submit
    from comp.training import train

    train(TrainConfig(workspace=workspace4, model="b1", epochs=1, batch_size=32,
                      checkpoints=tmp_path, run_name="four", verbose=False))
    manifest = submit(SubmitConfig(workspace=workspace4, runs=("four",), checkpoints=tmp_path,
                                   submissions=tmp_path / "subs", folds=3))
    assert manifest["threshold"] is None
    frame = pd.read_csv(manifest["csv"], dtype=str)
    assert set(frame["label"]) <= {"plain", "glasses", "smile", "glasses_smile"}


def test_demo_command_runs_end_to_end(tmp_path: Path) -> None:
    result = runner.invoke(app, ["demo", "--out", str(tmp_path / "demo"), "--train", "600",
                                 "--epochs", "1"])
    assert result.exit_code == 0, result.output
    assert "phase-2 balanced accuracy against the demo's answers" in result.output
    assert len(list((tmp_path / "demo" / "submissions").glob("*.csv"))) == 3
