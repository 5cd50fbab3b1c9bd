"""CNN predictions: probabilities and penultimate-layer embeddings of saved models, batched."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from comp.metrics import probability_matrix
from comp.native_log import load_keras
from comp.submit import engine as onnx_engine
from comp.submit.engine import BATCH as ENGINE_BATCH
from comp.submit.engine import graph_key


@dataclass
class Predictions:
    """What models say about N images.

    `members`: on new images, a cross-fitted run's K fold models each predict; member k is
    fold k's model (several runs: their fold-k models, embeddings side by side). `prob` is
    then the mean of the members' and `embedding` the first member's. Out-of-fold
    predictions have one member: each image's values come from the fold model that did
    not train on it, so member k's embeddings live in the same space as fold k's rows.
    """

    prob: np.ndarray  # (N, K) class probabilities (two classes: [1 - p, p])
    embedding: np.ndarray  # (N, D * runs)
    members: list[Predictions] = field(default_factory=list)

    def parts(self) -> list[Predictions]:
        return self.members or [self]


def predict_models(model_paths: list[Path], x: np.ndarray, *, tta: bool = False,
                   batch_size: int | None = None, desc: str = "predict",
                   engine: Path | None = None) -> list[Predictions]:
    """Probabilities and penultimate-layer embeddings of saved models, batched, every model
    in one compiled call per batch (any Keras backend), with a progress bar.

    The uint8 pixels (a feature model's float32 features) go to the device as they are and
    are cast there. With `tta`, the horizontally flipped image is predicted too and both are
    averaged (not for features). Batches of 128 on a
    CPU (measured on 2 cores: 2,400 images/s against 1,550 for Keras' `predict` at 512: the
    activations of a small batch stay in the caches), 1024 on an accelerator. With `engine`
    (a run's engine folder) on a CPU, ONNX Runtime runs the same graph, exported once into
    that folder (`comp.submit.engine`), in batches of 256; Keras where it cannot. Once the
    graph is there, neither Keras nor the checkpoints are loaded (phase 2's start-up).
    """
    whole = len(x) > 0 and all(p.is_file() for p in model_paths)
    key = graph_key(model_paths, tuple(x.shape[1:]), str(x.dtype)) if whole and engine else ""
    step = onnx_engine.cached_session(engine, key) if engine is not None and key else None
    if step is not None:  # exported before: no Keras, no checkpoint loaded
        batch_size = batch_size or ENGINE_BATCH
        widths: list[int] = []  # read only for an empty x, which never comes here
    else:
        step, batch_size, widths = _keras_step(model_paths, x, batch_size=batch_size,
                                               engine=engine, key=key)

    passes = [False, True] if tta and x.ndim == 4 else [False]  # features are not flipped
    # per pass, the batches of each output (model 1's embedding, probability, model 2's...)
    parts: list[list[list[np.ndarray]]] = [[[] for _ in range(2 * len(model_paths))]
                                           for _ in passes]
    with tqdm(total=len(x) * len(passes), desc=desc, unit="img", leave=False,
              disable=None) as bar:
        for flip, batches_of in zip(passes, parts, strict=True):
            for start in range(0, len(x), batch_size):
                batch = np.asarray(x[start:start + batch_size])
                if flip:
                    batch = np.ascontiguousarray(batch[:, :, ::-1])
                values = step(batch)
                for batches, value in zip(batches_of, values, strict=True):
                    batches.append(np.asarray(value, np.float32))
                bar.update(len(batch))

    def joined(k: int) -> Any:  # output k, TTA: the mean of the passes
        return np.mean([np.concatenate(p[k]) if p[k] else np.zeros((0, widths[k]), np.float32)
                        for p in parts], axis=0)

    result = []
    for m in range(len(model_paths)):
        emb, prob = joined(2 * m), joined(2 * m + 1)
        result.append(Predictions(probability_matrix(prob), emb))
    return result


def _keras_step(model_paths: list[Path], x: np.ndarray, *, batch_size: int | None,
                engine: Path | None, key: str) -> tuple[Any, int, list[int]]:
    """The saved models in one Keras graph (uint8 in, cast on the device): its batch step
    (ONNX Runtime's session of the same graph where `engine` allows), the batch size, and
    each output's width."""
    load_keras()
    import keras

    from comp.train.callbacks import load_checkpoint
    from comp.train.models import EMBEDDING
    from comp.train.strategy import on_accelerator

    models = [load_checkpoint(path, compile=False) for path in model_paths]
    pixels = keras.Input(x.shape[1:], dtype=str(x.dtype), name=f"inputs_{x.dtype}")
    x32 = keras.layers.Lambda(lambda t: keras.ops.cast(t, "float32"), name="to_float32")(pixels)
    outputs = []  # model 1's embedding, probability, model 2's...
    for m in models:
        outputs += keras.Model(m.input, [m.get_layer(EMBEDDING).output, m.output])(x32)
    every = keras.Model(pixels, outputs)
    accelerated = on_accelerator()
    step: Any = every.predict_on_batch
    if engine is not None and not accelerated and len(x):
        every.predict_on_batch(np.asarray(x[:1]))  # a called model, as the export needs
        fast = onnx_engine.session(every, folder=engine, key=key)
        if fast is not None:
            step, batch_size = fast, batch_size or ENGINE_BATCH
    if batch_size is None:
        batch_size = 1024 if accelerated else 128
    return step, batch_size, [int(output.shape[-1]) for output in outputs]


def predict_run(model_path: Path, x: np.ndarray, *, tta: bool = False,
                batch_size: int | None = None, desc: str = "predict",
                engine: Path | None = None) -> Predictions:
    """`predict_models` of one saved model."""
    return predict_models([model_path], x, tta=tta, batch_size=batch_size, desc=desc,
                          engine=engine)[0]


def members_of(preds: list[Predictions]) -> Predictions:
    """A cross-fitted run's fold models' predictions as one, with each as a member."""
    if len(preds) == 1:
        return preds[0]
    return Predictions(np.mean([p.prob for p in preds], axis=0), preds[0].embedding,
                       members=list(preds))
