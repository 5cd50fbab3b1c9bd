"""Where every artefact of a prepared challenge lives, and atomic writes for all of them."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from comp.errors import CompError

DEFAULT_WORKSPACE = Path("data/workspace")


@dataclass(frozen=True)
class Workspace:
    """Paths inside a prepared workspace (default `data/workspace`)."""

    root: Path

    def store(self, source: str) -> Path:
        return self.root / f"images-{source}.npy"

    @property
    def index(self) -> Path:
        return self.root / "index.csv"

    @property
    def overlap(self) -> Path:
        return self.root / "overlap.csv"

    @property
    def pairs(self) -> Path:
        return self.root / "pairs.csv"

    @property
    def meta(self) -> Path:
        return self.root / "meta.json"

    @property
    def report(self) -> Path:
        return self.root / "prepare-report.md"

    def is_prepared(self) -> bool:
        return self.meta.exists() and self.index.exists() and self.store("train").exists()

    def require(self) -> None:
        if not self.is_prepared():
            raise CompError(f"{self.root}: no prepared workspace here; run `comp prepare "
                            "CHALLENGE_DIR` first (or pass --workspace)")

    def load_meta(self) -> dict[str, Any]:
        self.require()
        return json.loads(self.meta.read_text())

    def load_index(self) -> pd.DataFrame:
        self.require()
        frame = pd.read_csv(self.index, dtype={"id": str, "dhash": str, "split": str,
                                               "source": str}, low_memory=False)
        for column in ("kept", "conflict"):
            if column in frame:
                frame[column] = frame[column].fillna(False).astype(bool)
        return frame


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call write(tmp) on a temporary file beside `path`, then rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix,
                                dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text(path: Path, text: str) -> None:
    def write(tmp: Path) -> None:
        tmp.write_text(text)

    atomic_write(path, write)


def write_json(path: Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, default=str) + "\n")


def write_csv(path: Path, frame: pd.DataFrame) -> None:
    atomic_write(path, lambda p: frame.to_csv(p, index=False))


def fingerprint(frame: pd.DataFrame, columns: list[str]) -> str:
    """Short content hash of some columns of a frame (data identity for runs and submissions)."""
    digest = hashlib.sha256()
    for column in columns:
        digest.update(column.encode())
        digest.update("\x1f".join(frame[column].astype(str)).encode())
    return digest.hexdigest()[:16]
