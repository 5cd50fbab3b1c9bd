"""`comp prepare`: challenge files -> a decoded store, duplicate groups, overlaps and splits.

Steps, in order (each a pure function elsewhere; this module only wires them and does the I/O):
1. find the files and labels, 2. decode once + dHash, 3. duplicate groups (hash candidates
confirmed by pixels), 4. label conflicts, 5. overlap of val/test with train, 6. splits,
7. the report.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from comp import dataset, hashing, images, report
from comp.config import PrepareConfig
from comp.errors import CompError
from comp.workspace import Workspace, fingerprint, write_csv, write_json

TRAIN_FOLDERS = ("train", "images")
LABEL_FILES = ("train.csv", "labels.csv", "train_labels.csv")
OVERLAP_COLUMNS = ["source", "id", "train_ids", "train_labels", "distance", "pixel", "label",
                   "consistent"]


@dataclass
class TrainSet:
    """The labelled images found in a challenge, before decoding."""

    paths: list[str]
    ids: list[str]
    label_text: list[str]
    skipped: list[str]
    source: str  # where the labels came from, for messages


def find_train(cfg: PrepareConfig) -> TrainSet:
    """Pair every training image with its label: a labels CSV, or one folder per class."""
    root = cfg.challenge
    folder = cfg.train or next((root / n for n in TRAIN_FOLDERS if root and (root / n).is_dir()),
                               None)
    if folder is None:
        raise CompError(f"{root}: no training folder ({' or '.join(TRAIN_FOLDERS)}); "
                        "pass --train FOLDER")
    labels = cfg.labels or next((root / n for n in LABEL_FILES if root and (root / n).exists()),
                                None)
    if labels is None:
        return _find_by_class_folders(folder)
    frame = dataset.read_labels(labels, cfg.id_column, cfg.label_column)
    paths = images.list_images(folder)
    stems = [images.file_id(p) for p in paths]
    by_id = dict(zip(stems, paths, strict=True))
    if len(by_id) != len(paths):
        seen: dict[str, str] = {}
        for p, stem in zip(paths, stems, strict=True):
            if stem in seen:
                raise CompError(f"{p}: id {stem!r} also used by {os.path.basename(seen[stem])}; "
                                "keep one file per id")
            seen[stem] = p
    skipped = []
    ids = frame["id"].to_numpy(dtype=object)
    has_image = np.fromiter((i in by_id for i in ids), dtype=bool, count=len(ids))
    if not has_image.all():
        missing = np.flatnonzero(~has_image)
        msg = (f"{labels}: id {ids[missing[0]]!r} (row {missing[0] + 2}) has no "
               f"image in {folder} ({len(missing)} such ids); add the image or remove the row")
        if not cfg.skip_bad:
            raise CompError(msg + ", or pass --skip-bad")
        skipped += [f"{labels}: id {ids[k]!r} has no image" for k in missing]
    if len(by_id) > has_image.sum():
        labelled = set(ids.tolist())
        unlabelled = [p for p, stem in zip(paths, stems, strict=True) if stem not in labelled]
        msg = (f"{unlabelled[0]}: image has no label in {labels} ({len(unlabelled)} such "
               "images); add a row for it or move it out of the folder")
        if not cfg.skip_bad:
            raise CompError(msg + ", or pass --skip-bad")
        skipped += [f"{p}: no label" for p in unlabelled]
    frame = frame[has_image]
    return TrainSet([by_id[i] for i in frame["id"]], frame["id"].tolist(),
                    frame["label_text"].tolist(), skipped, str(labels))


def _find_by_class_folders(folder: Path) -> TrainSet:
    classes = sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    if not classes:
        raise CompError(f"{folder}: no labels file and no class sub-folders; pass --labels FILE")
    paths, ids, labels = [], [], []
    for cls in classes:
        for p in images.list_images(cls):
            paths.append(p)
            ids.append(f"{cls.name}/{images.file_id(p)}")
            labels.append(cls.name)
    return TrainSet(paths, ids, labels, [], str(folder))


def parse_groups(spec: str, ids: pd.Series) -> np.ndarray:
    """`FILE:COLUMN` -> an integer group per image (ids without a row form their own group)."""
    path_text, _, column = spec.rpartition(":")
    if not path_text or not column:
        raise CompError(f"--groups must be FILE:COLUMN. Received: {spec!r}")
    frame = dataset.read_labels(Path(path_text), "id", column)
    codes = pd.factorize(frame["label_text"])[0]
    lookup = dict(zip(frame["id"], codes, strict=True))
    base = len(codes) + 1
    return np.array([lookup.get(i, base + k) for k, i in enumerate(ids)], dtype=np.int64)


def find_duplicates(hashes: np.ndarray, store: np.ndarray, max_distance: int,
                    pixel_threshold: float) -> pd.DataFrame:
    """Confirmed duplicate pairs within one set: columns i, j, distance, pixel."""
    pairs = hashing.near_pairs(hashes, max_distance)
    pixel = dataset.confirm_pairs(pairs, store, threshold=pixel_threshold)
    frame = pd.DataFrame({"i": pairs[:, 0], "j": pairs[:, 1], "distance": pairs[:, 2],
                          "pixel": pixel})
    return frame[frame["pixel"] <= pixel_threshold].reset_index(drop=True)


def find_overlap(target_hashes: np.ndarray, target_store: np.ndarray, train: pd.DataFrame,
                 train_store: np.ndarray, max_distance: int, pixel_threshold: float,
                 source: str, target_ids: list[str]) -> pd.DataFrame:
    """Which target images match a training image, and the label(s) they would inherit."""
    train_hashes = hashing.hex_to_hash(train["dhash"].tolist())
    pairs = hashing.near_pairs(target_hashes, max_distance, others=train_hashes)
    if len(pairs) == 0 or target_store.shape[1:] != train_store.shape[1:]:
        return pd.DataFrame(columns=OVERLAP_COLUMNS)
    pixel = dataset.confirm_pairs(pairs, target_store, train_store, threshold=pixel_threshold)
    ok = pixel <= pixel_threshold
    if not ok.any():
        return pd.DataFrame(columns=OVERLAP_COLUMNS)
    pairs, pixel = pairs[ok], pixel[ok]
    # pairs are sorted by target: one run of rows per target, its matches in train order
    starts = np.flatnonzero(np.r_[True, pairs[1:, 0] != pairs[:-1, 0]])
    ends = np.r_[starts[1:], len(pairs)]
    train_ids = train["id"].to_numpy()[pairs[:, 1]]
    labels = train["label"].to_numpy()[pairs[:, 1]]
    lowest, highest = np.minimum.reduceat(labels, starts), np.maximum.reduceat(labels, starts)
    consistent = lowest == highest
    return pd.DataFrame({
        "source": source, "id": np.asarray(target_ids, dtype=object)[pairs[starts, 0]],
        "train_ids": [";".join(train_ids[a:b]) for a, b in zip(starts, ends, strict=True)],
        "train_labels": [";".join(map(str, labels[a:b].tolist()))
                         for a, b in zip(starts, ends, strict=True)],
        "distance": np.minimum.reduceat(pairs[:, 2], starts),
        "pixel": np.minimum.reduceat(pixel, starts).astype(float),
        "label": np.where(consistent, lowest, -1), "consistent": consistent},
        columns=OVERLAP_COLUMNS)


def ingest_target(cfg: PrepareConfig, ws: Workspace, source: str, folder: Path,
                  meta: dict[str, Any], train: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Decode and hash an unlabelled folder (val or test); return its index rows and overlap."""
    paths = images.list_images(folder)
    size = tuple(meta["size"])
    if cfg.on_size_mismatch not in ("fail", "resize"):
        raise CompError(f"--on-size-mismatch must be fail or resize. Received: "
                        f"{cfg.on_size_mismatch!r}")
    fresh = ws.store(f"{source}.new")  # the previous store stays until this one is checked
    decoded = images.decode_to_store(paths, fresh, size, meta["gray"], meta["fit"],
                                     cfg.workers, cfg.skip_bad, desc=f"decode {source}")
    native = meta.get("native_sizes", [size])
    other = sorted(s for s in decoded.native_sizes if list(s) not in [list(n) for n in native])
    if other and cfg.on_size_mismatch == "fail":
        fresh.unlink()
        raise CompError(f"{folder}: images are {other[0][0]}x{other[0][1]} but the training "
                        f"images were {native[0][0]}x{native[0][1]}; pass --on-size-mismatch "
                        "resize to resize them to the training store's size")
    os.replace(fresh, ws.store(source))
    ids = [images.file_id(p) for p in decoded.paths]
    if len(set(ids)) != len(ids):
        dup = pd.Series(ids)[pd.Series(ids).duplicated()].iloc[0]
        raise CompError(f"{folder}: two files share the id {dup!r}; keep one file per id")
    rows = pd.DataFrame({"id": ids, "source": source, "label": -1,
                         "dhash": hashing.hash_to_hex(decoded.hashes), "group": -1,
                         "kept": False, "conflict": False, "original_label": -1,
                         "split": source, "split_group": -1, "row": np.arange(len(ids)),
                         "path": decoded.paths})
    overlap = find_overlap(decoded.hashes, images.load_store(ws.store(source)), train,
                           images.load_store(ws.store("train")), cfg.max_distance,
                           cfg.pixel_threshold, source, ids)
    return rows, overlap


def prepare(cfg: PrepareConfig) -> dict[str, Any]:
    """Run every step and write the workspace. Returns the summary that the report shows."""
    ws = Workspace(cfg.workspace)
    if cfg.challenge is None and cfg.train is None:
        if cfg.test is not None and ws.is_prepared():
            return prepare_test(cfg)
        raise CompError("nothing to prepare: pass CHALLENGE_DIR (or --train and --labels), or "
                        "--test NEW_DIR on an already prepared workspace")
    started = time.perf_counter()
    root = cfg.challenge
    val = cfg.val or (root / "val" if root and (root / "val").is_dir() else None)
    test = cfg.test or (root / "test" if root and (root / "test").is_dir() else None)

    # 1. files and labels
    found = find_train(cfg)
    codes, classes = dataset.encode_labels(pd.Series(found.label_text, index=found.ids),
                                           list(cfg.classes) if cfg.classes else None,
                                           found.source)
    # 2. decode once + dHash
    decoded = images.decode_to_store(found.paths, ws.store("train"), cfg.size, cfg.gray, cfg.fit,
                                     cfg.workers, cfg.skip_bad, desc="decode train")
    keep = decoded.kept
    ids = np.array(found.ids, dtype=object)[keep]
    labels = codes[keep]
    store = images.load_store(ws.store("train"))
    # 3. duplicate groups
    pairs = find_duplicates(decoded.hashes, store, cfg.max_distance, cfg.pixel_threshold)
    groups = dataset.group_ids(len(ids), pairs[["i", "j"]].to_numpy())
    # 4. label conflicts
    kept, final, conflict = dataset.resolve_groups(groups, labels, cfg.conflicts, cfg.duplicates)
    train = pd.DataFrame({"id": ids, "source": "train", "label": final,
                          "dhash": hashing.hash_to_hex(decoded.hashes), "group": groups,
                          "kept": kept, "conflict": conflict, "original_label": labels,
                          "split": "dropped",
                          "row": np.arange(len(ids)),
                          "path": decoded.paths})
    train.loc[~kept & ~conflict, "split"] = "duplicate"
    train.loc[conflict & ~kept, "split"] = "conflict"
    # 6. splits: duplicate groups (and identity groups) never straddle two sides
    split_groups = groups
    if cfg.groups:
        identity = parse_groups(cfg.groups, train["id"])
        both = np.stack([np.arange(len(ids)), len(ids) + identity], axis=1)
        split_groups = dataset.group_ids(len(ids) + identity.max() + 1, both)[:len(ids)]
    train["split_group"] = split_groups
    sel = kept
    train.loc[sel, "split"] = dataset.split_frame(split_groups[sel], final[sel], cfg.split,
                                                  cfg.seed)
    size = list(store.shape[1:3])
    meta: dict[str, Any] = {
        "classes": classes, "size": size, "gray": cfg.gray, "fit": cfg.fit,
        "channels": int(store.shape[3]), "max_distance": cfg.max_distance,
        "pixel_threshold": cfg.pixel_threshold, "seed": cfg.seed, "split": list(cfg.split),
        "conflicts": cfg.conflicts, "duplicates": cfg.duplicates, "groups": cfg.groups,
        "challenge": str(root) if root else None,
        "native_sizes": sorted(list(s) for s in decoded.native_sizes),
        "test_dir": str(test) if test else None,
        "fingerprint": fingerprint(train, ["id", "label", "dhash", "kept", "split"]),
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()},
    }
    # 5. overlap of val/test with train
    frames, overlaps = [train], []
    for source, folder in (("val", val), ("test", test)):
        if folder is not None:
            rows, overlap = ingest_target(cfg, ws, source, folder, meta, train)
            frames.append(rows)
            overlaps.append(overlap)
    index = pd.concat(frames, ignore_index=True)
    overlap = (pd.concat(overlaps, ignore_index=True) if overlaps
               else pd.DataFrame(columns=OVERLAP_COLUMNS))
    # 7. report
    summary = report.prepare_summary(index, pairs, overlap, found.skipped + decoded.bad, meta,
                                     time.perf_counter() - started)
    meta["summary"] = summary
    write_csv(ws.pairs, pairs.assign(id_i=ids[pairs["i"]], id_j=ids[pairs["j"]]))
    write_csv(ws.overlap, overlap)
    write_csv(ws.index, index)
    report.write_prepare_report(ws, index, pairs, overlap, summary, store, classes)
    write_json(ws.meta, meta)
    return summary


def prepare_test(cfg: PrepareConfig) -> dict[str, Any]:
    """Phase 2: decode and hash only the new test images; recompute only the test overlap."""
    ws = Workspace(cfg.workspace)
    meta = ws.load_meta()
    test_dir = cfg.test
    if test_dir is None:
        raise CompError("pass --test NEW_DIR: the folder of new test images")
    index = ws.load_index()
    train = index[index["source"] == "train"].reset_index(drop=True)
    started = time.perf_counter()
    cfg = replace(cfg, max_distance=meta["max_distance"], pixel_threshold=meta["pixel_threshold"])
    rows, overlap = ingest_target(cfg, ws, "test", test_dir, meta, train)
    index = pd.concat([index[index["source"] != "test"], rows], ignore_index=True)
    old = pd.read_csv(ws.overlap, dtype={"id": str}) if ws.overlap.exists() else None
    if old is not None and len(old):
        overlap = pd.concat([old[old["source"] != "test"], overlap], ignore_index=True)
    write_csv(ws.overlap, overlap)
    write_csv(ws.index, index)
    test_overlap = overlap[overlap["source"] == "test"]
    summary = {"test_images": len(rows), "test_in_train": len(test_overlap),
               "test_in_train_consistent": int(test_overlap["consistent"].astype(bool).sum()),
               "seconds": round(time.perf_counter() - started, 2)}
    meta.setdefault("summary", {}).update(summary)
    meta["test_dir"] = str(cfg.test)
    write_json(ws.meta, meta)
    return summary
