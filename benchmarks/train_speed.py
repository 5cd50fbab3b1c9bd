"""Training throughput on comp's own path (its batches from the uint8 store, the model with
and without its augmentation layer, the hardware and precision `choose_hardware` picks) on
whatever the Keras backend (`KERAS_BACKEND`) sees, next to the legacy pipeline the report used
(`ImageDataGenerator.flow_from_directory` over PNG files, TensorFlow only), in one run, on the
same images, model and batch size.
Targets: augmentation costs at most 15 % of throughput; on 2 cores comp's pipeline is at least
2.5x the legacy one.

    python benchmarks/train_speed.py [--workspace benchmarks/out/ws-prepare-speed]
        [--images 6200] [--model b3] [--batch 124] [--no-legacy]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from comp.workspace import Workspace  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"


def _model(name: str, shape: tuple[int, int, int], *, augment: bool, hw):  # type: ignore[no-untyped-def]
    import keras

    from comp.train.models import BalancedAccuracy, build_model

    keras.utils.set_random_seed(0)
    with hw.scope():
        model = build_model(name, shape, 2, augment=augment)
        model.compile(keras.optimizers.Adam(1e-4), "binary_crossentropy",
                      metrics=[BalancedAccuracy(2)])
    return model


def _throughput(model, data, steps: int, batch: int) -> float:  # type: ignore[no-untyped-def]
    model.fit(data, epochs=1, steps_per_epoch=3, verbose=0, shuffle=False)  # warm-up: tracing
    started = time.perf_counter()
    model.fit(data, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False)
    return steps * batch / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workspace", type=Path, default=OUT / "ws-prepare-speed")
    parser.add_argument("--images", type=int, default=6200)
    parser.add_argument("--model", default="b3")
    parser.add_argument("--batch", type=int, default=124)
    parser.add_argument("--no-legacy", action="store_true")
    args = parser.parse_args()
    ws = Workspace(args.workspace)
    if not ws.is_prepared():
        sys.exit(f"{ws.root} is not prepared: run benchmarks/prepare_speed.py first")
    import keras

    from comp.native_log import load_keras
    from comp.train.data import make_batches
    from comp.train.strategy import choose_hardware

    load_keras()
    hw = choose_hardware()
    keras.mixed_precision.set_global_policy(hw.policy)
    x, y, rows = ws.split("train")
    x, y, rows = x[:args.images], y[:args.images], rows.iloc[:args.images]
    steps = len(x) // args.batch
    results = {}
    for name, augment in (("comp, no augmentation", False),
                          ("comp, augmentation layer", True)):
        data = make_batches(x, y, num_classes=2, batch_size=args.batch, shuffle=True, seed=0,
                            epochs_from=0)
        model = _model(args.model, x.shape[1:], augment=augment, hw=hw)
        results[name] = _throughput(model, data, steps, args.batch)
    legacy = None
    if not args.no_legacy and keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        with tempfile.TemporaryDirectory() as tmp:  # PNGs decoded by Keras every epoch
            for label in (0, 1):
                (Path(tmp) / str(label)).mkdir()
            for row in rows.itertuples():
                os.symlink(os.path.abspath(row.path), Path(tmp) / str(row.label) /
                           Path(row.path).name)
            gen = tf.keras.preprocessing.image.ImageDataGenerator(
                rotation_range=10, zoom_range=0.1, horizontal_flip=True)
            flow = gen.flow_from_directory(tmp, target_size=x.shape[1:3], batch_size=args.batch,
                                           class_mode="binary", seed=0)
            legacy = _throughput(_model(args.model, x.shape[1:], augment=False, hw=hw), flow,
                                 steps, args.batch)
            results["legacy ImageDataGenerator (augmentation)"] = legacy
    print(f"\n{args.model}, batch {args.batch}, {steps * args.batch} images per timed epoch, "
          f"{hw.description} ({keras.backend.backend()}), {hw.policy}")
    print("| pipeline | images/s |\n|---|---|")
    for name, value in results.items():
        print(f"| {name} | {value:,.0f} |")
    plain, aug = results["comp, no augmentation"], results["comp, augmentation layer"]
    print(f"\naugmentation costs {1 - aug / plain:.1%} of throughput (target <= 15 %)"
          + (f"; comp's augmented pipeline is {aug / legacy:.2f}x the legacy one (target >= "
             "2.5x)" if legacy else ""))


if __name__ == "__main__":
    main()
