"""`comp prepare`: challenge files -> a decoded store, duplicate groups, overlaps and splits.

Steps, in order (each a pure function elsewhere; this module only wires them and does the I/O):
1. find the files and labels, 2. decode once + dHash, 3. duplicate groups (hash candidates
confirmed by pixels), 4. label conflicts, 5. splits, 6. overlap of val/test with train,
7. the report.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from comp.commit import CURRENT, Staging
from comp.config import PrepareConfig, SizeMismatch, as_record
from comp.errors import CompError
from comp.faults import fault_point
from comp.prepare.corrections import apply_corrections
from comp.prepare.decode import DecodeResult, decode_to_store
from comp.prepare.dhash import hash_to_hex
from comp.prepare.duplicates import OVERLAP_COLUMNS, find_duplicates, find_overlap, group_ids
from comp.prepare.faces import MARGIN
from comp.prepare.files import TrainSet, file_id, find_train, list_images
from comp.prepare.labels import encode_labels, resolve_groups
from comp.prepare.report import PrepareSummary, no_face_montage, summarise, write_prepare_report
from comp.prepare.splits import (
    assign_folds,
    check_fold_count,
    check_split_classes,
    identity_groups,
    split_frame,
    split_groups,
)
from comp.stopwatch import Stopwatch
from comp.workspace import (
    Meta,
    Workspace,
    data_fingerprint,
    pixel_key,
    write_csv,
    write_json,
)

# label: as trained on (after conflicts); original_label: after --relabel, before the
# conflict rule; given_label: as the organisers gave it (the leak override hands it on)
INDEX_COLUMNS = ["id", "source", "label", "dhash", "group", "kept", "conflict", "original_label",
                 "split", "split_group", "fold", "row", "path", "given_label"]


@dataclass
class Prepared:
    """What `prepare` hands to the CLI."""

    summary: PrepareSummary  # of the whole workspace, as meta.json records it
    clock: Stopwatch
    report: Path  # through <workspace>/current
    phase2: bool = False  # only new test images were ingested

    def lines(self) -> list[str]:
        """The short human form (the report's path comes last)."""
        if self.phase2:
            body = [f"phase 2: ingested {self.summary.test_images:,} test images in "
                    f"{self.summary.seconds} s"] + self.summary.target_lines(("test",))
        else:
            body = self.summary.lines()
        return [*body, f"report: {self.report}"]


def _target_rows(ids: list[str], source: str, decoded: DecodeResult) -> pd.DataFrame:
    """Index rows of an unlabelled source (val or test)."""
    return pd.DataFrame({"id": ids, "source": source, "label": -1,
                         "dhash": hash_to_hex(decoded.hashes), "group": -1,
                         "kept": False, "conflict": False, "original_label": -1,
                         "split": source, "split_group": -1, "fold": -1,
                         "row": np.arange(len(ids)), "path": decoded.paths,
                         "given_label": -1},
                        columns=INDEX_COLUMNS)


def _check_native_size(decoded: DecodeResult, meta: Meta, folder: Path,
                       on_size_mismatch: SizeMismatch) -> None:
    """val/test images whose own size differs from the training images': refused unless the
    user asked for resizing (`--size` at prepare, or `--on-size-mismatch resize`)."""
    if meta.size_given or on_size_mismatch == SizeMismatch.RESIZE or meta.fit == "face":
        return  # (face crops are resized to the store's size whatever the photo's)
    native = [list(n) for n in (meta.native_sizes or [meta.size])]
    other = sorted(s for s in decoded.native_sizes if list(s) not in native)
    if other:
        odd = decoded.first_of_size.get(other[0], str(folder))
        raise CompError(f"{odd}: image is {other[0][0]}x{other[0][1]} but the training "
                        f"images were {native[0][0]}x{native[0][1]}; pass --on-size-mismatch "
                        "resize to resize them to the training store's size")


def ingest_target(cfg: PrepareConfig, out: Workspace, *, source: str, folder: Path,
                  paths: list[str], meta: Meta, train: pd.DataFrame,
                  clock: Stopwatch) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Decode and hash an unlabelled folder (val or test) into `out` (a staging folder);
    return its index rows, its overlap with train and (with face crops) the files in which
    no face was found (centre-cropped)."""
    ids = [file_id(p) for p in paths]
    if len(set(ids)) != len(ids):
        dup = pd.Series(ids)[pd.Series(ids).duplicated()].iloc[0]
        raise CompError(f"{folder}: two files share the id {dup!r}; keep one file per id")
    with clock.stage(f"decode {source}"):
        decoded = decode_to_store(paths, out.store(source), size=(meta.size[0], meta.size[1]),
                                  gray=meta.gray, fit=meta.fit, workers=cfg.workers,
                                  skip_bad=cfg.skip_bad, desc=f"decode {source}",
                                  no_face="fail" if cfg.no_face == "fail" else "keep")
    _check_native_size(decoded, meta, folder, cfg.on_size_mismatch)
    ids = [file_id(p) for p in decoded.paths]
    with clock.stage(f"overlap {source}"):
        overlap = find_overlap(decoded.hashes, out.load_store(source), train,
                               out.load_store("train"), max_distance=cfg.max_distance,
                               pixel_threshold=cfg.pixel_threshold, source=source,
                               target_ids=ids)
    return _target_rows(ids, source, decoded), overlap, decoded.no_face


def _train_frame(cfg: PrepareConfig, ids: np.ndarray, labels: np.ndarray,
                 decoded: DecodeResult, pairs: pd.DataFrame, identity: np.ndarray | None,
                 classes: list[str], given: np.ndarray) -> pd.DataFrame:
    """Index rows of the training images: groups, conflicts, what is kept, and the splits."""
    groups = group_ids(len(ids), pairs[["i", "j"]].to_numpy())
    kept, final, conflict = resolve_groups(groups, labels, conflicts=cfg.conflicts,
                                           duplicates=cfg.duplicates)
    train = pd.DataFrame({"id": ids, "source": "train", "label": final,
                          "dhash": hash_to_hex(decoded.hashes), "group": groups,
                          "kept": kept, "conflict": conflict, "original_label": labels,
                          "split": "dropped", "split_group": -1, "fold": -1,
                          "row": np.arange(len(ids)), "path": decoded.paths,
                          "given_label": given},
                         columns=INDEX_COLUMNS)
    train.loc[~kept & ~conflict, "split"] = "duplicate"
    train.loc[conflict & ~kept, "split"] = "conflict"
    # duplicate groups (and identity groups) never straddle two sides
    train["split_group"] = together = split_groups(groups, identity)
    names = split_frame(together[kept], final[kept], fractions=cfg.split, seed=cfg.seed)
    check_split_classes(names, final[kept], fractions=cfg.split, classes=classes)
    train.loc[kept, "split"] = names
    # K folds over every kept image, independent of the split, with the same grouping
    folds = assign_folds(together[kept], final[kept], k=cfg.folds, seed=cfg.seed)
    check_fold_count(final[kept], k=cfg.folds, classes=classes, folds=folds)
    train.loc[kept, "fold"] = folds
    return train


def _meta(cfg: PrepareConfig, train: pd.DataFrame, store: np.ndarray, classes: list[str],
          decoded: DecodeResult, test: Path | None) -> Meta:
    pixels = pixel_key(size=store.shape[1:3], gray=cfg.gray, fit=str(cfg.fit),
                       detail=f"margin {MARGIN}" if cfg.fit == "face" else "")
    return Meta(
        classes=classes, size=list(store.shape[1:3]), gray=cfg.gray, fit=str(cfg.fit),
        channels=int(store.shape[3]), max_distance=cfg.max_distance,
        pixel_threshold=cfg.pixel_threshold, seed=cfg.seed, split=list(cfg.split),
        conflicts=str(cfg.conflicts), duplicates=str(cfg.duplicates), groups=cfg.groups,
        challenge=str(cfg.challenge) if cfg.challenge else None,
        native_sizes=sorted(list(s) for s in decoded.native_sizes),
        test_dir=str(test) if test else None,
        fingerprint=data_fingerprint(train, pixels), pixels=pixels,
        config=as_record(cfg), size_given=cfg.size is not None)


def busy(root: Path) -> str:
    return (f"{root}: another comp command is writing this workspace right now; wait for it "
            "to finish, or pass another --workspace")


def prepare(cfg: PrepareConfig) -> Prepared:
    """Run every step and commit the workspace as one new version. Every input is read and
    checked before the first image is decoded; nothing is visible until the commit."""
    ws = Workspace(cfg.workspace)
    if cfg.challenge is None and cfg.train is None:
        if cfg.test is not None and ws.is_prepared():
            return prepare_test(cfg)
        raise CompError("nothing to prepare: pass CHALLENGE_DIR (or --train and --labels), or "
                        "--test NEW_DIR on an already prepared workspace")
    clock, root = Stopwatch(), cfg.challenge
    val = cfg.val or (root / "val" if root and (root / "val").is_dir() else None)
    test = cfg.test or (root / "test" if root and (root / "test").is_dir() else None)
    with clock.stage("list files and labels"):  # 1.
        found, corrected = apply_corrections(find_train(cfg), exclude=cfg.exclude,
                                             relabel=cfg.relabel)
        codes, classes = encode_labels(pd.Series(found.label_text, index=found.ids),
                                       classes=list(cfg.classes) if cfg.classes else None,
                                       source=found.source)
        check_fold_count(codes, k=cfg.folds, classes=classes)  # before any decoding
        identity = (identity_groups(cfg.groups, pd.Series(found.ids)) if cfg.groups
                    else None)
        targets = [(name, folder, list_images(folder)) for name, folder in
                   (("val", val), ("test", test)) if folder is not None]
    with Staging(ws.root, busy=busy(ws.root)) as stage:
        out = Workspace(ws.root, version=stage.dir)
        summary = _build(cfg, out, found=found, codes=codes, classes=classes,
                         identity=identity, targets=targets, test=test, clock=clock,
                         corrected=corrected)
        fault_point("prepare:staged")
        stage.commit()
    return Prepared(summary, clock, ws.root / CURRENT / out.report.name)


def given_codes(found: TrainSet, codes: np.ndarray) -> np.ndarray:
    """The class code of each image's label as given (before --relabel): the code its text
    has among the labels used (-1 for a text that no image kept)."""
    code_of = dict(zip(found.label_text, codes.tolist(), strict=True))
    given = found.given_text if found.given_text is not None else found.label_text
    return np.array([code_of.get(t, -1) for t in given], dtype=np.int64)


def _build(cfg: PrepareConfig, out: Workspace, *, found: TrainSet, codes: np.ndarray,
           classes: list[str], identity: np.ndarray | None,
           targets: list[tuple[str, Path, list[str]]], test: Path | None,
           clock: Stopwatch, corrected: dict[str, int]) -> PrepareSummary:
    """Steps 2-7, every file written into `out` (the staging folder)."""
    with clock.stage("decode train"):  # 2.
        decoded = decode_to_store(found.paths, out.store("train"), size=cfg.size,
                                  gray=cfg.gray, fit=cfg.fit, workers=cfg.workers,
                                  skip_bad=cfg.skip_bad, desc="decode train",
                                  no_face=cfg.no_face)
    fault_point("prepare:decoded")
    ids = np.array(found.ids, dtype=object)[decoded.kept]
    store = out.load_store("train")
    with clock.stage("duplicates"):  # 3.
        pairs = find_duplicates(decoded.hashes, store, max_distance=cfg.max_distance,
                                pixel_threshold=cfg.pixel_threshold)
    with clock.stage("conflicts and splits"):  # 4.-5.
        train = _train_frame(cfg, ids, codes[decoded.kept], decoded, pairs,
                             None if identity is None else identity[decoded.kept], classes,
                             given_codes(found, codes)[decoded.kept])
    meta = _meta(cfg, train, store, classes, decoded, test)
    frames, overlaps = [train], []
    faceless = {"no_face": len(decoded.no_face)} if cfg.fit == "face" else {}
    for source, folder, paths in targets:  # 6.
        rows, overlap, no_face = ingest_target(cfg, out, source=source, folder=folder,
                                               paths=paths, meta=meta, train=train,
                                               clock=clock)
        frames.append(rows)
        overlaps.append(overlap)
        if cfg.fit == "face":
            faceless[f"{source}_no_face"] = len(no_face)
    index = pd.concat(frames, ignore_index=True)
    overlap = (pd.concat(overlaps, ignore_index=True) if overlaps
               else pd.DataFrame(columns=OVERLAP_COLUMNS))
    with clock.stage("report and index"):  # 7.
        summary = summarise(index, pairs, overlap, found.skipped + decoded.bad, meta,
                            clock.total(), folds=cfg.folds, corrected=corrected,
                            no_face=faceless,
                            no_face_action=str(cfg.no_face) if cfg.fit == "face" else None)
        if cfg.fit == "face":
            no_face_montage(decoded.no_face, ws=out, size=(meta.size[0], meta.size[1]),
                            gray=cfg.gray)
        meta = replace(meta, summary=summary.to_json(), store_rows=_store_rows(index))
        write_csv(out.pairs, pairs.assign(id_i=ids[pairs["i"]], id_j=ids[pairs["j"]]))
        write_csv(out.overlap, overlap)
        write_csv(out.index, index)
        write_prepare_report(out, index, pairs, overlap, summary, store, classes)
        write_json(out.meta, meta.to_json())
    return summary


def _store_rows(index: pd.DataFrame) -> dict[str, int]:
    """Rows of each source's store, as meta.json records them (readers check the stores)."""
    return {str(k): int(v) for k, v in index["source"].value_counts().items()}


def prepare_test(cfg: PrepareConfig) -> Prepared:
    """Phase 2: decode and hash only the new test images, recompute only the test overlap, and
    commit a new version that shares every other file with the current one."""
    ws = Workspace(cfg.workspace)
    meta = ws.load_meta()
    test_dir = cfg.test
    if test_dir is None:
        raise CompError("pass --test NEW_DIR: the folder of new test images")
    clock = Stopwatch()
    with clock.stage("read workspace"):
        paths = list_images(test_dir)
        index = ws.load_index()
        train = index[index["source"] == "train"].reset_index(drop=True)
    cfg = replace(cfg, max_distance=meta.max_distance, pixel_threshold=meta.pixel_threshold)
    with Staging(ws.root, busy=busy(ws.root)) as stage:
        out = Workspace(ws.root, version=stage.dir)
        # the files this ingest writes anew are not linked: meta.json's store rows would
        # refuse the new test store while it is read back
        stage.link_current(skip=frozenset({out.store("test").name, out.meta.name,
                                           out.index.name, out.overlap.name}))
        rows, overlap, no_face = ingest_target(cfg, out, source="test", folder=test_dir,
                                               paths=paths, meta=meta, train=train,
                                               clock=clock)
        with clock.stage("write index"):
            index = pd.concat([index[index["source"] != "test"], rows], ignore_index=True)
            old = ws.load_overlap() if ws.overlap.exists() else None
            if old is not None and len(old):
                overlap = pd.concat([old[old["source"] != "test"], overlap], ignore_index=True)
            write_csv(out.overlap, overlap)
            write_csv(out.index, index)
            test_overlap = overlap[overlap["source"] == "test"]
            summary = PrepareSummary.from_json(meta.summary).with_test(
                images=len(rows), in_train=len(test_overlap),
                consistent=int(test_overlap["consistent"].astype(bool).sum()),
                no_face=len(no_face) if meta.fit == "face" else None,
                seconds=round(clock.total(), 2))
            write_json(out.meta, replace(meta, summary=summary.to_json(),
                                         test_dir=str(test_dir),
                                         store_rows=_store_rows(index)).to_json())
        fault_point("ingest:staged")
        stage.commit()
    return Prepared(summary, clock, ws.root / CURRENT / out.report.name, phase2=True)
