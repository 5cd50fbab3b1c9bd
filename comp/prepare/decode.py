"""Decoding every image once (in parallel) into a uint8 store, hashing the native pixels.

The store is one `.npy` array (N, H, W, C) per source, written under a temporary name and renamed
when complete, so an interrupted run never leaves a file that a later command would read.
Hashes are computed in the same pass on the native-size pixels, so they equal
`imagehash.dhash(PIL.Image.open(path))` even when the store is resized.
"""

from __future__ import annotations

import ctypes
import errno
import gc
import multiprocessing
import os
import signal
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib.format import open_memmap
from PIL import Image, UnidentifiedImageError
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from comp.config import MIN_SIDE
from comp.errors import CompError
from comp.prepare.dhash import dhash
from comp.prepare.image import bad_image_message, decode_file, image_size

CHUNK = 512


@dataclass
class ChunkResult:
    start: int
    hashes: np.ndarray
    bad: list[tuple[int, str]] = field(default_factory=list)
    sizes: list[tuple[int, int]] = field(default_factory=list)
    no_face: list[int] = field(default_factory=list)  # rows where "face" found none


def _prefetch(paths: Sequence[str]) -> None:
    """Ask the kernel to start reading every file of a chunk at once: files that are not in
    the page cache (a fresh test set) then arrive in parallel instead of one by one (the
    phase-2 benchmark's `--profile` table shows the decode of 20,000 cold PNGs)."""
    if not hasattr(os, "posix_fadvise"):
        return
    for path in paths:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue  # the decode reports it
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
        finally:
            os.close(fd)


def _decode_chunk(store: str, start: int, paths: Sequence[str], size: tuple[int, int] | None,
                  gray: bool, fit: str) -> ChunkResult:
    """Worker: decode `paths` into rows start.. of the store; hash the native pixels.

    The chunk is assembled in memory and written with one positioned write (no page faults on
    a shared mapping, no lock: chunks own disjoint byte ranges).
    """
    _prefetch(paths)
    if fit == "face":  # one OpenCV thread per worker: the workers already use every core
        import cv2

        cv2.setNumThreads(1)
    layout = np.load(store, mmap_mode="r")
    target, offset, row_bytes = layout.shape[1:3], layout.offset, int(np.prod(layout.shape[1:]))
    out = np.zeros((len(paths), *layout.shape[1:]), dtype=np.uint8)
    del layout
    hashes = np.zeros(len(paths), dtype=np.uint64)
    result = ChunkResult(start, hashes)
    by_shape: dict[tuple[int, ...], list[tuple[int, np.ndarray]]] = {}
    for k, path in enumerate(paths):
        try:
            pixels, hash_pixels, found = decode_file(path, size, gray, fit)
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
            result.bad.append((start + k, bad_image_message(path, exc)))
            result.sizes.append((0, 0))
            continue
        result.sizes.append(hash_pixels.shape[:2])
        if min(hash_pixels.shape[:2]) < MIN_SIDE:
            result.bad.append((start + k, (
                f"{path}: image is {hash_pixels.shape[0]}x{hash_pixels.shape[1]}, smaller "
                f"than comp's {MIN_SIDE}x{MIN_SIDE} minimum (too few pixels to hash, compare "
                "or learn from); remove it")))
            continue
        if pixels.shape[:2] != tuple(target):
            result.bad.append((start + k, (
                f"{path}: image is {pixels.shape[0]}x{pixels.shape[1]} but the store is "
                f"{target[0]}x{target[1]}; pass --size HxW to resize every image")))
            continue
        out[k] = pixels
        if not found:
            result.no_face.append(start + k)
        by_shape.setdefault(hash_pixels.shape, []).append((k, hash_pixels))
    # one BLAS thread per worker: the workers already use every core, and idle BLAS threads
    # spin while they wait (measured: +25 % wall time with two workers on two cores)
    with threadpool_limits(1):
        for items in by_shape.values():
            idx = np.array([k for k, _ in items])
            hashes[idx] = dhash(np.stack([g for _, g in items]))
    fd = os.open(store, os.O_WRONLY)
    try:
        write_all_at(fd, out.data, offset + start * row_bytes)  # the buffer itself, no copy
    finally:
        os.close(fd)
    return result


def write_all_at(fd: int, data: memoryview, offset: int) -> None:
    """`os.pwrite` until every byte is written: a short write (a nearly full disk) is
    retried for the rest, and a write that makes no progress raises ENOSPC."""
    view = memoryview(data).cast("B")
    while len(view):
        written = os.pwrite(fd, view, offset)
        if written <= 0:
            raise OSError(errno.ENOSPC, "no space left on the device")
        view, offset = view[written:], offset + written


@dataclass
class DecodeResult:
    """What `decode_to_store` wrote: hashes per kept row, and the files it skipped."""

    paths: list[str]
    kept: np.ndarray  # (len(input),) bool: which input files are in the store
    hashes: np.ndarray
    bad: list[str]
    native_sizes: set[tuple[int, int]]  # (height, width) of the files before any resize
    no_face: list[str] = field(default_factory=list)  # fit "face": files with no face found
    first_of_size: dict[tuple[int, int], str] = field(default_factory=dict)  # a file of each


@dataclass
class _Outcome:
    """What the chunks reported, gathered in the parent."""

    hashes: np.ndarray
    bad: dict[int, str] = field(default_factory=dict)
    sizes: set[tuple[int, int]] = field(default_factory=set)
    no_face: list[int] = field(default_factory=list)
    first: dict[tuple[int, int], int] = field(default_factory=dict)  # size -> its first file

    def add(self, res: ChunkResult) -> None:
        self.hashes[res.start:res.start + len(res.hashes)] = res.hashes
        self.bad.update(res.bad)
        self.sizes.update(res.sizes)
        self.no_face += res.no_face
        for k, found in enumerate(res.sizes):
            self.first.setdefault(found, res.start + k)


PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int | None) -> None:
    """Worker start-up: ask the kernel to kill this worker when its parent dies (a kill -9
    of `comp prepare` must not leave decoders running), and leave at once if it already has.
    (A forkserver's workers are its children: it exits with comp, and they with it.)"""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the pool's own shutdown still applies
        return
    if parent is not None and os.getppid() != parent:
        os._exit(1)


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)))


SIZE_SAMPLE = 51  # headers read to find the images' common size


def common_size(paths: Sequence[str]) -> tuple[int, int]:
    """The size most of the images have, from the headers of up to `SIZE_SAMPLE` of them
    spread over the list (ties: the earlier file's), so that one odd file is the one named,
    not the good ones after it."""
    step = max(1, len(paths) // SIZE_SAMPLE)
    sizes: dict[tuple[int, int], int] = {}
    first_error: CompError | None = None
    for path in paths[::step][:SIZE_SAMPLE]:
        try:
            found = image_size(path)
        except CompError as exc:  # a bad file is named where it is decoded
            first_error = first_error or exc
            continue
        sizes[found] = sizes.get(found, 0) + 1
    if not sizes:
        raise first_error or CompError("no images to decode")
    return max(sizes, key=lambda k: sizes[k])  # dicts keep order: ties go to the earlier


def decode_to_store(paths: Sequence[str], store: Path, *, size: tuple[int, int] | None,
                    gray: bool, fit: str = "crop", workers: int | None = None,
                    skip_bad: bool = False, desc: str = "decode",
                    no_face: str = "keep") -> DecodeResult:
    """Decode every file once into `store` (N,H,W,C uint8 .npy), in parallel, with a progress bar.

    Args:
        paths: image files, in the order of the store's rows.
        store: final path of the `.npy`; written as `<store>.tmp.npy` and renamed when complete.
        size: (height, width) to resize to, or None to keep the images' own size (they must
            all agree; the size most of them have decides: `common_size`).
        gray: store one channel (PIL "L") instead of RGB.
        skip_bad: drop files that fail to decode (reported) instead of stopping at the first.
        fit: "crop", "stretch", or "face" (the main face cropped; see `faces`).
        no_face: with fit "face", what an image with no face found becomes: "keep" (a
            centre crop), "skip" (dropped) or "fail" (stop, naming it).
    Returns:
        The kept paths, their dHashes, and one message per skipped file.
    """
    if not paths:
        raise CompError("no images to decode")
    target = size if size is not None else common_size(paths)
    if fit == "face":  # crops of any size: resized to the first image's when --size is absent
        size = target
    tmp = store.with_name(store.stem + ".tmp.npy")
    store.parent.mkdir(parents=True, exist_ok=True)
    array = open_memmap(tmp, mode="w+", dtype=np.uint8,
                            shape=(len(paths), *target, 1 if gray else 3))
    del array
    try:
        outcome = _decode_all(paths, tmp, size=size, gray=gray, fit=fit,
                              workers=workers or default_workers(), desc=desc)
        _check_outcome(outcome, paths, size=size, skip_bad=skip_bad)
        faceless = sorted(outcome.no_face)
        if faceless and no_face == "fail":
            more = f" (and {len(faceless) - 1} more)" if len(faceless) > 1 else ""
            raise CompError(f"{paths[faceless[0]]}: no face found{more}; pass --no-face keep "
                            "to centre-crop such images or --no-face skip to drop them")
        keep = np.ones(len(paths), dtype=bool)
        keep[list(outcome.bad)] = False
        if no_face == "skip":
            keep[faceless] = False
        if not keep.all():
            _compact(tmp, keep)
        os.replace(tmp, store)
    finally:
        if tmp.exists():
            tmp.unlink()
    bad = outcome.bad
    kept = [p for p, k in zip(paths, keep, strict=True) if k] if not keep.all() else list(paths)
    return DecodeResult(kept, keep, outcome.hashes[keep], [bad[i] for i in sorted(bad)],
                        outcome.sizes - {(0, 0)}, [paths[i] for i in faceless],
                        {size: paths[i] for size, i in outcome.first.items() if size != (0, 0)})


def worker_context() -> Any:
    """How worker processes start: fork is fastest, but forking a process in which
    TensorFlow or JAX already runs threads can kill or hang the workers (seen when a test
    set is ingested after training in the same process): then clean workers instead."""
    threaded = "tensorflow" in sys.modules or "jax" in sys.modules
    return multiprocessing.get_context("forkserver" if threaded else "fork")


def _decode_all(paths: Sequence[str], tmp: Path, *, size: tuple[int, int] | None, gray: bool,
                fit: str, workers: int, desc: str) -> _Outcome:
    """Decode the chunks of `paths` into `tmp`, in `workers` processes, with a progress bar."""
    outcome = _Outcome(np.zeros(len(paths), dtype=np.uint64))
    chunks = [(i, list(paths[i:i + CHUNK])) for i in range(0, len(paths), CHUNK)]
    with tqdm(total=len(paths), desc=desc, unit="img", leave=False, disable=None) as bar:
        if workers == 1:
            for s, c in chunks:
                outcome.add(_decode_chunk(str(tmp), s, c, size, gray, fit))
                bar.update(len(c))
            return outcome
        ctx = worker_context()
        method = ctx.get_start_method()
        # objects that exist before the fork are never garbage in the workers: keep their
        # collector from walking them (and copying every page they live on)
        gc.freeze()
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=die_with_parent,
                                 initargs=(os.getpid() if method == "fork" else None,)) as pool:
            try:  # with fork, the first submit starts every worker
                futures = [pool.submit(_decode_chunk, str(tmp), s, c, size, gray, fit)
                           for s, c in chunks]
            finally:
                gc.unfreeze()
            for fut, (_, c) in zip(futures, chunks, strict=True):
                outcome.add(fut.result())
                bar.update(len(c))
    return outcome


def _check_outcome(outcome: _Outcome, paths: Sequence[str], *, size: tuple[int, int] | None,
                   skip_bad: bool) -> None:
    """Stop at the first bad file (unless skipped) or at images of several sizes."""
    bad = outcome.bad
    if bad and not skip_bad:
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise CompError(bad[min(bad)] + more)
    sizes = outcome.sizes - {(0, 0)}
    if size is None and len(sizes) > 1:
        shown = ", ".join(f"{h}x{w}" for h, w in sorted(sizes)[:4])
        odd = max(sizes, key=lambda s: outcome.first[s])  # the size met last
        raise CompError(f"{paths[outcome.first[odd]]}: image is {odd[0]}x{odd[1]}, but the "
                        f"images have different sizes ({shown}); pass --size HxW to resize "
                        "them all")


def _compact(tmp: Path, keep: np.ndarray) -> None:
    """Rewrite the store without the rows of skipped files."""
    src = np.load(tmp, mmap_mode="r")
    dst_path = tmp.with_name(tmp.stem + ".compact.npy")
    dst = open_memmap(dst_path, mode="w+", dtype=np.uint8, shape=(int(keep.sum()), *src.shape[1:]))
    dst[:] = src[keep]
    dst.flush()
    del dst, src
    os.replace(dst_path, tmp)
