"""Folders that change in one step: a workspace, a run folder.

A folder's content lives in `versions/<id>/`; the symlink `current` names the committed one.
A writer takes the folder's lock, builds the next version in a private staging folder (every
file written, checked and fsynced), renames it into `versions/` and swaps `current` with one
`rename`. A reader resolves `current` once and reads that version only, so it sees the old
content or the new, never a mix; a kill at any point leaves the last committed version as it
was, and the next writer removes what the killed one left behind. As SQLite does with its
journal: build aside, fsync, switch in one step.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import ContextDecorator, contextmanager
from pathlib import Path
from types import TracebackType

from comp.errors import CompError
from comp.faults import fault_point

CURRENT = "current"
VERSIONS = "versions"
LOCK = ".lock"
STAGING = ".staging-"
KEEP = 2  # versions kept: the current one and the one before (for a reader still on it)


READ_LOCK = ".read-"  # + a version's name: a reader's shared lock on that version

_pins: dict[Path, Path] | None = None  # inside `reading()`: each folder's version, as first read
_pin_fds: list[int] = []


def version_dir(root: Path, version: Path | None, *, fix: str = "") -> Path:
    """Where a versioned folder's files are read: `version` when one is named (a writer's
    staging folder), else the committed version, else (written before versions) `root`.
    Inside `reading()`, the version first read stays the one read, and no writer prunes it.
    `fix`: what the user can do when the folder is damaged (said with the error)."""
    if version is not None:
        return version
    if _pins is None:
        return current_dir(root, fix=fix) or root
    key = root.absolute()
    if key not in _pins:
        _pins[key] = _pin(root, fix=fix)
    return _pins[key]


def _pin(root: Path, *, fix: str) -> Path:
    """The committed version, held with a shared lock on `<root>/.read-<version>` that
    `prune` respects. A version pruned between reading `current` and taking the lock is
    seen (its folder is gone once the lock is ours) and `current` is read again."""
    while True:
        current = current_dir(root, fix=fix)
        if current is None or current.parent.name != VERSIONS:
            return current or root
        try:
            fd = os.open(root / f"{READ_LOCK}{current.name}", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            return current  # a folder this user cannot write: no writer prunes it either
        fcntl.flock(fd, fcntl.LOCK_SH)  # waits only while a prune holds it
        if current.is_dir():
            _pin_fds.append(fd)
            return current
        os.close(fd)


class reading(ContextDecorator):  # noqa: N801 (used as `with reading():` or `@reading()`)
    """A command's reads: every versioned folder (workspace, run, fold model) is read at the
    version its first read found, and writers committing meanwhile (a resumed run, a second
    prepare) keep that version until the block ends. Nested blocks share the outer one."""

    def _recreate_cm(self) -> reading:
        return type(self)()  # a fresh block per decorated call

    def __enter__(self) -> reading:
        global _pins
        self.outer = _pins is not None
        if not self.outer:
            _pins = {}
        return self

    def __exit__(self, *exc: object) -> None:
        global _pins
        if self.outer:
            return
        _pins = None
        while _pin_fds:
            os.close(_pin_fds.pop())  # closing the file drops its lock


def current_dir(root: Path, *, fix: str = "") -> Path | None:
    """The committed version of a versioned folder, or None for a folder without versions.

    Raises:
        CompError when `current` points nowhere (a damaged folder).
    """
    link = root / CURRENT
    if not link.is_symlink():
        return link if link.is_dir() else None  # a copy that followed the link
    target = root / os.readlink(link)
    if not target.is_dir():
        raise CompError(f"{link}: points to a missing version ({os.readlink(link)}); the folder "
                        f"is damaged{'; ' + fix if fix else ''}")
    return target


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(path: Path) -> None:
    for entry in path.rglob("*"):
        if entry.is_file() and not entry.is_symlink():
            fd = os.open(entry, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    _fsync_dir(path)


class FolderLock:
    """An exclusive lock on a versioned folder (flock on `<root>/.lock`: the kernel drops it
    when the holder dies, so a killed writer never leaves the folder locked)."""

    def __init__(self, root: Path, *, busy: str) -> None:
        self.root, self.busy, self.fd = root, busy, -1

    def __enter__(self) -> FolderLock:
        self.root.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.root / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            self.fd = -1
            raise CompError(self.busy) from None
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd >= 0:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = -1


class Staging:
    """The next version of a folder, built aside and committed in one step.

    Use as a context manager; files go into `staging.dir`; `commit()` makes them current.
    Leaving the block without a commit (an error, Ctrl-C) removes the staging folder. The
    folder's lock is taken on entry unless the caller already holds it (`locked=True`).
    """

    def __init__(self, root: Path, *, busy: str = "", locked: bool = False) -> None:
        self.root = root
        self.lock = None if locked else FolderLock(root, busy=busy)
        # names sort by time: the version folders' order is the commits' order
        self.dir = root / f"{STAGING}{time.time_ns():020d}-{os.getpid()}"
        self.committed = False

    def __enter__(self) -> Staging:
        if self.lock is not None:
            self.lock.__enter__()
        try:
            remove_stale(self.root)
            self.dir.mkdir(parents=True)
        except BaseException:
            if self.lock is not None:
                self.lock.__exit__()
            raise
        return self

    def link_current(self, *, skip: frozenset[str] = frozenset()) -> None:
        """Hard-link the committed version's files (not copies: a later write replaces a
        link by rename, never the shared file) into the staging folder."""
        current = current_dir(self.root)
        source = current if current is not None else self.root
        for entry in source.iterdir():
            if entry.is_file() and entry.name not in skip and entry.name != LOCK:
                os.link(entry, self.dir / entry.name)

    def commit(self) -> Path:
        """Make the staged folder the current version; returns its path."""
        _fsync_tree(self.dir)
        versions = self.root / VERSIONS
        versions.mkdir(exist_ok=True)
        final = versions / self.dir.name[len(STAGING):]
        os.rename(self.dir, final)
        fault_point("commit:renamed")
        link = self.root / f".{CURRENT}.{os.getpid()}"
        if link.is_symlink():
            link.unlink()
        os.symlink(f"{VERSIONS}/{final.name}", link)
        os.replace(link, self.root / CURRENT)  # the one step
        _fsync_dir(self.root)
        self.committed = True
        prune(self.root)
        return final

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            if not self.committed and self.dir.exists():
                shutil.rmtree(self.dir, ignore_errors=True)
        finally:
            if self.lock is not None:
                self.lock.__exit__()


def remove_stale(root: Path) -> None:
    """Remove what killed writers left (staging folders, half-made links, versions that never
    became current). Call with the folder's lock held: no live writer owns them then."""
    if not root.is_dir():
        return
    for entry in root.iterdir():
        if entry.name.startswith(STAGING):
            shutil.rmtree(entry, ignore_errors=True)
        elif entry.name.startswith(f".{CURRENT}.") and entry.is_symlink():
            entry.unlink()
    prune(root)


def prune(root: Path) -> None:
    """Keep the current version and the one before it; remove older and orphaned ones (a
    version newer than the current one was renamed in but never switched to)."""
    versions = root / VERSIONS
    try:
        current = current_dir(root)
    except CompError:
        return  # `current` points nowhere: nothing is pruned until a commit mends it
    if not versions.is_dir() or current is None:
        return
    names = sorted(p.name for p in versions.iterdir() if p.is_dir())
    older = [n for n in names if n < current.name]
    keep = {current.name, *older[len(older) - (KEEP - 1):]}
    for name in names:
        if name not in keep:
            _remove_unread(root, name)
    for lock in root.glob(f"{READ_LOCK}*"):  # locks of versions already gone
        if not (versions / lock.name[len(READ_LOCK):]).is_dir():
            _remove_unread(root, lock.name[len(READ_LOCK):])


def _remove_unread(root: Path, name: str) -> None:
    """Remove version `name` unless a reader holds it (`reading`): its read lock is taken
    exclusively, without waiting, for the removal."""
    lock = root / f"{READ_LOCK}{name}"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return  # a reader is on it: a later prune removes it
        shutil.rmtree(root / VERSIONS / name, ignore_errors=True)
        lock.unlink(missing_ok=True)
    finally:
        os.close(fd)


@contextmanager
def fresh_folder(final: Path) -> Iterator[Path]:
    """A private folder beside `final` to write a report into; when the block ends without
    an error it replaces `final` whole (`replace_folder`), else it is removed. What a killed
    writer left beside `final` is removed first."""
    for stale in final.parent.glob(f".{final.name}-new-*"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = final.parent / f".{final.name}-new-{time.time_ns()}-{os.getpid()}"
    tmp.mkdir(parents=True)
    try:
        yield tmp
        replace_folder(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def replace_folder(tmp: Path, final: Path) -> None:
    """Replace the folder `final` by the finished folder `tmp` (a report written aside): a
    reader sees the old folder or the new one, never a mix (between the two renames,
    briefly, none)."""
    old = final.with_name(f".{final.name}-old-{time.time_ns()}-{os.getpid()}")
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)
