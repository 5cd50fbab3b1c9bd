"""Prediction of saved models: uint8 pixels in, probabilities and embeddings out, the flip
averaged in when asked, fold models as members of one prediction."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from comp.submit.predict import Predictions, members_of, predict_models, predict_run


def _saved(tmp_path: Path, seed: int) -> Path:
    import keras

    from comp.train.models import build_model

    keras.utils.set_random_seed(seed)
    model = build_model("logreg", (16, 16, 3), 2, weights="none")
    path = tmp_path / f"m{seed}.keras"
    model.save(path)
    return path


def test_predictions_equal_the_models_own_and_the_flip_is_averaged(tmp_path: Path) -> None:
    import keras

    x = np.random.default_rng(0).integers(0, 256, (10, 16, 16, 3), np.uint8)
    path = _saved(tmp_path, 1)
    model = keras.models.load_model(path)
    direct = np.asarray(model.predict(x.astype(np.float32), verbose=0)).reshape(-1)
    flipped = np.asarray(model.predict(x[:, :, ::-1].astype(np.float32), verbose=0)).reshape(-1)
    plain = predict_run(path, x, batch_size=4)
    np.testing.assert_allclose(plain.prob[:, 1], direct, atol=1e-6)
    np.testing.assert_allclose(plain.prob.sum(axis=1), 1, atol=1e-6)
    assert plain.embedding.shape == (10, 16 * 16)  # logreg's embedding: the flat gray pixels
    both = predict_run(path, x, tta=True, batch_size=3)
    np.testing.assert_allclose(both.prob[:, 1], (direct + flipped) / 2, atol=1e-6)


def test_fold_models_are_members_of_one_prediction(tmp_path: Path) -> None:
    x = np.random.default_rng(1).integers(0, 256, (5, 16, 16, 3), np.uint8)
    paths = [_saved(tmp_path, 1), _saved(tmp_path, 2)]
    preds = predict_models(paths, x)
    one = members_of(preds)
    np.testing.assert_allclose(one.prob, (preds[0].prob + preds[1].prob) / 2)
    assert one.parts() == preds and members_of(preds[:1]) is preds[0]
    assert Predictions(preds[0].prob, preds[0].embedding).parts()[0].prob is preds[0].prob
