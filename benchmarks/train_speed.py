"""b3 training throughput: comp's tf.data pipeline with and without augmentation, next to the
legacy pipeline the report used (`ImageDataGenerator.flow_from_directory` over PNG files), in
one run, on the same images, the same model and batch size.
Targets on 2 cores: augmentation costs at most 15 % of throughput; comp's pipeline is at least
2.5x the legacy one.

    python benchmarks/train_speed.py [--workspace benchmarks/out/ws-prepare-speed] [--images 6200]
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


def _model():
    import keras

    from comp.train.models import BalancedAccuracy, build_model

    keras.utils.set_random_seed(0)
    model = build_model("b3", (56, 56, 3), 2)
    model.compile(keras.optimizers.Adam(1e-4), "binary_crossentropy",
                  metrics=[BalancedAccuracy(2)])
    return model


def _throughput(model, data, steps: int, batch: int) -> float:
    model.fit(data, epochs=1, steps_per_epoch=3, verbose=0)  # warm-up: tracing, first batches
    started = time.perf_counter()
    model.fit(data, epochs=1, steps_per_epoch=steps, verbose=0)
    return steps * batch / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workspace", type=Path, default=OUT / "ws-prepare-speed")
    parser.add_argument("--images", type=int, default=6200)
    parser.add_argument("--batch", type=int, default=124)
    args = parser.parse_args()
    ws = Workspace(args.workspace)
    if not ws.is_prepared():
        sys.exit(f"{ws.root} is not prepared: run benchmarks/prepare_speed.py first")
    import tensorflow as tf

    from comp.train.data import make_dataset

    x, y, rows = ws.split("train")
    x, y, rows = x[:args.images], y[:args.images], rows.iloc[:args.images]
    steps = len(x) // args.batch
    results = {}
    for name, augment in (("comp tf.data, no augmentation", False),
                          ("comp tf.data, augmentation", True)):
        data = make_dataset(x, y, num_classes=2, batch_size=args.batch, shuffle=True,
                            augment=augment, seed=0).repeat()
        results[name] = _throughput(_model(), data, steps, args.batch)
    # the legacy pipeline: PNG files decoded by Keras' ImageDataGenerator every epoch
    with tempfile.TemporaryDirectory() as tmp:
        for label in (0, 1):
            (Path(tmp) / str(label)).mkdir()
        for row in rows.itertuples():
            os.symlink(os.path.abspath(row.path), Path(tmp) / str(row.label) /
                       Path(row.path).name)
        gen = tf.keras.preprocessing.image.ImageDataGenerator(
            rotation_range=10, zoom_range=0.1, horizontal_flip=True)
        flow = gen.flow_from_directory(tmp, target_size=(56, 56), batch_size=args.batch,
                                       class_mode="binary", seed=0)
        results["legacy ImageDataGenerator (augmentation)"] = _throughput(
            _model(), flow, steps, args.batch)
    print(f"\nb3, batch {args.batch}, {steps * args.batch} images per timed epoch, "
          f"{os.cpu_count()} cores")
    print("| pipeline | images/s |\n|---|---|")
    for name, value in results.items():
        print(f"| {name} | {value:,.0f} |")
    plain, aug = results["comp tf.data, no augmentation"], results["comp tf.data, augmentation"]
    legacy = results["legacy ImageDataGenerator (augmentation)"]
    print(f"\naugmentation costs {1 - aug / plain:.1%} of throughput (target <= 15 %); comp's "
          f"augmented pipeline is {aug / legacy:.2f}x the legacy one (target >= 2.5x)")


if __name__ == "__main__":
    main()
