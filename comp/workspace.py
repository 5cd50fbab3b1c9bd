"""A prepared workspace: the name of every file in it, its typed `Meta`, the readers, and the
atomic writes every module uses (temp file + fsync + rename, or an exclusive new name)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from comp.commit import version_dir
from comp.errors import CompError, note

DEFAULT_WORKSPACE = Path("data/workspace")
FINGERPRINT_COLUMNS = ["id", "label", "dhash", "kept", "split", "fold"]
TEMP_NAME = re.compile(r"^\..*\.pid(\d+)\..*\.tmp(\.\w+)*$")
REBUILD = "run `comp prepare CHALLENGE_DIR` again to rebuild it"


@dataclass(frozen=True)
class Meta:
    """meta.json: how the workspace was prepared, and the fingerprint of its data."""

    classes: list[str]
    size: list[int]  # (height, width) of the store
    gray: bool
    fit: str
    channels: int
    max_distance: int
    pixel_threshold: float
    seed: int
    split: list[float]
    conflicts: str
    duplicates: str
    groups: str | None
    challenge: str | None
    native_sizes: list[list[int]]  # sizes of the training files before any resize
    test_dir: str | None
    fingerprint: str  # of the kept training data and `pixels`: runs and submissions are tied to it
    config: dict[str, Any]
    size_given: bool = False  # --size was passed: val/test are resized to it too
    store_rows: dict[str, int] = field(default_factory=dict)  # per source, checked on read
    summary: dict[str, Any] = field(default_factory=dict)
    pixels: str = ""  # how the stored pixels were made (`pixel_key`); "" before comp recorded it

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Meta:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class Workspace:
    """Paths inside a prepared workspace (default `data/workspace`), and its readers.

    A workspace is a versioned folder (`comp.commit`): its files live in the version that
    `<root>/current` names, resolved once per `Workspace` object, so one object reads one
    version however many commits happen meanwhile. `version` names a folder explicitly (a
    writer's staging folder). A workspace written before versions existed is read in place.
    """

    root: Path
    version: Path | None = None

    @cached_property
    def dir(self) -> Path:
        return version_dir(self.root, self.version,
                           fix=f"run `comp prepare CHALLENGE_DIR -w {self.root}` to rebuild it")

    def store(self, source: str) -> Path:
        return self.dir / f"images-{source}.npy"

    @property
    def index(self) -> Path:
        return self.dir / "index.csv"

    @property
    def overlap(self) -> Path:
        return self.dir / "overlap.csv"

    @property
    def pairs(self) -> Path:
        return self.dir / "pairs.csv"

    @property
    def meta(self) -> Path:
        return self.dir / "meta.json"

    @property
    def report(self) -> Path:
        return self.dir / "prepare-report.md"

    @property
    def duplicates_png(self) -> Path:
        return self.dir / "duplicates.png"

    @property
    def conflicts_png(self) -> Path:
        return self.dir / "conflicts.png"

    @property
    def no_face_png(self) -> Path:
        return self.dir / "no-face.png"

    def is_prepared(self) -> bool:
        return self.meta.exists() and self.index.exists() and self.store("train").exists()

    def require(self) -> None:
        if not self.is_prepared():
            raise CompError(f"{self.root}: no prepared workspace here; run `comp prepare "
                            "CHALLENGE_DIR` first (or pass --workspace)")

    def load_meta(self) -> Meta:
        self.require()
        try:
            data = json.loads(self.meta.read_text())
            if not isinstance(data, dict):
                raise ValueError(f"a JSON {type(data).__name__}, not an object")
            return Meta.from_json(data)
        except (ValueError, TypeError, UnicodeDecodeError) as exc:
            raise CompError(f"{self.meta}: damaged ({str(exc).splitlines()[0]}); "
                            f"{REBUILD}") from None

    def load_index(self) -> pd.DataFrame:
        self.require()
        try:
            frame = pd.read_csv(self.index, dtype={"id": str, "dhash": str, "split": str,
                                                   "source": str}, low_memory=False)
        except (ValueError, pd.errors.ParserError) as exc:
            raise CompError(f"{self.index}: damaged ({str(exc).splitlines()[0]}); "
                            f"{REBUILD}") from None
        for column in ("kept", "conflict"):
            if column in frame:
                frame[column] = frame[column].fillna(False).astype(bool)
        self._check_fingerprint(frame)
        return frame

    def _check_fingerprint(self, index: pd.DataFrame) -> None:
        """index.csv and meta.json belong together: the training rows hash to the
        fingerprint that meta.json (and every run trained on them) records."""
        expected = self._meta_raw.get("fingerprint")
        if expected is None:
            return  # no meta.json yet, or damaged: load_meta says which
        try:
            got = data_fingerprint(index[index["source"] == "train"].reset_index(drop=True),
                                   str(self._meta_raw.get("pixels", "")))
        except KeyError:
            return  # columns missing: the readers that need them say so
        except (TypeError, ValueError) as exc:  # a cut file: missing cells
            raise CompError(f"{self.index}: damaged ({str(exc).splitlines()[0]}); "
                            f"{REBUILD}") from None
        if got != expected:
            raise CompError(f"{self.index}: does not match meta.json (fingerprint {got}, "
                            f"expected {expected}): the workspace is damaged; {REBUILD}")

    def load_overlap(self) -> pd.DataFrame:
        """overlap.csv: val/test images that copy labelled training images."""
        return self._table(self.overlap, ("source", "id", "train_ids", "distance",
                                          "consistent"), dtype={"id": str, "train_ids": str})

    def load_pairs(self) -> pd.DataFrame:
        """pairs.csv: the duplicate pairs among the training images (store rows i, j)."""
        return self._table(self.pairs, ("i", "j", "distance"))

    def _table(self, path: Path, columns: tuple[str, ...],
               dtype: dict[str, Any] | None = None) -> pd.DataFrame:
        self.require()
        try:
            frame = pd.read_csv(path, dtype=dtype)
        except FileNotFoundError:
            raise CompError(f"{path}: missing from the workspace; {REBUILD}") from None
        except (ValueError, UnicodeDecodeError, pd.errors.ParserError,
                pd.errors.EmptyDataError) as exc:
            raise CompError(f"{path}: damaged ({str(exc).splitlines()[0]}); {REBUILD}") from None
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise CompError(f"{path}: damaged (no column {missing[0]!r}); {REBUILD}")
        return frame

    def load_store(self, source: str) -> np.ndarray:
        """A source's images as a read-only memory map (N,H,W,C uint8)."""
        path = self.store(source)
        if not path.exists():
            raise CompError(f"{path}: image store not found; run `comp prepare` first")
        try:
            store = np.load(path, mmap_mode="r")
        except (ValueError, OSError) as exc:
            raise CompError(f"{path}: damaged ({str(exc).splitlines()[0]}); {REBUILD}") from None
        expected = self._meta_raw.get("store_rows", {}).get(source)
        if expected is not None and (store.ndim != 4 or store.shape[0] != expected):
            raise CompError(f"{path}: holds {store.shape[0]} images but meta.json says "
                            f"{expected}: the workspace is damaged; {REBUILD}")
        return store

    @cached_property
    def _meta_raw(self) -> dict[str, Any]:
        """meta.json as read once by the consistency checks of the store and index readers
        ({} when it is absent, as in a staging folder, or damaged: load_meta says so)."""
        try:
            data = json.loads(self.meta.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def split(self, name: str, index: pd.DataFrame | None = None
              ) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
        """Pixels, labels and index rows of one split (train, val, holdout) of the kept
        training images."""
        rows = self.split_rows(name, index)
        store = self.load_store("train")
        return np.asarray(store[rows["row"].to_numpy()]), rows["label"].to_numpy(np.int64), rows

    def split_rows(self, name: str, index: pd.DataFrame | None = None) -> pd.DataFrame:
        """Index rows of one split of the kept training images (no pixels read)."""
        index = self.load_index() if index is None else index
        return index[(index["source"] == "train") & (index["split"] == name)]

    def labelled(self, index: pd.DataFrame | None = None) -> pd.DataFrame:
        """Index rows of every kept labelled image, each with its fold (cross-fitting)."""
        index = self.load_index() if index is None else index
        rows = index[(index["source"] == "train") & index["kept"]]
        if "fold" not in rows or (rows["fold"] < 0).any():
            raise CompError(f"{self.root}: prepared without folds (an older comp); "
                            f"{REBUILD}, or train with --folds 1")
        return rows


# -- atomic writes ---------------------------------------------------------------------------------

def _temp_beside(path: Path, suffix: str | None = None) -> Path:
    """A new hidden temporary file beside `path`, named with this process's id, ending in
    `suffix` (default: `path`'s own; a writer that checks it, e.g. Keras', needs it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.pid{os.getpid()}.",
                                suffix=".tmp" + (path.suffix if suffix is None else suffix),
                                dir=path.parent)
    os.close(fd)
    return Path(name)


def remove_dead_temps(folder: Path) -> None:
    """Remove the temporary files of processes that no longer run (killed mid-write)."""
    if not folder.is_dir():
        return
    for entry in folder.iterdir():
        found = TEMP_NAME.match(entry.name)
        if found is None:
            continue
        try:
            os.kill(int(found.group(1)), 0)
        except ProcessLookupError:
            entry.unlink(missing_ok=True)
        except PermissionError:
            continue  # alive, another user's


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, write: Callable[[Path], None], *, suffix: str | None = None
                 ) -> None:
    """Call write(tmp) on a temporary file beside `path` (ending in `suffix`, default
    `path`'s), fsync it, then rename it over `path`: a reader sees the old file or the new
    one, never a half-written one; what a killed writer left is removed by the next one."""
    tmp = _temp_beside(path, suffix)
    try:
        write(tmp)
        fsync_file(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def claim_name(folder: Path, stem: str, suffix: str, create: Callable[[Path], None]) -> Path:
    """`create(path)` at `<stem><suffix>`, or `<stem>-2<suffix>`, `-3`, ...: the first name
    that `create` can take. `create` must fail with FileExistsError on a taken name (mkdir,
    os.link, open with O_EXCL), so claiming a name is atomic: two processes never get one."""
    folder.mkdir(parents=True, exist_ok=True)
    path, k = folder / f"{stem}{suffix}", 2
    while True:
        try:
            create(path)
            return path
        except FileExistsError:
            path, k = folder / f"{stem}-{k}{suffix}", k + 1


def write_new(path: Path, write: Callable[[Path], None]) -> None:
    """Write a file that must not exist yet: written and fsynced under a temporary name, then
    hard-linked to `path` (FileExistsError, and nothing changed, if `path` is taken)."""
    tmp = _temp_beside(path)
    try:
        write(tmp)
        fsync_file(tmp)
        os.link(tmp, path)
    finally:
        tmp.unlink()


def write_text(path: Path, text: str) -> None:
    def write(tmp: Path) -> None:
        tmp.write_text(text)

    atomic_write(path, write)


def write_json(path: Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, default=str) + "\n")


def write_csv(path: Path, frame: pd.DataFrame) -> None:
    atomic_write(path, lambda p: frame.to_csv(p, index=False))


def read_json(path: Path, *, what: str, fix: str) -> Any:
    """A JSON file, or one line saying it is missing or damaged and how to rebuild it."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise CompError(f"{path}: {what} not found; {fix}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise CompError(f"{path}: {what} is damaged ({str(exc).splitlines()[0]}); "
                        f"{fix}") from None


def read_npz(path: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray] | None:
    """The arrays `keys` of a cache file, or None when it is absent or unreadable (a cut or
    overwritten file is said in one line: the caller computes it again)."""
    if not path.exists():
        return None
    try:
        with np.load(path) as saved:
            return {k: saved[k] for k in keys}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        note(f"{path}: unreadable cache ({str(exc).splitlines()[0] or type(exc).__name__}); "
             "computing it again")
        return None


def fingerprint(frame: pd.DataFrame, columns: list[str], *, extra: str = "") -> str:
    """Short content hash of some columns of a frame (and `extra`, when given)."""
    digest = hashlib.sha256()
    for column in columns:
        digest.update(column.encode())
        digest.update("\x1f".join(frame[column].astype(str)).encode())
    if extra:
        digest.update(b"\x1e" + extra.encode())
    return digest.hexdigest()[:16]


def pixel_key(*, size: tuple[int, int] | list[int], gray: bool, fit: str, detail: str = ""
              ) -> str:
    """Words for everything that shapes the stored pixels (e.g. `56x56 rgb crop`): part of
    the data fingerprint, so runs trained on other pixels of the same images are refused."""
    return " ".join(x for x in (f"{size[0]}x{size[1]}", "gray" if gray else "rgb", fit,
                                detail) if x)


def data_fingerprint(train: pd.DataFrame, pixels: str) -> str:
    """The data identity runs and submissions are tied to: the kept training rows (ids,
    labels, hashes, splits, folds) and how their pixels were stored."""
    return fingerprint(train, FINGERPRINT_COLUMNS, extra=pixels)
