"""Time one epoch of b3 on a 116,157-image demo-sized training set on whatever accelerator the
Keras backend sees (the report's final model took about 100 s per epoch on a TPU).

The faces are drawn in memory with comp's demo generator (no files), b3 is built by
`comp.train.models.build_model`, the report's augmentation runs on the device inside the model, and
the precision follows comp's rule for one GPU (mixed float16). Works with any Keras 3 backend:
KERAS_BACKEND=jax where TensorFlow is not installed (a GPU machine with JAX), tensorflow here.

    python benchmarks/gpu_epoch.py --images 116157 --batch 124 --epochs 2
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
    parser.add_argument("--precision", default="mixed_float16")
    parser.add_argument("--no-augment", action="store_true")
    args = parser.parse_args()

    import keras
    import numpy as np

    from comp.demo.generate import draw_faces
    from comp.train.models import BalancedAccuracy, build_model

    rng = np.random.default_rng(0)
    started = time.perf_counter()
    glasses = rng.random(args.images) < 0.35
    smile = rng.random(args.images) < 0.5
    # draw 8,192 distinct faces and tile them: an epoch's cost does not depend on the pixels
    distinct = min(args.images, 8192)
    faces = np.concatenate([draw_faces(glasses[s:s + 2048], smile[s:s + 2048], 56, s)
                            for s in range(0, distinct, 2048)])
    x = faces[np.arange(args.images) % distinct]
    glasses = glasses[np.arange(args.images) % distinct]
    y = glasses.astype(np.float32)[:, None]
    print(f"drew {len(x)} faces in {time.perf_counter() - started:.1f} s; backend "
          f"{keras.backend.backend()}; devices: {_devices()}", flush=True)
    keras.mixed_precision.set_global_policy(args.precision)
    xf = x.astype(np.float32)
    for batch in args.batch:
        keras.utils.set_random_seed(0)
        core = build_model("b3", (56, 56, 3), 2)
        inputs = keras.Input((56, 56, 3))
        aug = keras.Sequential([
            keras.layers.RandomFlip("horizontal", dtype="float32"),
            keras.layers.RandomRotation(10 / 360, fill_mode="nearest", dtype="float32"),
            keras.layers.RandomZoom(0.1, fill_mode="nearest", dtype="float32")])
        model = keras.Model(inputs, core(inputs if args.no_augment else aug(inputs)))
        model.compile(keras.optimizers.Adam(1e-4), "binary_crossentropy",
                      metrics=[BalancedAccuracy(2)])
        for epoch in range(args.epochs):
            t = time.perf_counter()
            hist = model.fit(xf, y, batch_size=batch, epochs=1, verbose=0, shuffle=True)
            seconds = time.perf_counter() - t
            aug_name = "no aug" if args.no_augment else "aug"
            note = " (includes compilation)" if epoch == 0 else ""
            print(f"{aug_name} batch {batch:5d} epoch {epoch + 1}: {seconds:6.2f} s "
                  f"({len(x) / seconds:,.0f} img/s){note}"
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
