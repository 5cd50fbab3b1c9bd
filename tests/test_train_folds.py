"""Cross-fitted runs: one model per prepared fold, each blind to its fold; out-of-fold
predictions for every labelled image; the decision rule fitted on them; fold models averaged
on new images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from comp.config import SubmitConfig, TrainConfig
from comp.errors import CompError
from comp.runs import RunDir
from comp.workspace import Workspace

pytestmark = pytest.mark.backends  # CI runs these under TensorFlow and JAX


def _pixels_key(x: np.ndarray) -> set[bytes]:
    return {image.tobytes() for image in np.asarray(x)}


@pytest.fixture(scope="module")
def fold_run(workspace: Path, tmp_path_factory: pytest.TempPathFactory
             ) -> tuple[Path, list[tuple[np.ndarray, np.ndarray]]]:
    """A 5-fold b1 run (1 epoch), with what each fit received: (train pixels, val pixels)."""
    import comp.train.data as data
    from comp.train import train

    ck = tmp_path_factory.mktemp("folds")
    seen: list[tuple[bool, np.ndarray]] = []
    real = data.make_batches

    def spy(x: np.ndarray, y: np.ndarray, **kw):  # type: ignore[no-untyped-def]
        seen.append((kw["shuffle"], np.array(x)))
        return real(x, y, **kw)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(data, "make_batches", spy)
        record = train(TrainConfig(workspace=workspace, model="b1", epochs=1, batch_size=32,
                                   checkpoints=ck, run_name="f", progress=False))
    assert record.folds == 5 and record.folds_done == 5 and record.status == "finished"
    fits = [(seen[i][1], seen[i + 1][1]) for i in range(0, len(seen), 2)]
    assert [seen[i][0] for i in range(0, len(seen), 2)] == [True] * 5  # train, then val
    return ck, fits


def test_a_fold_model_never_sees_its_fold(workspace: Path, fold_run) -> None:
    ck, fits = fold_run
    ws = Workspace(workspace)
    rows = ws.labelled()
    store = ws.load_store("train")
    assert len(fits) == 5
    everything = _pixels_key(store[rows["row"].to_numpy()])
    for k, (x_train, x_val) in enumerate(fits):
        own = _pixels_key(store[rows.loc[rows["fold"] == k, "row"].to_numpy()])
        train_keys, val_keys = _pixels_key(x_train), _pixels_key(x_val)
        assert not own & train_keys and not own & val_keys  # neither fits nor chooses
        assert not train_keys & val_keys  # the inner slice is apart from what it fits
        assert train_keys | val_keys | own == everything  # every other label is used
        assert 0.07 < len(x_val) / (len(x_train) + len(x_val)) < 0.13  # 1/10 of the rest
        assert RunDir(ck / "f").fold(k).best.exists()


def test_out_of_fold_predictions_come_from_the_blind_model(workspace: Path, fold_run) -> None:
    from comp.submit.evaluate import holdout_predictions
    from comp.submit.predict import predict_run

    ck, _ = fold_run
    ws = Workspace(workspace)
    index = ws.load_index()
    rows = ws.labelled(index)
    run_dir = RunDir(ck / "f")
    pred = holdout_predictions(ws, index, run_dir, tta=False,
                               fingerprint=ws.load_meta().fingerprint)
    assert pred.prob.shape == (len(rows), 2)
    store = ws.load_store("train")
    for k in range(5):
        here = (rows["fold"] == k).to_numpy()
        own = predict_run(run_dir.fold(k).best, store[rows["row"].to_numpy()[here]])
        np.testing.assert_allclose(pred.prob[here], own.prob, rtol=1e-5, atol=1e-6)
        other = predict_run(run_dir.fold((k + 1) % 5).best,
                            store[rows["row"].to_numpy()[here]])
        assert not np.allclose(pred.prob[here], other.prob)  # a different model


def test_submit_fits_on_every_label_and_averages_the_folds(workspace: Path, demo_dir: Path,
                                                           fold_run, tmp_path: Path) -> None:
    from comp.metrics import balanced_accuracy
    from comp.submit import submit
    from comp.submit.evaluate import predict_new
    from comp.submit.predict import predict_run
    from comp.submit.rule import load_oof

    ck, _ = fold_run
    result = submit(SubmitConfig(workspace=workspace, runs=("f",), checkpoints=ck,
                                 submissions=tmp_path, ensemble=False))
    ws = Workspace(workspace)
    index = ws.load_index()
    rows = ws.labelled(index)
    d = result.decision
    assert d.cross_fitted and d.images == len(rows) and d.folds == 5 and d.members == 5
    assert {c.name for c in d.candidates} == {"f", "f +flip"}  # --tta auto: both compete
    folder = RunDir(ck / "f").path / "submit"
    saved = load_oof(next(p for p in folder.iterdir() if p.is_dir()))
    assert saved is not None
    ids, _, decided = saved
    assert list(ids) == rows["id"].astype(str).tolist()
    y = rows["label"].to_numpy()
    assert d.oof_balanced_accuracy == pytest.approx(balanced_accuracy(y, decided))
    # new images: the mean of the five fold models' probabilities, each a member
    x = ws.load_store("val")
    pred = predict_new(RunDir(ck / "f"), x, tta=d.tta)
    singles = [predict_run(RunDir(ck / "f").fold(k).best, x, tta=d.tta).prob
               for k in range(5)]
    assert len(pred.members) == 5
    np.testing.assert_allclose(pred.prob, np.mean(singles, axis=0), rtol=1e-5, atol=1e-6)
    assert result.manifest.images == len(x)


def test_fold_count_must_match_the_workspace(workspace: Path, tmp_path: Path) -> None:
    from comp.train import train

    with pytest.raises(CompError, match="prepared with 5 folds; pass --folds 5"):
        train(TrainConfig(workspace=workspace, model="b1", epochs=1, folds=3,
                          checkpoints=tmp_path, progress=False))
    assert not list(tmp_path.iterdir())  # nothing half-made


def test_mixing_fold_and_one_model_runs_is_refused(workspace: Path, fold_run,
                                                    tmp_path: Path) -> None:
    import shutil

    from comp.submit import submit
    from comp.train import train

    ck, _ = fold_run
    shutil.copytree(ck / "f", tmp_path / "f")
    train(TrainConfig(workspace=workspace, model="b1", epochs=1, folds=1, max_images=64,
                      checkpoints=tmp_path, run_name="one", progress=False))
    with pytest.raises(CompError, match="mix cross-fitted and one-model runs"):
        submit(SubmitConfig(workspace=workspace, runs=("f", "one"), checkpoints=tmp_path,
                            submissions=tmp_path / "subs"))


def test_cosine_schedule_warms_up_then_decays_to_zero(workspace: Path, tmp_path: Path) -> None:
    import pandas as pd

    from comp.train import train

    run = train(TrainConfig(workspace=workspace, model="res", epochs=3, folds=1,
                            max_images=96, batch_size=32, learning_rate=0.01,
                            checkpoints=tmp_path, progress=False))
    lr = pd.read_csv(RunDir(tmp_path / run.run).history)["lr"].to_numpy()
    # after epoch 1 (3 steps of warm-up) the peak; then cosine over the 6 remaining steps:
    # after step 6 of 9, 0.01 * (1 + cos(pi * 3 / 6)) / 2 = 0.005; after the last step 0
    np.testing.assert_allclose(lr, [0.01, 0.005, 0.0], atol=1e-6)
    with pytest.raises(CompError, match="cosine schedule planned for 3 epochs"):
        train(TrainConfig(checkpoints=tmp_path, resume=run.run, epochs=5, progress=False))


def test_an_unfinished_fold_run_is_refused_by_name(workspace: Path, fold_run,
                                                   tmp_path: Path) -> None:
    """A run killed before its last fold started has four fold folders: it is named as
    unfinished (with the command that finishes it), never used with four models."""
    import shutil

    from comp.submit import submit

    ck, _ = fold_run
    shutil.copytree(ck / "f", tmp_path / "f")
    shutil.rmtree(tmp_path / "f" / "fold-4")
    with pytest.raises(CompError, match=r"no best checkpoint yet \(fold-4\); finish it with "
                                        r"`comp train --resume f`"):
        submit(SubmitConfig(workspace=workspace, runs=("f",), checkpoints=tmp_path,
                            submissions=tmp_path / "subs"))
