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
from tqdm import tqdm

from comp import metrics


@dataclass
class Predictions:
    prob: np.ndarray  # (N,) for two classes (probability of class 1), else (N, K)
    embedding: np.ndarray  # (N, 512 * runs)


def predict_run(model_path: Path, x: np.ndarray, tta: bool = False,
                batch_size: int | None = None, desc: str = "predict") -> Predictions:
    """Probabilities and penultimate-layer embeddings of one saved model, batched, with a
    progress bar.

    With `tta`, the horizontally flipped image is predicted too and both are averaged.
    Batches of 128 on a CPU (measured on 2 cores: 2,400 images/s against 1,550 for
    Keras' `predict` at 512: the activations of a small batch stay in the caches), 1024 on
    an accelerator.
    """
    import keras
    import tensorflow as tf

    from comp.models import EMBEDDING

    model = keras.models.load_model(model_path, compile=False)
    both = keras.Model(model.input, [model.get_layer(EMBEDDING).output, model.output])
    if batch_size is None:
        batch_size = 1024 if tf.config.list_physical_devices("GPU") else 128

    @tf.function(autograph=False, reduce_retracing=True)
    def step(pixels: Any) -> Any:  # uint8 in, the same float32 cast as training
        return both(tf.cast(pixels, tf.float32), training=False)

    passes = [False, True] if tta else [False]
    # per pass, the batches of each output (embedding, probability)
    parts: list[tuple[list[np.ndarray], list[np.ndarray]]] = [([], []) for _ in passes]
    with tqdm(total=len(x) * len(passes), desc=desc, unit="img", leave=False,
              disable=None) as bar:
        for flip, outputs in zip(passes, parts, strict=True):
            for start in range(0, len(x), batch_size):
                batch = np.asarray(x[start:start + batch_size])
                if flip:
                    batch = np.ascontiguousarray(batch[:, :, ::-1])
                for out, value in zip(outputs, step(tf.constant(batch)), strict=True):
                    out.append(value.numpy().astype(np.float32))
                bar.update(len(batch))
    emb_width, prob_width = (output.shape[-1] for output in both.outputs)

    def joined(batches: list[np.ndarray], width: int) -> np.ndarray:
        return np.concatenate(batches) if batches else np.zeros((0, width), np.float32)

    emb = np.mean([joined(e, emb_width) for e, _ in parts], axis=0)  # TTA: mean of the passes
    prob = np.mean([joined(p, prob_width) for _, p in parts], axis=0)
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
