"""prepare -> train -> submit on small slices of the shared real datasets (skipped when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from comp.config import PrepareConfig, SubmitConfig, TrainConfig
from comp.prepare import prepare
from comp.submit import submit
from comp.train import train
from comp.workspace import Workspace

from .conftest import shared_dataset

pytestmark = pytest.mark.realdata

CASES = {
    "smilesmiled": ("smilesmiled", {"gray": True}),
    "celeba-male": ("celeba-first10k", {"gray": True, "size": (50, 50),
                                        "groups": "meta.csv:celeba_identity"}),
}


def _slice(root: Path, out: Path, n_train: int, n_test: int) -> tuple[Path, Path, Path]:
    """Symlinked train/ and test/ folders and a labels CSV for the first images of a dataset."""
    labels = pd.read_csv(root / "labels.csv", dtype=str).sample(n_train + n_test,
                                                                random_state=0)
    train_rows, test_rows = labels.iloc[:n_train], labels.iloc[n_train:]
    for name, rows in (("train", train_rows), ("test", test_rows)):
        (out / name).mkdir(parents=True)
        for i in rows["id"]:
            os.symlink(root / "images" / f"{i}.jpg", out / name / f"{i}.jpg")
    train_rows.to_csv(out / "labels.csv", index=False)
    return out / "train", out / "labels.csv", out / "test"


@pytest.mark.parametrize("case", sorted(CASES))
def test_prepare_train_submit_on_real_faces(case: str, tmp_path: Path) -> None:
    folder, options = CASES[case]
    root = shared_dataset(folder)
    options = dict(options)
    if "groups" in options:
        options["groups"] = str(root / options["groups"])
    images, labels, test = _slice(root, tmp_path / "slice", 300, 60)
    ws = tmp_path / "ws"
    summary = prepare(PrepareConfig(train=images, labels=labels, workspace=ws, workers=2,
                                    **options)).summary
    assert summary.images_read == 300
    if "groups" in options:
        assert summary.identity_groups > 0
        index = Workspace(ws).load_index()
        train_rows = index[index["source"] == "train"]
        # ids keep their leading zeros; one person never sits on two sides of the split
        assert train_rows["id"].str.len().eq(6).all()
        meta = pd.read_csv(root / "meta.csv", dtype=str).set_index("id")
        kept = train_rows[train_rows["kept"].astype(bool)]
        person = meta.loc[kept["id"], "celeba_identity"].to_numpy()
        sides = pd.DataFrame({"p": person, "s": kept["split"].to_numpy()})
        assert (sides.groupby("p")["s"].nunique() == 1).all()
    ck = tmp_path / "ck"
    run = train(TrainConfig(workspace=ws, model="b3", epochs=1, batch_size=32, folds=1,
                            checkpoints=ck,
                            progress=False))
    manifest = submit(SubmitConfig(workspace=ws, runs=(run.run,), checkpoints=ck,
                                   submissions=tmp_path / "subs", test=test, folds=3)).manifest
    frame = pd.read_csv(manifest.csv, dtype=str)
    assert sorted(frame["id"]) == sorted(p.stem for p in test.iterdir())
    assert set(frame["label"]) <= {"0", "1"}


def test_four_hair_colours_on_real_faces(tmp_path: Path) -> None:
    """A real 4-class task: CelebA hair colour (black, blond, brown, gray; images with none
    or several dropped), class names as labels, prepare -> train -> submit with class
    offsets tuned out-of-fold; every test image gets one of the four names."""
    root = shared_dataset("celeba-first10k")
    names = ["black", "blond", "brown", "gray"]
    attributes = pd.read_csv(root / "attributes.csv", dtype={"id": str})
    onehot = attributes[["Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair"]].to_numpy()
    single = attributes[onehot.sum(axis=1) == 1].assign(
        label=[names[k] for k in onehot[onehot.sum(axis=1) == 1].argmax(axis=1)])
    picked = pd.concat([part.head(90) for _, part in single.groupby("label")])
    test_ids = set(picked.groupby("label").tail(15)["id"])
    slice_ = tmp_path / "slice"
    for folder in ("train", "test"):
        (slice_ / folder).mkdir(parents=True)
    for i in picked["id"]:
        os.symlink(root / "images" / f"{i}.jpg",
                   slice_ / ("test" if i in test_ids else "train") / f"{i}.jpg")
    picked[~picked["id"].isin(test_ids)][["id", "label"]].to_csv(slice_ / "train.csv",
                                                                 index=False)
    ws, ck = tmp_path / "ws", tmp_path / "ck"
    summary = prepare(PrepareConfig(challenge=slice_, workspace=ws, workers=2, size=(32, 32),
                                    folds=3)).summary
    assert summary.class_balance["train"].keys() == set(names)
    run = train(TrainConfig(workspace=ws, model="res", epochs=1, batch_size=32,
                            checkpoints=ck, progress=False))
    assert run.folds == 3 and run.classes == names
    result = submit(SubmitConfig(workspace=ws, runs=(run.run,), checkpoints=ck,
                                 submissions=tmp_path / "subs", target="test"))
    assert result.decision.threshold is None and len(result.decision.classes) == 4
    frame = pd.read_csv(result.manifest.csv, dtype=str)
    assert sorted(frame["id"]) == sorted(test_ids)
    assert set(frame["label"]) <= set(names)
