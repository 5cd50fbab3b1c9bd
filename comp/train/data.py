"""Training data: the kept images of the train/val splits (or of a fold model), and the
batches a model trains on."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from comp.errors import CompError
from comp.prepare.splits import assign_folds
from comp.workspace import Workspace


def mixup_batch(images: np.ndarray, targets: np.ndarray, rng: np.random.Generator,
                alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """mixup (Zhang et al. 2018): each image and its target blended with another image of
    the batch, weight lambda ~ Beta(alpha, alpha) per image."""
    n = len(images)
    lam = rng.beta(alpha, alpha, n).astype(np.float32)
    other = rng.permutation(n)
    lx, ly = lam.reshape(n, *[1] * (images.ndim - 1)), lam[:, None]
    return (lx * images + (1 - lx) * images[other],
            (ly * targets + (1 - ly) * targets[other]).astype(np.float32))


def batch_order(n: int, *, shuffle: bool, seed: int, epoch: int,
                labels: np.ndarray | None = None) -> np.ndarray:
    """The order in which epoch `epoch` visits the n images: a function of (seed, epoch).
    With `labels` (oversampling), n draws in which every class is equally often drawn (each
    class's images with replacement), shuffled."""
    if not shuffle:
        return np.arange(n)
    rng = np.random.default_rng([seed, epoch])
    if labels is None:
        return rng.permutation(n)
    present = np.unique(labels)
    share = np.full(len(present), n // len(present))
    share[:n - share.sum()] += 1
    drawn = [rng.choice(np.nonzero(labels == c)[0], size=m, replace=True)
             for c, m in zip(present, share, strict=True)]
    return rng.permutation(np.concatenate(drawn))


def class_weights(y: np.ndarray, num_classes: int) -> dict[int, float]:
    """N / (K x count) per class present: the classes weigh alike in the loss."""
    counts = np.bincount(y, minlength=num_classes)
    return {c: float(len(y) / (np.count_nonzero(counts) * counts[c]))
            for c in range(num_classes) if counts[c] > 0}


GATHER_WORKERS = 2  # threads that gather the next batches while the device trains
GATHER_AHEAD = 8  # batches gathered ahead of the one asked for


def make_batches(x: np.ndarray, y: np.ndarray, *, num_classes: int, batch_size: int,
                 shuffle: bool, seed: int, epochs_from: int | None = None,
                 mixup: float = 0.0, oversample: bool = False,
                 workers: int = GATHER_WORKERS) -> Any:
    """Batches (`_arrays`: uint8 pixels, a quarter of float32's bytes, cast on the device
    that trains) from the in-memory store as a Keras `PyDataset` (any backend); mixup of
    alpha `mixup` when above 0; with `oversample`, each epoch draws every class equally often
    (`batch_order`). The augmentation is the model's first layer (`models.Augment`).

    Epoch e's order (and mixup) are a function of (seed, e) alone. With `epochs_from`, the
    batches run epochs_from, epochs_from + 1, ... without end (fit it with
    `steps_per_epoch`), so a run resumed at epoch k sees exactly the batches an uninterrupted
    run sees there; without, they are the one epoch 0. With `workers` > 0, batches are
    gathered ahead in threads (`_Gatherer`); `close()` stops them."""
    import threading

    import keras

    class Batches(keras.utils.PyDataset):
        def __init__(self) -> None:
            super().__init__()  # Keras reads the batches in order; the gathering is ours
            self.steps = -(-len(x) // batch_size)
            self.lock = threading.Lock()
            self.orders: dict[int, np.ndarray] = {}
            self.gather = _Gatherer(lambda i: self.batch(i), workers)  # looked up per call

        @property
        def num_batches(self) -> int | None:
            return None if epochs_from is not None else self.steps

        def order(self, epoch: int) -> np.ndarray:
            """Epoch `epoch`'s order, drawn once (the two latest epochs are kept: the
            gathering runs ahead across an epoch's end)."""
            with self.lock:
                if epoch not in self.orders:
                    self.orders[epoch] = batch_order(len(x), shuffle=shuffle, seed=seed,
                                                     epoch=epoch,
                                                     labels=y if oversample else None)
                    for old in [e for e in self.orders if e < epoch - 1]:
                        del self.orders[old]
                return self.orders[epoch]

        def batch(self, i: int) -> tuple[np.ndarray, np.ndarray]:
            epoch, k = (epochs_from or 0) + i // self.steps, i % self.steps
            idx = self.order(epoch)[k * batch_size:(k + 1) * batch_size]
            return _arrays(x, y, idx, num_classes=num_classes, mixup=mixup,
                           key=[seed + 1, epoch, k])

        def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
            last = i + GATHER_AHEAD if epochs_from is not None else min(
                i + GATHER_AHEAD, self.steps - 1)
            return self.gather.get(i, last)

        def close(self) -> None:
            self.gather.close()

        def __del__(self) -> None:
            self.close()

    return Batches()


def _arrays(x: np.ndarray, y: np.ndarray, idx: np.ndarray, *, num_classes: int, mixup: float,
            key: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """One batch: uint8 pixels as they are (the model's input casts them), float32 once
    mixup (seeded by `key`) blends them; (N, 1) float targets for two classes, one-hot
    otherwise."""
    xb = x[idx]
    yb = (y[idx].astype(np.float32)[:, None] if num_classes == 2
          else np.eye(num_classes, dtype=np.float32)[y[idx]])
    if mixup > 0:
        xb, yb = mixup_batch(xb.astype(np.float32), yb, np.random.default_rng(key), mixup)
    return xb, yb


class _Gatherer:
    """Batch `i` asked for, batches i+1 .. `last` (i+`GATHER_AHEAD`) gathered meanwhile by
    `workers` threads while the model trains on batch i, off the training thread (none: each
    batch gathered when asked); those outside the window are cancelled. Batch i is a
    function of i alone, whichever thread gathers it and in whatever order Keras asks (a
    backend may ask for batch 0 twice, to build the model), so the batches are the same with
    any number of workers."""

    def __init__(self, batch: Callable[[int], Any], workers: int) -> None:
        import threading
        from concurrent.futures import ThreadPoolExecutor

        self.batch = batch
        self.lock = threading.Lock()
        self.ahead: dict[int, Any] = {}  # batch index -> its Future
        self.pool = (ThreadPoolExecutor(workers, thread_name_prefix="comp-gather")
                     if workers > 0 else None)

    def get(self, i: int, last: int) -> Any:
        if self.pool is None:
            return self.batch(i)
        with self.lock:
            gathered = self.ahead.pop(i, None)
            for stale in [j for j in self.ahead if j < i or j > last]:
                self.ahead.pop(stale).cancel()
            for j in range(i + 1, last + 1):
                if j not in self.ahead:
                    self.ahead[j] = self.pool.submit(self.batch, j)
        return gathered.result() if gathered is not None else self.batch(i)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.ahead.clear()


INNER_VAL_FOLDS = 10  # a fold model's validation slice: 1/10 of its training folds


@dataclass
class TrainData:
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    classes: list[str]
    fingerprint: str
    pixels: str = ""


def fold_rows(ws: Workspace, index: pd.DataFrame, *, fold: int, seed: int
              ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(fit rows, inner validation rows) of fold `fold`'s model: every kept labelled image
    outside the fold. The inner slice (1/10, stratified, groups whole) chooses the
    checkpoint and drives the schedule, so the fold's own images choose nothing."""
    rows = ws.labelled(index)
    outside = rows[rows["fold"] != fold]
    inner = assign_folds(outside["split_group"].to_numpy(), outside["label"].to_numpy(),
                         k=INNER_VAL_FOLDS, seed=seed + fold) == 0
    return outside[~inner], outside[inner]


def load_training_data(ws: Workspace, *, max_images: int | None, seed: int,
                       fold: int | None = None) -> TrainData:
    """The images one model trains and validates on: the train/val split, or (with `fold`)
    the cross-fitting rows of that fold (`fold_rows`)."""
    meta = ws.load_meta()
    index = ws.load_index()
    if fold is None:
        x_train, y_train, _ = ws.split("train", index)
        x_val, y_val, _ = ws.split("val", index)
    else:
        store = ws.load_store("train")
        fit, inner = fold_rows(ws, index, fold=fold, seed=seed)
        x_train, y_train = np.asarray(store[fit["row"].to_numpy()]), fit["label"].to_numpy()
        x_val, y_val = np.asarray(store[inner["row"].to_numpy()]), inner["label"].to_numpy()
    if max_images is not None and max_images < len(x_train):
        pick = np.sort(np.random.default_rng(seed).permutation(len(x_train))[:max_images])
        x_train, y_train = x_train[pick], y_train[pick]
        keep_val = np.sort(np.random.default_rng(seed).permutation(len(x_val))[
            :max(max_images // 4, 8)])
        x_val, y_val = x_val[keep_val], y_val[keep_val]
    if len(x_train) == 0 or len(x_val) == 0:
        what = "the train or val split is" if fold is None else f"fold {fold}'s training set is"
        raise CompError(f"{ws.root}: {what} empty; prepare with more images or other "
                        "--split fractions")
    return TrainData(x_train, y_train, x_val, y_val, meta.classes, meta.fingerprint, meta.pixels)
