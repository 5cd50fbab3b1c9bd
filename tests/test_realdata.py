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
    assert summary["images_read"] == 300
    if "groups" in options:
        assert summary["identity_groups"] > 0
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
