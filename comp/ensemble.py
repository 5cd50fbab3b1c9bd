"""CNN predictions and embeddings, and the LightGBM stacker fitted out-of-fold on the holdout.

Discipline: every probability used to choose between models or to tune a threshold comes from a
model that did not see that image. The CNNs never trained on the holdout split; LightGBM and the
threshold are fitted on holdout folds and scored on the fold left out (duplicate and identity
groups never straddle two folds).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from comp import metrics


@dataclass
class Predictions:
    prob: np.ndarray  # (N,) for two classes (probability of class 1), else (N, K)
    embedding: np.ndarray  # (N, 512 * runs)


def predict_run(model_path: Path, x: np.ndarray, tta: bool = False,
                batch_size: int = 512) -> Predictions:
    """Probabilities and penultimate-layer embeddings of one saved model, batched.

    With `tta`, the horizontally flipped image is predicted too and both are averaged.
    """
    import keras

    from comp.models import EMBEDDING
    from comp.training import make_dataset

    model = keras.models.load_model(model_path, compile=False)
    both = keras.Model(model.input, [model.get_layer(EMBEDDING).output, model.output])
    if len(x) == 0:
        width = model.get_layer(EMBEDDING).output.shape[-1]
        return Predictions(np.zeros(0, np.float32), np.zeros((0, width), np.float32))
    pixels = np.asarray(x)

    def run(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # a compiled predict over the same uint8 -> float32 pipeline as training
        data = make_dataset(images, np.zeros(len(images), np.int64), 2, batch_size,
                            shuffle=False, augment=False, seed=0)
        emb, prob = both.predict(data, verbose=0)
        return np.asarray(emb, np.float32), np.asarray(prob, np.float32)

    emb, prob = run(pixels)
    if tta:
        emb2, prob2 = run(np.ascontiguousarray(pixels[:, :, ::-1]))
        emb, prob = (emb + emb2) / 2, (prob + prob2) / 2
    return Predictions(prob[:, 0] if prob.shape[1] == 1 else prob, emb)


def combine(preds: list[Predictions]) -> Predictions:
    """Several runs: mean probability, concatenated embeddings."""
    return Predictions(np.mean([p.prob for p in preds], axis=0),
                       np.concatenate([p.embedding for p in preds], axis=1))


def stack_features(pred: Predictions) -> np.ndarray:
    """LightGBM's inputs: the embeddings plus the CNN's own probability (stacking)."""
    prob = pred.prob.reshape(len(pred.prob), -1)
    return np.concatenate([pred.embedding, prob], axis=1)


def lgbm_params(num_classes: int, seed: int) -> dict[str, Any]:
    params: dict[str, Any] = {"n_estimators": 300, "learning_rate": 0.05, "num_leaves": 15,
              "min_child_samples": 20, "subsample": 0.8, "subsample_freq": 1,
              "colsample_bytree": 0.5, "reg_lambda": 1.0, "random_state": seed,
              "n_jobs": 2, "verbose": -1}
    if num_classes == 2:
        params["objective"] = "binary"
        params["is_unbalance"] = True  # the score is balanced accuracy
    else:
        params["objective"] = "multiclass"
        params["class_weight"] = "balanced"
    return params


def fit_lgbm(features: np.ndarray, y: np.ndarray, num_classes: int, seed: int):
    from lightgbm import LGBMClassifier

    model = LGBMClassifier(**lgbm_params(num_classes, seed))
    model.fit(features, y)
    return model


def lgbm_prob(model, features: np.ndarray, num_classes: int) -> np.ndarray:
    prob = model.predict_proba(features)
    return prob[:, 1] if num_classes == 2 else prob


def oof_lgbm(features: np.ndarray, y: np.ndarray, folds: np.ndarray, num_classes: int,
             seed: int) -> np.ndarray:
    """Out-of-fold LightGBM probabilities: fold k is predicted by a model fitted without it."""
    out = np.zeros((len(y),) if num_classes == 2 else (len(y), num_classes), np.float64)
    for k in np.unique(folds):
        test = folds == k
        model = fit_lgbm(features[~test], y[~test], num_classes, seed)
        out[test] = lgbm_prob(model, features[test], num_classes)
    return out


def oof_decisions(prob: np.ndarray, y: np.ndarray, folds: np.ndarray,
                  num_classes: int) -> np.ndarray:
    """Out-of-fold class decisions: the threshold applied to fold k is tuned on the others
    (arg-max for more than two classes)."""
    if num_classes != 2:
        return np.asarray(prob).argmax(axis=1)
    pred = np.zeros(len(y), np.int64)
    for k in np.unique(folds):
        test = folds == k
        if len(np.unique(y[~test])) < 2:
            threshold = 0.5
        else:
            threshold, _ = metrics.best_threshold(y[~test], prob[~test])
        pred[test] = prob[test] >= threshold
    return pred
