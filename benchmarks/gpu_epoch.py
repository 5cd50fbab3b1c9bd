"""Time one epoch of comp's training path on a 116,157-image demo-sized training set on
whatever accelerator the Keras backend sees (the report's final model took about 100 s per
epoch on a TPU).

The faces are drawn in memory with comp's demo generator (no files). Everything else is comp's
own: `choose_hardware` (device, precision, data parallelism), `make_batches` (batches from the
uint8 store), `build_model(..., augment=True)` (the augmentation as the model's first layer,
on the device), the balanced-accuracy metric. Works with any Keras 3 backend:
KERAS_BACKEND=jax where TensorFlow is not installed (a GPU machine with JAX), tensorflow here.

    python benchmarks/gpu_epoch.py --images 116157 --batch 124 1024 --epochs 2 [--model b3]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
if importlib.util.find_spec("tensorflow") is None:
    os.environ.setdefault("KERAS_BACKEND", "jax")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=116_157)
    parser.add_argument("--batch", type=int, nargs="+", default=[124, 1024])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--model", default="b3")
    parser.add_argument("--no-augment", action="store_true")
    args = parser.parse_args()

    import keras
    import numpy as np

    from comp.demo.generate import draw_faces
    from comp.train.data import make_batches
    from comp.train.models import BalancedAccuracy, build_model
    from comp.train.strategy import choose_hardware

    rng = np.random.default_rng(0)
    started = time.perf_counter()
    glasses = rng.random(args.images) < 0.35
    smile = rng.random(args.images) < 0.5
    # draw 8,192 distinct faces and tile them: an epoch's cost does not depend on the pixels
    distinct = min(args.images, 8192)
    faces = np.concatenate([draw_faces(glasses[s:s + 2048], smile[s:s + 2048], 56, s)
                            for s in range(0, distinct, 2048)])
    x = faces[np.arange(args.images) % distinct]
    y = glasses[np.arange(args.images) % distinct].astype(np.int64)
    hw = choose_hardware()
    keras.mixed_precision.set_global_policy(hw.policy)
    print(f"drew {len(x)} faces in {time.perf_counter() - started:.1f} s; backend "
          f"{keras.backend.backend()} on {hw.description}, {hw.policy}; devices: {_devices()}",
          flush=True)
    for batch in args.batch:
        for augment in ([False] if args.no_augment else [False, True]):
            keras.utils.set_random_seed(0)
            with hw.scope():
                model = build_model(args.model, (56, 56, 3), 2, augment=augment)
                model.compile(keras.optimizers.Adam(1e-4), "binary_crossentropy",
                              metrics=[BalancedAccuracy(2)])
            data = make_batches(x, y, num_classes=2, batch_size=batch, shuffle=True, seed=0,
                                epochs_from=0)
            steps = -(-len(x) // batch)
            for epoch in range(args.epochs):
                t = time.perf_counter()
                hist = model.fit(data, epochs=epoch + 1, initial_epoch=epoch,
                                 steps_per_epoch=steps, verbose=0, shuffle=False)
                seconds = time.perf_counter() - t
                note = " (includes compilation)" if epoch == 0 else ""
                print(f"{args.model} {'aug' if augment else 'no aug'} batch {batch:5d} epoch "
                      f"{epoch + 1}: {seconds:6.2f} s ({len(x) / seconds:,.0f} img/s){note}"
                      f"  loss {hist.history['loss'][0]:.4f}  bal.acc "
                      f"{hist.history['balanced_accuracy'][0]:.4f}", flush=True)


def _devices() -> str:
    try:
        import jax

        return ", ".join(str(d) for d in jax.devices())
    except ImportError:
        import tensorflow as tf

        return ", ".join(d.name for d in tf.config.list_logical_devices())


if __name__ == "__main__":
    main()
