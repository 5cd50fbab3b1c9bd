"""`comp demo-data`: a synthetic two-phase face challenge that knows its own answers.

Faces are drawn procedurally, in batches, with numpy: background, head, hair, eyes, mouth, pose,
scale, colours and noise vary; the hidden property is glasses (thin frames of random contrast, so
it is learnable but not trivial), with smiles and hair as distractors and a little label noise.
With `classes=4` the label is glasses x smile, written as class names.

It plants what real challenges contain, in known amounts listed in `answers/`: exact duplicates,
near duplicates (re-encoded: brightness +-3, some through a JPEG round trip), duplicates with the
opposite label, a validation set whose every image is a copy of a training image, and phase-2 test
images that leak from train (perturbed copies).

Layout written under DIR:
    train/<id>.png, train.csv (id,label), val/<id>.png, sample_submission_val.csv,
    phase2/test/<id>.png, phase2/sample_submission.csv, answers/*.csv, answers.json
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

from comp.config import MIN_SIDE
from comp.errors import CompError
from comp.prepare.decode import worker_context
from comp.workspace import write_csv, write_json

CLASS_NAMES_4 = ["plain", "glasses", "smile", "glasses_smile"]


@dataclass(frozen=True)
class DemoSpec:
    train: int = 116_157  # training images, planted copies included
    val: int = 5_000  # all copies of training images
    test: int = 20_000  # phase 2; `leak_fraction` of them copy a training image
    size: int = 56
    classes: int = 2
    seed: int = 0
    exact_fraction: float = 0.0012
    near_fraction: float = 0.0010
    conflict_fraction: float = 0.0002
    leak_fraction: float = 0.0106  # the report found 213 of ~20k test images in train
    label_noise: float = 0.03
    positive_rate: float = 0.35
    workers: int | None = None

    def __post_init__(self) -> None:
        if self.classes not in (2, 4):
            raise CompError(f"--classes must be 2 (glasses) or 4 (glasses x smile). Received: "
                            f"{self.classes}")
        if self.size < MIN_SIDE:
            raise CompError(f"--size must be at least {MIN_SIDE} pixels. Received: {self.size}")
        if min(self.train, self.val, self.test) < 0 or self.train < 20 or self.val > self.train:
            raise CompError(f"need --train >= 20 and 0 <= --val <= --train, --test >= 0. "
                            f"Received: train={self.train}, val={self.val}, test={self.test}")


def _ellipse(u: np.ndarray, v: np.ndarray, cu, cv, ru, rv) -> np.ndarray:
    return ((u - cu[:, None, None]) / ru[:, None, None]) ** 2 + \
        ((v - cv[:, None, None]) / rv[:, None, None]) ** 2


def draw_faces(glasses: np.ndarray, smile: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Render a batch of faces (B, size, size, 3) uint8; deterministic for a seed."""
    rng = np.random.default_rng(seed)
    b = len(glasses)
    col = lambda lo, hi: rng.uniform(lo, hi, size=(b, 3)).astype(np.float32)  # noqa: E731
    r = lambda lo, hi: rng.uniform(lo, hi, size=b).astype(np.float32)  # noqa: E731
    grid = (np.arange(size, dtype=np.float32) + 0.5) / size
    x = np.broadcast_to(grid[None, None, :], (b, size, size))
    y = np.broadcast_to(grid[None, :, None], (b, size, size))
    # pose: rotate and scale the face frame around a shifted centre
    angle, scale = r(-0.25, 0.25), r(0.85, 1.12)
    cx, cy = r(0.44, 0.56), r(0.46, 0.56)
    ca, sa = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
    dx, dy = x - cx[:, None, None], y - cy[:, None, None]
    u = (dx * ca + dy * sa) / scale[:, None, None]
    v = (-dx * sa + dy * ca) / scale[:, None, None]
    zeros = np.zeros(b, np.float32)
    # background: colour plus a vertical gradient
    img = col(0.1, 0.9)[:, None, None, :] + (y[..., None] - 0.5) * r(-0.4, 0.4)[:, None, None, None]
    skin = col(0.35, 0.95) * np.array([1.0, 0.8, 0.65], np.float32)
    hair = col(0.0, 0.8)
    has_hair = rng.random(b) < 0.85
    head = _ellipse(u, v, zeros, zeros, r(0.26, 0.32), r(0.33, 0.4))
    hair_mask = (_ellipse(u, v, zeros, zeros - 0.06, r(0.3, 0.37), r(0.36, 0.44)) < 1) & \
        (v < r(-0.12, -0.02)[:, None, None]) & has_hair[:, None, None]
    img = np.where(hair_mask[..., None], hair[:, None, None, :], img)
    img = np.where((head < 1)[..., None], skin[:, None, None, :], img)
    # eyes
    eye_dx, eye_y = r(0.1, 0.14), r(-0.1, -0.04)
    eye_r = r(0.025, 0.04)
    eye_col = col(0.0, 0.35)
    for side in (-1, 1):
        eye = _ellipse(u, v, side * eye_dx, eye_y, eye_r * 1.3, eye_r)
        img = np.where((eye < 1)[..., None], eye_col[:, None, None, :], img)
    # mouth: a smile is a curved band, otherwise a straight one
    mouth_y = r(0.14, 0.2)
    curve = np.where(smile, r(2.5, 5.0), r(-0.5, 0.5))[:, None, None]
    mv = v - mouth_y[:, None, None] - curve * u ** 2
    mouth = (np.abs(mv) < r(0.012, 0.025)[:, None, None]) & \
        (np.abs(u) < r(0.07, 0.12)[:, None, None])
    img = np.where(mouth[..., None], col(0.2, 0.6)[:, None, None, :] * [1, 0.4, 0.4], img)
    # glasses: two rings and a bridge, of random thickness and contrast
    frame = col(0.0, 1.0)
    alpha = np.where(glasses, r(0.35, 1.0), 0)[:, None, None, None]
    ring_r, width = eye_r * r(2.0, 2.8), r(0.012, 0.028)[:, None, None]
    rings = np.zeros((b, size, size), bool)
    for side in (-1, 1):
        d = np.sqrt(_ellipse(u, v, side * eye_dx, eye_y, ring_r * 1.2, ring_r)) * \
            ring_r[:, None, None]
        rings |= np.abs(d - ring_r[:, None, None]) < width
    bridge = (np.abs(v - eye_y[:, None, None]) < width) & \
        (np.abs(u) < (eye_dx - ring_r * 1.2)[:, None, None])
    rings |= bridge
    img = np.where(rings[..., None], img * (1 - alpha) + frame[:, None, None, :] * alpha, img)
    return _camera(img, x, y, r, rng)


def _camera(img: np.ndarray, x: np.ndarray, y: np.ndarray,
            r: Callable[[float, float], np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """What a camera adds to a drawn face: uneven lighting (a few random low-frequency
    waves, different for every photo), softness (a [1, 2, 1] / 4 blur along both axes) and
    noise; uint8."""
    for _ in range(3):
        fx, fy = r(-3, 3)[:, None, None], r(-3, 3)[:, None, None]
        phase = r(0, 2 * np.pi)[:, None, None]
        img = img + (r(0.02, 0.08)[:, None, None] *
                     np.cos(2 * np.pi * (fx * x + fy * y) + phase))[..., None]
    img = (np.roll(img, 1, 1) + 2 * img + np.roll(img, -1, 1)) / 4
    img = (np.roll(img, 1, 2) + 2 * img + np.roll(img, -1, 2)) / 4
    img = img + rng.normal(0, r(0.003, 0.012)[:, None, None, None], size=img.shape)
    return np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8)


def perturb(pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A re-exported copy: brightness +-1..3, and half the time a JPEG round trip at q=95."""
    shift = int(rng.choice([-3, -2, -1, 1, 2, 3]))
    out = np.clip(pixels.astype(np.int16) + shift, 0, 255).astype(np.uint8)
    if rng.random() < 0.5:
        buf = io.BytesIO()
        Image.fromarray(out).save(buf, format="JPEG", quality=95)
        out = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    return out


def _write_batch(args: tuple) -> None:
    """Worker: draw one batch of originals and save them as PNG."""
    folder, ids, glasses, smile, size, seed = args
    faces = draw_faces(glasses, smile, size, seed)
    for i, face in zip(ids, faces, strict=True):
        Image.fromarray(face).save(Path(folder) / f"{i}.png", compress_level=1)


def _label_names(glasses: np.ndarray, smile: np.ndarray, classes: int) -> np.ndarray:
    if classes == 2:
        return glasses.astype(np.int64).astype(str)
    return np.array(CLASS_NAMES_4, dtype=object)[glasses.astype(int) + 2 * smile.astype(int)]


DEMO_ENTRIES = {"train", "train.csv", "val", "sample_submission_val.csv", "phase2", "answers",
                "answers.json"}


def clear_demo_folder(out: Path) -> None:
    """Remove an earlier demo from `out`; refuse a file, or a folder holding anything else
    (a demo never deletes what it did not write)."""
    if out.exists() and not out.is_dir():
        raise CompError(f"{out}: is a file; pass a folder for the demo challenge")
    if not out.exists():
        return
    foreign = sorted(p.name for p in out.iterdir() if p.name not in DEMO_ENTRIES)
    if foreign:
        raise CompError(f"{out}: not empty and not a demo challenge (it holds {foreign[0]!r}"
                        f"{' and more' if len(foreign) > 1 else ''}); pass a new or empty folder")
    for entry in DEMO_ENTRIES:
        path = out / entry
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def _write_originals(out: Path, spec: DemoSpec, ids: np.ndarray, glasses: np.ndarray,
                     smile: np.ndarray, n_train: int) -> None:
    """The original faces, drawn and written in parallel batches of 1,024 (a batch that
    straddles the train/test boundary becomes one job per folder, the test part with its
    own seed)."""
    batch, jobs, total = 1024, [], len(ids)
    for s in range(0, total, batch):
        base = spec.seed * 1_000_003 + s
        parts = ((s, min(s + batch, n_train), "train", base),
                 (max(s, n_train), min(s + batch, total), "phase2/test", base + 500_009))
        jobs += [(str(out / folder), ids[lo:hi], glasses[lo:hi], smile[lo:hi], spec.size,
                  seed) for lo, hi, folder, seed in parts if lo < hi]
    with ProcessPoolExecutor(spec.workers, mp_context=worker_context()) as pool:
        list(tqdm(pool.map(_write_batch, jobs), total=len(jobs), desc="demo faces",
                  leave=False, disable=None))


def _write_answers(out: Path, train_ids: np.ndarray, labels: dict[str, str],
                   plants: list[dict], truth: dict[str, str], val_rows: list[dict],
                   test_rows: list[dict]) -> None:
    """answers/: the planted copies, each training image's given and true label (the drawn
    glasses: the planted label noise and the conflicts differ), the val and test answers."""
    write_csv(out / "answers/train_copies.csv", pd.DataFrame(plants))
    for plant in plants:
        truth[plant["id"]] = truth[plant["original_id"]]
    write_csv(out / "answers/train_labels.csv", pd.DataFrame(
        {"id": train_ids, "label": [labels[i] for i in train_ids],
         "true_label": [truth[i] for i in train_ids]}))
    write_csv(out / "answers/val.csv", pd.DataFrame(val_rows))
    write_csv(out / "answers/test.csv", pd.DataFrame(test_rows))


def _plant_copies(out: Path, rng: np.random.Generator, train_ids: np.ndarray,
                  labels: dict[str, str], kinds: list[str], n_orig: int,
                  classes: np.ndarray) -> list[dict]:
    """Training ids after the originals become copies of originals drawn without
    replacement: exact (the same file), near (perturbed) or conflict (perturbed, the other
    label); `labels` gains theirs. Returns one row per copy."""
    plants = []
    sources = rng.choice(n_orig, size=len(kinds), replace=False)
    other = {c: [d for d in classes if d != c] for c in classes}
    for k, (src, kind) in enumerate(zip(sources, kinds, strict=True)):
        orig, copy = train_ids[src], train_ids[n_orig + k]
        if kind == "exact":
            shutil.copyfile(out / "train" / f"{orig}.png", out / "train" / f"{copy}.png")
            labels[copy] = labels[orig]
        else:
            pixels = perturb(np.asarray(Image.open(out / "train" / f"{orig}.png")
                                        .convert("RGB")), rng)
            Image.fromarray(pixels).save(out / "train" / f"{copy}.png", compress_level=1)
            labels[copy] = labels[orig] if kind == "near" else rng.choice(other[labels[orig]])
        plants.append({"id": copy, "original_id": orig, "kind": kind,
                       "label": labels[copy], "original_label": labels[orig]})
    return plants


def _val_copies(out: Path, rng: np.random.Generator, sources: np.ndarray, val_ids: np.ndarray,
                labels: dict[str, str]) -> list[dict]:
    """Every val image a copy of a training image: exact or perturbed, by a coin."""
    rows = []
    for vid, src in zip(val_ids, sources, strict=True):
        if rng.random() < 0.5:
            shutil.copyfile(out / "train" / f"{src}.png", out / "val" / f"{vid}.png")
        else:
            pixels = perturb(np.asarray(Image.open(out / "train" / f"{src}.png")
                                        .convert("RGB")), rng)
            Image.fromarray(pixels).save(out / "val" / f"{vid}.png", compress_level=1)
        rows.append({"id": vid, "train_id": src, "label": labels[src]})
    return rows


def make_demo(out: Path, spec: DemoSpec = DemoSpec()) -> dict:
    """Write the whole demo challenge under `out` and return the answers summary."""
    rng = np.random.default_rng(spec.seed)
    n_exact = round(spec.train * spec.exact_fraction)
    n_near = round(spec.train * spec.near_fraction)
    n_conflict = max(round(spec.train * spec.conflict_fraction), 1 if spec.train >= 100 else 0)
    n_orig = spec.train - n_exact - n_near - n_conflict
    n_leak = round(spec.test * spec.leak_fraction)
    n_test_orig = spec.test - n_leak
    total = n_orig + n_test_orig
    # ids: zero-padded numbers, shuffled so that copies are not next to their originals
    all_ids = np.array([f"{k:06d}" for k in rng.permutation(spec.train + spec.val + spec.test)])
    train_ids = all_ids[:spec.train]
    val_ids = all_ids[spec.train:spec.train + spec.val]
    test_ids = all_ids[spec.train + spec.val:]
    glasses = rng.random(total) < spec.positive_rate
    smile = rng.random(total) < 0.5
    noisy = glasses ^ (rng.random(total) < spec.label_noise)
    names = _label_names(noisy, smile, spec.classes)
    clear_demo_folder(out)
    for sub in ("train", "val", "phase2/test", "answers"):
        (out / sub).mkdir(parents=True)
    ids_orig = np.concatenate([train_ids[:n_orig], test_ids[:n_test_orig]])
    _write_originals(out, spec, ids_orig, glasses, smile, n_orig)  # 1.
    # 2. planted copies of training originals
    def load(i: str) -> np.ndarray:
        return np.asarray(Image.open(out / "train" / f"{i}.png").convert("RGB"))

    def save(folder: str, i: str, pixels: np.ndarray) -> None:
        Image.fromarray(pixels).save(out / folder / f"{i}.png", compress_level=1)

    labels = dict(zip(train_ids[:n_orig], names[:n_orig], strict=True))
    kinds = ["exact"] * n_exact + ["near"] * n_near + ["conflict"] * n_conflict
    plants = _plant_copies(out, rng, train_ids, labels, kinds, n_orig, np.unique(names))
    val_rows = _val_copies(out, rng, train_ids[rng.choice(n_orig, size=spec.val,
                                                          replace=False)], val_ids, labels)
    leak_src = train_ids[rng.choice(n_orig, size=n_leak, replace=False)]
    test_rows = [{"id": i, "label": names[n_orig + k], "train_id": ""}
                 for k, i in enumerate(test_ids[:n_test_orig])]
    for tid, src in zip(test_ids[n_test_orig:], leak_src, strict=True):
        save("phase2/test", tid, perturb(load(src), rng))
        test_rows.append({"id": tid, "label": labels[src], "train_id": src})
    # 3. label files, sample submissions and answers
    train_frame = pd.DataFrame({"id": train_ids, "label": [labels[i] for i in train_ids]})
    write_csv(out / "train.csv", train_frame.sample(frac=1.0, random_state=spec.seed))
    zero = CLASS_NAMES_4[0] if spec.classes == 4 else "0"
    write_csv(out / "sample_submission_val.csv", pd.DataFrame({"id": sorted(val_ids),
                                                               "label": zero}))
    write_csv(out / "phase2/sample_submission.csv",
              pd.DataFrame({"id": sorted(test_ids), "label": zero}))
    truth_names = _label_names(glasses, smile, spec.classes)
    _write_answers(out, train_ids, labels, plants, dict(zip(
        train_ids[:n_orig], truth_names[:n_orig], strict=True)), val_rows, test_rows)
    answers = {"spec": asdict(spec), "exact_duplicates": n_exact, "near_duplicates": n_near,
               "conflicts": n_conflict, "val_copies": spec.val, "test_leaks": n_leak,
               "classes": sorted(np.unique(names).tolist())}
    write_json(out / "answers.json", answers)
    return answers
