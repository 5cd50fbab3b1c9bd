"""A corpus of hostile inputs, each with its exact outcome.

Every case runs one command against a copy of a good challenge, workspace, run and submission.
A refused input must give exit code 1 (2 for a usage error), one line naming the file, row or
option with the fix, no traceback, and leave every workspace, run and submission byte for byte
as it was. A legitimate oddity must give the right result instead.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from comp.cli import app
from comp.runs import RunDir
from comp.workspace import Workspace

runner = CliRunner()
SIZE = 24


# -- the good world every case starts from ---------------------------------------------------------

def _image(path: Path, k: int, size: int = SIZE) -> None:
    rng = np.random.default_rng(k)
    Image.fromarray(rng.integers(0, 256, (size, size, 3), np.uint8)).save(path)


def make_challenge(root: Path, n: int = 24) -> Path:
    """n labelled 24x24 images (two classes), 6 val images, 6 phase-2 test images."""
    for sub in ("train", "val", "phase2/test"):
        (root / sub).mkdir(parents=True)
    rows = []
    for k in range(n):
        _image(root / "train" / f"{k:03d}.png", k)
        rows.append(f"{k:03d},{k % 2}")
    (root / "train.csv").write_text("id,label\n" + "\n".join(rows) + "\n")
    for k in range(6):
        _image(root / "val" / f"v{k}.png", 1000 + k)
        _image(root / "phase2/test" / f"t{k}.png", 2000 + k)
    pd.DataFrame({"id": [f"v{k}" for k in range(6)], "label": "0"}).to_csv(
        root / "sample_submission_val.csv", index=False)
    return root


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A challenge, its prepared workspace, a 1-epoch run and one submission."""
    base = tmp_path_factory.mktemp("world")
    make_challenge(base / "c")
    ok = run(base, "prepare", "{c}", "-w", "{ws}", "--split", "0.5,0.25,0.25", "--workers", "1")
    assert ok.code == 0, ok.output
    ok = run(base, "train", "-w", "{ws}", "--checkpoints", "{ck}", "--model", "b1", "--epochs",
             "1", "--batch-size", "8", "--name", "r1", "--folds", "1")
    assert ok.code == 0, ok.output
    ok = run(base, "submit", "-w", "{ws}", "--checkpoints", "{ck}", "--submissions", "{subs}",
             "--folds", "2", "--run", "r1")
    assert ok.code == 0, ok.output
    return base


@dataclass
class Result:
    code: int
    output: str


def expand(base: Path, args: tuple[str, ...] | list[str]) -> list[str]:
    """A command line with {c}, {ws}, {ck}, {subs} and {base} filled in for `base`."""
    names = {"c": base / "c", "ws": base / "ws", "ck": base / "ck", "subs": base / "subs",
             "base": base}
    return [a.format(**names) for a in args]


def run(base: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    result = runner.invoke(app, expand(base, args), env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # a traceback is a defect: show it
    return Result(result.exit_code, result.output)


def snapshot(base: Path) -> dict[str, str]:
    """Every file (content hash) and link (target) of the workspace, runs and submissions."""
    out = {}
    for top in ("ws", "ck", "subs"):
        root = base / top
        if not root.exists():
            continue
        for path in sorted(root.rglob("*")):
            rel = str(path.relative_to(base))
            if path.name == ".lock" or path.name.startswith(".read-"):
                continue  # locks, not content
            if path.is_symlink():
                out[rel] = "-> " + os.readlink(path)
            elif path.is_file():
                out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@pytest.fixture
def scene(world: Path, tmp_path: Path) -> Path:
    """A private copy of the good world (links kept as links)."""
    base = tmp_path / "w"
    shutil.copytree(world, base, symlinks=True)
    return base


# -- the corpus ------------------------------------------------------------------------------------

def _png_header(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data +
                struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0,
                                                             0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def _write(path: Path, text: str) -> None:
    path.write_text(text)


def _labels(base: Path, text: str) -> None:
    (base / "c" / "train.csv").write_text(text)


def _relabel(base: Path, old: str, new: str) -> None:
    path = base / "c" / "train.csv"
    path.write_text(path.read_text().replace(old, new, 1))


def _link_loop(base: Path) -> None:
    folder = base / "c" / "train"
    (folder / "003.png").unlink()
    os.symlink("loop-b.png", folder / "003.png")
    os.symlink("003.png", folder / "loop-b.png")


def _bad_name(base: Path) -> None:
    folder = os.fsencode(base / "c" / "train")
    shutil.copy(base / "c" / "train" / "000.png", folder + b"/\xff\xfe.png")


def _float_tiff(base: Path) -> None:
    (base / "c" / "train" / "004.png").unlink()
    Image.fromarray(np.ones((SIZE, SIZE), np.float32)).save(base / "c" / "train" / "004.tif")


def _spoil_ws(name: str, how: Callable[[Path], None]) -> Callable[[Path], None]:
    return lambda base: how(Workspace(base / "ws").dir / name)


def _spoil_run(attr: str, how: Callable[[Path], None]) -> Callable[[Path], None]:
    return lambda base: how(getattr(RunDir(base / "ck" / "r1"), attr))


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.unlink()  # a new file: the committed copies elsewhere stay whole
    path.write_bytes(data[: len(data) // 3])


def _garbage(path: Path) -> None:
    path.unlink()
    path.write_bytes(b"\x00\xff garbage \xfe\n" * 3)


def _fewer_rows(path: Path) -> None:
    store = np.load(path)
    path.unlink()
    np.save(path, store[:-1])


def _flip_a_label(path: Path) -> None:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    path.unlink()
    frame.loc[0, "label"] = "1" if frame.loc[0, "label"] == "0" else "0"
    frame.to_csv(path, index=False)


def _cut_row(path: Path) -> None:
    """The file cut in its fourth line, after three fields (a write that stopped there)."""
    lines = path.read_text().splitlines()
    path.unlink()
    path.write_text("\n".join([*lines[:3], ",".join(lines[3].split(",")[:3])]))


def _dangling(base: Path) -> None:
    link = base / "ws" / "current"
    link.unlink()
    os.symlink("versions/nowhere", link)


def _test_dir(base: Path, make: Callable[[Path], None]) -> None:
    folder = base / "t2"
    folder.mkdir()
    make(folder)


def _reprepare(*options: str) -> Callable[[Path], None]:
    """The workspace prepared again from the same files with other pixel options."""
    def spoil(base: Path) -> None:
        assert run(base, *PREPARE, *options).code == 0

    return spoil


def _params(text: str) -> Callable[[Path], None]:
    return lambda base: _write(base / "p.json", text)


def _tiny_image(path: Path) -> None:
    path.unlink(missing_ok=True)
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(path.with_suffix(".png"))


def _class_folders(base: Path, *names: bytes) -> None:
    """A challenge labelled by class folders (train/<class>/<image>), folder names as bytes."""
    for n, name in enumerate(names):
        folder = os.fsencode(base / "cf" / "train") + b"/" + name
        os.makedirs(folder)
        for k in range(6):
            shutil.copy(base / "c" / "train" / f"{n * 6 + k:03d}.png",
                        folder + f"/{k}.png".encode())


def _history(edit: Callable[[pd.DataFrame], pd.DataFrame | str]) -> Callable[[Path], None]:
    def spoil(base: Path) -> None:
        path = RunDir(base / "ck" / "r1").history
        new = edit(pd.read_csv(path))
        path.unlink()  # a new file: the committed copies elsewhere stay whole
        if isinstance(new, str):
            path.write_text(new)
        else:
            new.to_csv(path, index=False)

    return spoil


def _run_dangling(base: Path) -> None:
    link = base / "ck" / "r1" / "current"
    link.unlink()
    os.symlink("versions/nowhere", link)


def _study(base: Path) -> None:
    (base / "ws" / "tune").mkdir()
    (base / "ws" / "tune" / "b1.db").write_bytes(b"SQLite format 3\x00" + b"\xff" * 200)


def _other_workspace(base: Path) -> None:
    assert run(base, *PREPARE[:3], "{base}/ws22", *PREPARE[4:], "--size", "22x22").code == 0


def _truncated_test_image(folder: Path) -> None:
    _image(folder / "a.png", 1)
    _image(folder / "b.png", 2)
    _truncate(folder / "b.png")


def _mixed_test_folder(folder: Path) -> None:
    _image(folder / "a.png", 1)
    _image(folder / "b.png", 2, 30)


def _semicolons(base: Path) -> None:
    path = base / "c" / "train.csv"
    path.write_text(path.read_text().replace(",", ";"))


def _old_engine_failures(base: Path) -> None:
    """Every cached graph of the run replaced by a failure marker of other library versions
    (an engine that failed before an upgrade)."""
    engine = base / "ck" / "r1" / "engine"
    for graph in engine.glob("*.onnx"):
        graph.unlink()
        (engine / f"{graph.stem}.failed").write_text("conversion failed\nkeras=0.1\n")


def _garbage_engine(base: Path) -> None:
    for graph in (base / "ck" / "r1" / "engine").glob("*.onnx"):
        _garbage(graph)


def _check_engine_whole(base: Path) -> None:
    graphs = list((base / "ck" / "r1" / "engine").glob("*.onnx"))
    assert graphs and all(g.stat().st_size > 1000 for g in graphs)


def _check_second_submission(base: Path) -> None:
    made = sorted((base / "subs").glob("*.csv"))
    assert len(made) == 2
    assert len(pd.read_csv(made[-1])) == 6  # every val image labelled


def _check_one_test_label(base: Path) -> None:
    made = sorted((base / "subs").glob("*.csv"))
    assert len(made) == 2 and pd.read_csv(made[-1], dtype=str)["id"].tolist() == ["a"]


def _check_engine_retried(base: Path) -> None:
    engine = base / "ck" / "r1" / "engine"
    assert not list(engine.glob("*.failed")) and list(engine.glob("*.onnx"))


def _no_holdout_run(base: Path) -> None:
    """The workspace prepared again without a holdout split, and a one-model run on it."""
    assert run(base, *PREPARE[:4], "--split", "0.8,0.2,0", *PREPARE[6:]).code == 0
    assert run(base, *TRAIN, "--name", "r9").code == 0


def _cross_fitted_run(base: Path) -> None:
    assert run(base, *TRAIN[:-2], "--name", "cf").code == 0


def _scores_file(text: str) -> Callable[[Path], None]:
    return lambda base: _write(base / "subs" / "leaderboard.json", text)


def _file_in_the_way(base: Path) -> None:
    """Where the run keeps its submissions, a file: the run folder cannot record one."""
    made = RunDir(base / "ck" / "r1").made
    shutil.rmtree(made)
    made.write_text("in the way")


def _check_submitted_without_record(base: Path) -> None:
    assert len(list((base / "subs").glob("*.csv"))) == 2  # the world's and this one
    assert (RunDir(base / "ck" / "r1").made).is_file()  # left as it was


PREPARE = ("prepare", "{c}", "-w", "{ws}", "--split", "0.5,0.25,0.25", "--workers", "1")
TRAIN = ("train", "-w", "{ws}", "--checkpoints", "{ck}", "--model", "b1", "--epochs", "1",
         "--batch-size", "8", "--folds", "1")
SUBMIT = ("submit", "-w", "{ws}", "--checkpoints", "{ck}", "--submissions", "{subs}",
          "--folds", "2", "--run", "r1")
PHASE2 = (*SUBMIT, "--test", "{base}/t2")
EVALUATE = ("evaluate", "r1", "-w", "{ws}", "--checkpoints", "{ck}", "--folds", "2")
PREDICT = ("predict", "r1", "{c}/val", "-w", "{ws}", "--checkpoints", "{ck}")
INSPECT = ("inspect", "r1", "-w", "{ws}", "--checkpoints", "{ck}", "--folds", "2")
RESUME = ("train", "-w", "{ws}", "--checkpoints", "{ck}", "--resume", "r1", "--epochs", "2")
TUNE = ("tune", "-w", "{ws}", "--model", "b1", "--trials", "1", "--epochs", "1")
OTHER_DATA = "run 'r1' was trained on other data (fingerprint "

# name: (how to spoil the good world, the command, the line it must print)
CASES: dict[str, tuple[Callable[[Path], None] | None, tuple[str, ...], str]] = {
    # image files
    "corrupt png": (lambda b: (b / "c/train/003.png").write_bytes(b"\x89PNG\r\n\x1a\n junk"),
                    PREPARE, "003.png: cannot decode the image"),
    "truncated png": (lambda b: _truncate(b / "c/train/004.png"), PREPARE,
                      "004.png: cannot decode the image"),
    "text as png": (lambda b: _write(b / "c/train/005.png", "hello"), PREPARE,
                    "005.png: cannot decode the image"),
    "empty file": (lambda b: _write(b / "c/train/006.png", ""), PREPARE,
                   "006.png: cannot decode the image"),
    "mixed sizes": (lambda b: _image(b / "c/train/007.png", 7, 20), PREPARE,
                    "007.png: image is 20x20 but the store is 24x24; pass --size HxW"),
    "decompression bomb first": (lambda b: (b / "c/train/000.png").write_bytes(
        _png_header(30000, 30000)), PREPARE, "000.png: cannot decode the image"),
    "decompression bomb later": (lambda b: (b / "c/train/009.png").write_bytes(
        _png_header(30000, 30000)), PREPARE, "009.png: cannot decode the image"),
    "floating-point image": (_float_tiff, PREPARE, "004.tif: cannot decode the image "
                             "(floating-point pixels; save the image with 8 or 16 bits)"),
    "symlink loop": (_link_loop, PREPARE, ": cannot read it (Too many levels of symbolic "
                     "links); replace or remove it"),
    "non-UTF-8 file name": (_bad_name, PREPARE, "is not valid UTF-8; rename the file"),
    "a folder named like an image": (lambda b: (os.remove(b / "c/train/008.png"),
                                                (b / "c/train/008.png").mkdir()), PREPARE,
                                     "id '008' (row 10) has no image"),
    "no images at all": (lambda b: [p.unlink() for p in (b / "c/train").iterdir()], PREPARE,
                         "no image files"),
    "train folder missing": (lambda b: shutil.rmtree(b / "c/train"), PREPARE,
                             "no training folder (train or images); pass --train FOLDER"),
    "val of another size": (lambda b: _image(b / "c/val/v0.png", 5, 20), PREPARE,
                            "v0.png: image is 20x20 but the training images were 24x24; pass "
                            "--on-size-mismatch resize"),
    "val with a corrupt image": (lambda b: _write(b / "c/val/v1.png", "x"), PREPARE,
                                 "v1.png: cannot decode the image"),
    "val with two files of one id": (lambda b: shutil.copy(b / "c/val/v0.png",
                                                           b / "c/val/v0.jpg"), PREPARE,
                                     "two files share the id 'v0'"),
    # label files
    "labels file missing": (lambda b: (b / "c/train.csv").unlink(), PREPARE,
                            "no labels file and no class sub-folders; pass --labels FILE"),
    "labels empty": (lambda b: _labels(b, ""), PREPARE, "cannot read as CSV"),
    "labels header only": (lambda b: _labels(b, "id,label\n"), PREPARE,
                           "image has no label"),
    "labels not UTF-8": (lambda b: (b / "c/train.csv").write_bytes(b"id,label\n\xff\xfe,1\n"),
                         PREPARE, "cannot read as CSV"),
    "duplicate id": (lambda b: _labels(b, (b / "c/train.csv").read_text() + "001,1\n"),
                     PREPARE, "id '001' appears more than once (rows 3, 26)"),
    "empty id": (lambda b: _labels(b, (b / "c/train.csv").read_text() + ",1\n"), PREPARE,
                 "row 26 has an empty id"),
    "no column names the images": (
        lambda b: _write(b / "c" / "train.csv", "name,label\nnobody,0\nsomebody,1\n"),
        PREPARE, "no column 'id' (columns: name, label); pass --id-column"),
    "no label column, two candidates": (
        lambda b: _relabel(b, "id,label", "id,target,extra"), PREPARE,
        "no column 'label' (columns: id, target, extra)"),
    "NaN label": (lambda b: _relabel(b, "002,0", "002,NaN"), PREPARE,
                  "row 4 (id '002') has no label ('NaN'); fill it in or remove the row"),
    "empty label": (lambda b: _relabel(b, "002,0", "002,"), PREPARE,
                    "row 4 (id '002') has no label"),
    "unknown label": (lambda b: _relabel(b, "002,0", "002,7"), PREPARE,
                      "row 4 (id '002') has label '7', which is not one of 0, 1"),
    "fractional label": (lambda b: _relabel(b, "002,0", "002,0.5"), PREPARE,
                         "has label '0.5', which is not one of 0, 1"),
    "one class only": (lambda b: _labels(b, "id,label\n" + "".join(
        f"{k:03d},1\n" for k in range(24))), PREPARE, "every label is '1': a classifier needs "
                       "at least two classes"),
    "class too small for the splits": (lambda b: _labels(b, "id,label\n" + "".join(
        f"{k:03d},{int(k == 0)}\n" for k in range(24))), PREPARE,
        "class '1' has no image in the train split (it has 1 kept images in all)"),
    "labelled id without image": (lambda b: (b / "c/train/010.png").unlink(), PREPARE,
                                  "id '010' (row 12) has no image"),
    "image without label": (lambda b: _image(b / "c/train/999.png", 9), PREPARE,
                            "999.png: image has no label"),
    "groups file missing": (None, (*PREPARE, "--groups", "{base}/nope.csv:person"),
                            "nope.csv: groups file not found; pass --groups FILE:COLUMN"),
    "groups spec without column": (None, (*PREPARE, "--groups", "meta.csv"),
                                   "--groups must be FILE:COLUMN"),
    "groups column missing": (lambda b: _write(b / "m.csv", "id,x\n001,a\n"),
                              (*PREPARE, "--groups", "{base}/m.csv:person"),
                              "no column 'person'"),
    # options
    "split over one": (None, (*PREPARE[:4], "--split", "0.9,0.2,0.1"),
                       "--split must be three fractions >= 0 that add up to 1"),
    "split not numbers": (None, (*PREPARE[:4], "--split", "a,b,c"),
                          "--split must be three fractions like 0.595,0.105,0.3"),
    "split without train": (None, (*PREPARE[:4], "--split", "0,0.5,0.5"),
                            "with a training share above 0"),
    "size zero": (None, (*PREPARE, "--size", "0x0"), "--size must look like 56x56"),
    "size words": (None, (*PREPARE, "--size", "big"), "--size must look like 56x56"),
    "classes that miss a label": (None, (*PREPARE, "--classes", "0,2"),
                                  "has label '1', which is not one of 0, 2"),
    "nothing to prepare": (None, ("prepare", "-w", "{ws}"), "nothing to prepare"),
    "challenge folder missing": (None, ("prepare", "{base}/nowhere", "-w", "{ws}"),
                                 "no training folder"),
    "lr not a number": (None, (*TRAIN, "--lr", "nan"), "--lr must be a positive number"),
    "lr negative": (None, (*TRAIN, "--lr", "-0.1"), "--lr must be a positive number"),
    "plateau factor above one": (None, (*TRAIN, "--plateau-factor", "2"),
                                 "--plateau-factor must be between 0 and 1"),
    "run name with a path": (None, (*TRAIN, "--name", "../../x"),
                             "run name '../../x' is not a plain name"),
    "resume a missing run": (None, ("train", "--checkpoints", "{ck}", "--resume", "nope"),
                             "no run to resume"),
    "resume a finished run": (None, ("train", "--checkpoints", "{ck}", "--resume", "r1"),
                              "run r1 already has 1 epochs; pass --epochs N with N > 1"),
    "tpu without a tpu": (None, (*TRAIN, "--tpu"), "--tpu: no TPU found"),
    "exclude file missing": (None, (*PREPARE, "--exclude", "{base}/nope.csv"),
                             "nope.csv: file not found; pass a CSV with an id column"),
    "relabel file without a label column": (
        lambda b: _write(b / "fix.csv", "id\n001\n"), (*PREPARE, "--relabel", "{base}/fix.csv"),
        "no column 'label' (columns: id); the file needs id and label"),
    "exclude an unknown id": (lambda b: _write(b / "drop.csv", "id\nzzz\n"),
                              (*PREPARE, "--exclude", "{base}/drop.csv"),
                              "1 id(s) of --exclude are not training images ('zzz')"),
    "audit without runs": (None, ("audit", "-w", "{ws}", "--checkpoints", "{base}/none"),
                           "no cross-fitted run (comp train, the default) trained on this"),
    "inspect an unknown run": (None, ("inspect", "nope", "-w", "{ws}", "--checkpoints", "{ck}"),
                               "run 'nope' not found"),
    "params best before any search": (None, (*TRAIN, "--params", "best"),
                                      "no tuned parameters; run `comp tune --model b1` first"),
    "a named tpu that is not there": (None, (*TRAIN, "--tpu-name", "nowhere-tpu"),
                                      "--tpu: no TPU found (nowhere-tpu: "),
    "transfer model on small images": (None, (*TRAIN[:6], "tl1", "--weights", "none"),
                                       "tl1 needs images of at least 32x32 (ResNet50 halves "
                                       "the resolution five times). Received: 24x24"),
    "unknown run": (None, (*SUBMIT[:-1], "nope"), "run 'nope' not found"),
    "evaluate unknown run": (None, ("evaluate", "nope", "-w", "{ws}", "--checkpoints", "{ck}",
                                    "--folds", "2"), "run 'nope' not found"),
    "no workspace": (None, ("submit", "-w", "{base}/empty", "--checkpoints", "{ck}"),
                     "no prepared workspace here; run `comp prepare CHALLENGE_DIR` first"),
    "demo classes three": (None, ("demo-data", "{base}/d", "--classes", "3"),
                           "--classes must be 2 (glasses) or 4 (glasses x smile)"),
    "demo size zero": (None, ("demo-data", "{base}/d", "--size", "0"),
                       "--size must be at least 16 pixels"),
    "demo into a file": (lambda b: _write(b / "f.txt", "mine"), ("demo-data", "{base}/f.txt",
                                                                 "--train", "40", "--val",
                                                                 "4", "--test", "4"),
                         "f.txt: is a file; pass a folder"),
    "demo into a user's folder": (lambda b: _write(b / "c" / "notes.txt", "mine"),
                                  ("demo-data", "{c}", "--train", "40", "--val", "4",
                                   "--test", "4"),
                                  "not empty and not a demo challenge (it holds 'notes.txt'"),
    # workspace and run files
    "meta.json truncated": (_spoil_ws("meta.json", _truncate), SUBMIT,
                            "meta.json: damaged"),
    "meta.json garbage": (_spoil_ws("meta.json", _garbage), TRAIN, "meta.json: damaged"),
    "index.csv garbage": (_spoil_ws("index.csv", _garbage), TRAIN, "index.csv: damaged"),
    "index.csv edited": (_spoil_ws("index.csv", _flip_a_label), TRAIN,
                         "index.csv: does not match meta.json"),
    "train store truncated": (_spoil_ws("images-train.npy", _truncate), TRAIN,
                              "images-train.npy: damaged"),
    "val store with a row missing": (_spoil_ws("images-val.npy", _fewer_rows), SUBMIT,
                                     "images-val.npy: holds 5 images but meta.json says 6"),
    "current link dangling": (_dangling, TRAIN, "points to a missing version (versions/nowhere"
                              "); the folder is damaged; run `comp prepare CHALLENGE_DIR -w "),
    "best.keras truncated": (_spoil_run("best", _truncate), SUBMIT, "best.keras: checkpoint "
                             "is damaged"),
    "last.keras truncated": (_spoil_run("last", _truncate),
                             ("train", "--checkpoints", "{ck}", "--resume", "r1", "--epochs",
                              "2"), "last.keras: checkpoint is damaged"),
    "state.json truncated": (_spoil_run("state", _truncate),
                             ("train", "--checkpoints", "{ck}", "--resume", "r1", "--epochs",
                              "2"), "resume state is damaged"),
    "run.json missing": (_spoil_run("record", lambda p: p.unlink()), SUBMIT,
                         "run 'r1' not found"),
    "run.json truncated": (_spoil_run("record", _truncate), EVALUATE,
                           "run.json: run record is damaged"),
    # sample submissions and phase-2 folders
    "empty sample": (lambda b: _write(b / "s.csv", ""), (*SUBMIT, "--sample", "{base}/s.csv"),
                     "s.csv: sample submission is empty"),
    "sample of other ids": (lambda b: _write(b / "s.csv", "id,label\nzz,0\n"),
                            (*SUBMIT, "--sample", "{base}/s.csv"),
                            "sample submission does not match the target images"),
    "sample without the id column": (lambda b: _write(b / "s.csv", "name,label\nv0,0\n"),
                                     (*SUBMIT, "--sample", "{base}/s.csv"),
                                     "no id column 'id' (columns: name, label)"),
    "sample missing": (None, (*SUBMIT, "--sample", "{base}/none.csv"),
                       "none.csv: sample submission not found"),
    "phase-2 folder missing": (None, PHASE2, "t2: folder not found"),
    "phase-2 folder empty": (lambda b: _test_dir(b, lambda f: None), PHASE2, "no image files"),
    "phase-2 duplicate ids": (lambda b: _test_dir(b, lambda f: (
        _image(f / "x.png", 1), _image(f / "x.jpg", 2))), PHASE2,
        "two files share the id 'x'; keep one file per id"),
    "phase-2 corrupt image": (lambda b: _test_dir(b, lambda f: (
        _image(f / "a.png", 1), _write(f / "b.png", "no")), ), PHASE2,
        "b.png: cannot decode the image"),
    "phase-2 other size": (lambda b: _test_dir(b, lambda f: _image(f / "a.png", 1, 30)),
                           PHASE2, "a.png: image is 30x30 but the training images were 24x24"),
    "images too small for the model": (
        lambda b: run(b, *PREPARE[:4], "-w", "{base}/ws16", "--size", "16", "--workers", "1"),
        ("train", "-w", "{base}/ws16", "--checkpoints", "{ck}", "--model", "b1", "--folds", "1"),
        "b1 needs images of at least 22x22"),
    "phase-2 a file, not a folder": (lambda b: _write(b / "t2", "x"), PHASE2,
                                     "t2: not a folder"),
    # the data a run was trained on: the pixels count, not only the files and labels
    "re-prepared at another size, submit": (_reprepare("--size", "22x22"), SUBMIT,
                                            OTHER_DATA),
    "re-prepared at another size, evaluate": (_reprepare("--size", "22x22"), EVALUATE,
                                              OTHER_DATA),
    "re-prepared at another size, predict": (_reprepare("--size", "22x22"), PREDICT,
                                             OTHER_DATA),
    "re-prepared at another size, inspect": (_reprepare("--size", "22x22"), INSPECT,
                                             OTHER_DATA),
    "re-prepared in gray, submit": (_reprepare("--gray"), SUBMIT, "images 24x24 gray crop)"),
    "re-prepared stretched, submit": (_reprepare("--fit", "stretch", "--size", "24x24"),
                                      SUBMIT, "images 24x24 rgb stretch)"),
    "resume against another workspace": (_other_workspace, (*RESUME[:2], "{base}/ws22",
                                                            *RESUME[3:]), OTHER_DATA),
    # damaged workspace files, each read where it is needed
    "index.csv cut within a row": (_spoil_ws("index.csv", _cut_row), TRAIN,
                                   "index.csv: damaged ("),
    "overlap.csv garbage": (_spoil_ws("overlap.csv", _garbage), SUBMIT,
                            "overlap.csv: damaged"),
    "overlap.csv missing": (_spoil_ws("overlap.csv", lambda p: p.unlink()), SUBMIT,
                            "overlap.csv: missing from the workspace; run `comp prepare"),
    "overlap.csv without its columns": (_spoil_ws("overlap.csv", lambda p: (
        p.unlink(), p.write_text("a,b\n1,2\n"))), SUBMIT,
        "overlap.csv: damaged (no column 'source')"),
    "pairs.csv garbage": (_spoil_ws("pairs.csv", _garbage), SUBMIT, "pairs.csv: damaged"),
    "pairs.csv missing": (_spoil_ws("pairs.csv", lambda p: p.unlink()), SUBMIT,
                          "pairs.csv: missing from the workspace"),
    "meta.json of a list": (_spoil_ws("meta.json", lambda p: (p.unlink(), p.write_text("[]"))),
                            SUBMIT, "meta.json: damaged"),
    "train store garbage": (_spoil_ws("images-train.npy", _garbage), TRAIN,
                            "images-train.npy: damaged"),
    "study damaged": (_study, TUNE, "b1.db: the study is damaged ("),
    # damaged run files
    "history.csv garbage": (_history(lambda h: "\x00 garbage\n1,2\nx,y\n"), RESUME,
                            "history.csv: history is damaged"),
    "history.csv without its epoch column": (_history(lambda h: h.drop(columns="epoch")),
                                             RESUME, "history is damaged (no column 'epoch')"),
    "history.csv with an epoch missing": (_history(lambda h: h.iloc[:0]), RESUME,
                                          "it does not hold one row per epoch 1..1"),
    "history.csv with text for numbers": (_history(lambda h: h.assign(loss="high")), RESUME,
                                          "history.csv: history is damaged"),
    "run current link dangling": (_run_dangling, SUBMIT, "the folder is damaged; this run "
                                  "cannot be used; train a new one with `comp train`"),
    # images too small to hash or learn from, on every path
    "a 1x1 training image": (lambda b: _tiny_image(b / "c/train/003.png"), PREPARE,
                             "003.png: image is 1x1, smaller than comp's 16x16 minimum"),
    "a 1x1 training image with --size": (lambda b: _tiny_image(b / "c/train/003.png"),
                                         (*PREPARE, "--size", "32x32"),
                                         "003.png: image is 1x1, smaller than"),
    "a 1x1 val image resized": (lambda b: _tiny_image(b / "c/val/v2.png"),
                                (*PREPARE, "--on-size-mismatch", "resize"),
                                "v2.png: image is 1x1, smaller than"),
    "a 1x1 phase-2 image": (lambda b: _test_dir(b, lambda f: (
        _image(f / "a.png", 1), _tiny_image(f / "b.png"))), (*PHASE2, "--on-size-mismatch",
                                                            "resize"),
        "b.png: image is 1x1, smaller than"),
    "size below the minimum": (None, (*PREPARE, "--size", "12"),
                               "--size must look like 56x56 (height x width, at least 16)"),
    # folds and classes
    "more folds than images": (None, (*PREPARE, "--folds", "500"),
                               "--folds 500: there are only 24 labelled images; pass --folds "
                               "24 or fewer"),
    "a class named twice": (None, (*PREPARE, "--classes", "0,0,1"),
                            "--classes names '0' twice"),
    "a class without images": (None, (*PREPARE, "--classes", "0,1,2"),
                               "--classes lists '2', which no training image has"),
    "train folds other than prepared": (None, (*TRAIN[:-1], "3"),
                                        "--folds 3: the workspace was prepared with 5 folds"),
    "evaluate folds beyond the holdout": (None, (*EVALUATE[:-1], "9"),
                                          "holdout split has 6 images, too few for 9 folds"),
    "class folder not UTF-8": (lambda b: _class_folders(b, b"cat", b"\xff\xfe"),
                               ("prepare", "{base}/cf", "-w", "{ws}", "--workers", "1"),
                               "the class folder name '\\udcff\\udcfe' is not valid UTF-8; "
                               "rename the folder"),
    # --params files: every refusal names the file and the parameter
    "params file with a negative rate": (_params('{"learning_rate": -1}'),
                                         (*TRAIN, "--params", "{base}/p.json"),
                                         "p.json: parameter 'learning_rate' is -1: --lr must "
                                         "be a positive number"),
    "params file with a number for a switch": (_params('{"augment": 3}'),
                                               (*TRAIN, "--params", "{base}/p.json"),
                                               "p.json: parameter 'augment' is 3: expected "
                                               "true or false"),
    "params file with text for a number": (_params('{"mixup": "x"}'),
                                           (*TRAIN, "--params", "{base}/p.json"),
                                           "parameter 'mixup' is 'x': expected a number"),
    "params file and a typed option setting one thing": (
        _params('{"batch_size": 16}'), (*TRAIN, "--params", "{base}/p.json"),
        "p.json sets batch_size, and --batch-size on the command line sets it too"),
    "params file with an unknown schedule": (_params('{"schedule": "weird"}'),
                                             (*TRAIN, "--params", "{base}/p.json"),
                                             "p.json: parameter 'schedule' is 'weird': "
                                             "--schedule must be one of plateau, cosine"),
    "params file with dropout above one": (_params('{"dropout": 5}'),
                                           (*TRAIN, "--params", "{base}/p.json"),
                                           "p.json: parameter 'dropout' is 5"),
    "params file with an unknown parameter": (_params('{"speed": 1}'),
                                              (*TRAIN, "--params", "{base}/p.json"),
                                              "p.json: unknown parameter 'speed'"),
    "params file not JSON": (_params("{nope"), (*TRAIN, "--params", "{base}/p.json"),
                             "p.json: not a parameters file"),
    "params file a list": (_params("[1, 2]"), (*TRAIN, "--params", "{base}/p.json"),
                           "p.json: expected a JSON object of parameters"),
    "params file missing": (None, (*TRAIN, "--params", "{base}/none.json"),
                            "none.json: no tuned parameters; pass a JSON file"),
    # options out of range, checked before any work
    "top too large": (None, (*INSPECT, "--top", "1000"), "--top must be at most 50"),
    "tune timeout negative": (None, (*TUNE, "--timeout", "-1"),
                              "--timeout must be a positive number"),
    "demo val above train": (None, ("demo-data", "{base}/d", "--train", "20", "--val", "30"),
                             "need --train >= 20 and 0 <= --val <= --train"),
    "demo test negative": (None, ("demo-data", "{base}/d", "--train", "20", "--test", "-1"),
                           "--test >= 0"),
    "submissions a file": (lambda b: _write(b / "f.txt", "mine"),
                           (*SUBMIT, "--submissions", "{base}/f.txt"),
                           "f.txt: is a file; pass a folder as --submissions"),
    "workspace a file": (lambda b: _write(b / "f.txt", "mine"), (*TRAIN[:2], "{base}/f.txt",
                                                                 *TRAIN[3:]),
                         "no prepared workspace here"),
    "phase-2 target never ingested": (None, (*SUBMIT, "--target", "test"),
                                      "no test images prepared; pass --test NEW_DIR"),
    "prepare a missing test folder": (None, ("prepare", "-w", "{ws}", "--test", "{base}/nope"),
                                      "nope: folder not found"),
    "val folder a file": (lambda b: _write(b / "f.txt", "x"), (*PREPARE, "--val", "{base}/f.txt"),
                          "f.txt: not a folder"),
    "exclude every image": (lambda b: _write(b / "all.csv", "id\n" + "".join(
        f"{k:03d}\n" for k in range(24))), (*PREPARE, "--exclude", "{base}/all.csv"),
        "excludes every training image"),
    "relabel to an unknown class": (lambda b: _write(b / "rl.csv", "id,label\n001,7\n"),
                                    (*PREPARE, "--relabel", "{base}/rl.csv"),
                                    "label '7' is not one of the classes (0, 1)"),
    # predict
    "predict a missing photo": (None, (*PREDICT[:2], "{base}/nope.png", *PREDICT[3:]),
                                "nope.png: not found"),
    "predict a corrupt photo": (lambda b: _write(b / "bad.png", "x"),
                                (*PREDICT[:2], "{base}/bad.png", *PREDICT[3:]),
                                "bad.png: cannot decode the image"),
    "predict an empty folder": (lambda b: (b / "empty").mkdir(),
                                (*PREDICT[:2], "{base}/empty", *PREDICT[3:]),
                                "empty: no image files"),
    "predict an unknown run": (None, ("predict", "nope", *PREDICT[2:]), "run 'nope' not found"),
    "predict into a non-CSV": (None, (*PREDICT, "--out", "{base}/p.txt"),
                               "--out must name a .csv file"),
    # labels, corrections, sizes and samples: the file at fault named
    "relabel leaving one class": (
        lambda b: _write(b / "rl.csv", "id,label\n" + "".join(
            f"{k:03d},0\n" for k in range(1, 24, 2))), (*PREPARE, "--relabel", "{base}/rl.csv"),
        "rl.csv: after them every training label is '0': a classifier needs at least two"),
    "an odd-sized first image": (lambda b: _image(b / "c/train/000.png", 0, 20), PREPARE,
                                 "000.png: image is 20x20 but the store is 24x24"),
    "a labels file without a header": (
        lambda b: _labels(b, "".join(f"{k:03d},{k % 2}\n" for k in range(24))), PREPARE,
        "train.csv: its first line (000, 0) is a row of data, not a header; add a first "
        "line naming the columns (id,label)"),
    "phase-2 truncated image": (lambda b: _test_dir(b, _truncated_test_image), PHASE2,
                                "; replace the file (the submission needs a label for every "
                                "test image)"),
    "phase-2 folder of mixed sizes": (lambda b: _test_dir(b, _mixed_test_folder), PHASE2,
                                      "b.png: image is 30x30 but the training images were"),
    "sample with a repeated id": (
        lambda b: _write(b / "s.csv", "id,label\nv0,0\nv1,0\nv0,0\n"),
        (*SUBMIT, "--sample", "{base}/s.csv"),
        "s.csv: id 'v0' appears more than once in the sample submission (rows 2, 4)"),
    "sample with an empty id": (
        lambda b: _write(b / "s.csv", "id,label\nv0,0\n,0\n"),
        (*SUBMIT, "--sample", "{base}/s.csv"),
        "s.csv: row 3 in the sample submission has an empty id"),
    # runs, scores and weights
    "submit a one-model run without a holdout": (
        _no_holdout_run, (*SUBMIT[:-1], "r9"),
        "run 'r9' has no images to be scored on (one model, and the workspace's holdout "
        "split is empty)"),
    "a misspelled run beside a cross-fitted one": (
        _cross_fitted_run, (*SUBMIT[:-2], "--run", "cf", "--run", "nosuch"),
        "run 'nosuch' not found in"),
    "a leaderboard score that is not a number": (
        _scores_file('{"x": "abc"}'), ("runs", "-w", "{ws}", "--checkpoints", "{ck}",
                                       "--submissions", "{subs}"),
        "leaderboard.json: the score of 'x' is 'abc', not a number from 0 to 1"),
    "a leaderboard score out of range": (
        _scores_file('{"x": 7}'), ("runs", "-w", "{ws}", "--checkpoints", "{ck}",
                                   "--submissions", "{subs}"),
        "leaderboard.json: the score of 'x' is 7, not a number from 0 to 1"),
    "a leaderboard score for the scores file itself": (
        _scores_file("{}"), ("runs", "-w", "{ws}", "--checkpoints", "{ck}", "--submissions",
                             "{subs}", "--lb", "leaderboard", "0.5"),
        "--lb: no submission 'leaderboard' in"),
    "params enlarging a pixel model's input": (
        _params('{"input_scale": 2}'), (*TRAIN, "--params", "{base}/p.json"),
        "p.json: --input-scale above 1 enlarges the image for a pretrained base"),
    "params with dropout for logreg": (
        _params('{"dropout": 0.2}'), (*TRAIN[:6], "logreg", *TRAIN[7:], "--params",
                                      "{base}/p.json"),
        "p.json: --dropout does not apply to logreg"),
    "weights of a kind no backbone reads": (
        None, (*TRAIN[:6], "tl1", *TRAIN[7:], "--weights", "{base}/w.npz"),
        "w.npz: tl1 reads a weights file ending in .h5, .keras (ResNet50 (ImageNet)), not .npz"),
    "weights a folder": (None, (*TRAIN[:6], "tl1", *TRAIN[7:], "--weights", "{base}"),
                         "tl1 reads a weights file ending in .h5, .keras"),
    "torchvision weights for a ResNet": (
        None, (*TRAIN[:6], "tl2", *TRAIN[7:], "--weights", "{base}/w.whl"),
        "w.whl: tl2 reads a weights file ending in .h5, .keras (ResNet50 (ImageNet)), not .whl"),
    "torchvision's download named for a ResNet": (
        None, (*TRAIN[:6], "tl2", *TRAIN[7:], "--weights", "torchvision"),
        "--weights torchvision (torchvision's ImageNet MobileNetV2) applies to mobilenetv2 "
        "only; for tl2 pass --weights imagenet, a weights file or none"),
    # presets
    "an unknown preset": (None, (*TRAIN[:5], "--preset", "fastest"),
                          "--preset must be one of best. Received: 'fastest'"),
    "a preset beside a model": (None, (*TRAIN[:5], "--preset", "best", "--model", "b1"),
                                "--model does not apply with --preset best"),
    "a preset with weights its MobileNetV2 cannot read": (
        None, (*TRAIN[:5], "--preset", "best", "--weights", "{base}/w.npz"),
        "w.npz: mobilenetv2 reads a weights file ending in .h5, .keras, .pth, .whl"),
    "a preset on images too small for its MobileNetV2": (
        None, (*TRAIN[:5], "--preset", "best"), "--preset best trains mobilenetv2: mobilenetv2 "
        "needs images of at least 32x32 (MobileNetV2 halves the resolution five times). "
        "Received: 24x24; prepare with --size 32x32 or larger"),
    "a preset beside params": (_params('{"l2": 0.001}'),
                               (*TRAIN[:5], "--preset", "best", "--params", "{base}/p.json"),
                               "--params does not apply with --preset best"),
    "submit a preset none of whose runs finished": (
        None, (*SUBMIT[:-2], "--preset", "best"),
        "no finished run of --preset best in"),
    "submit a preset beside --run": (None, (*SUBMIT, "--preset", "best"),
                                     "--preset best names its runs itself; drop --run"),
    "submit an unknown preset": (None, (*SUBMIT[:-2], "--preset", "fastest"),
                                 "--preset must be one of best"),
    # --run names
    "a run named by a path": (None, (*SUBMIT[:-1], "../r1"), "run name '../r1' is not a "
                              "plain name"),
    "a run with a hidden name": (None, (*SUBMIT[:-1], ".r1"), "run name '.r1' is not a plain "
                                 "name"),
    "a preset run folder without a record": (
        lambda b: (b / "ck" / "best-res").mkdir(), (*TRAIN[:5], "--preset", "best"),
        "best-res exists but holds no run record"),
    "a time limit that is no duration": (None, (*TRAIN, "--time-limit", "soon"),
                                         "--time-limit must be a positive duration"),
    "a time limit of zero": (None, (*TRAIN, "--time-limit", "0m"),
                             "--time-limit must be a positive duration"),
    "a preset with a time limit that is no duration": (
        None, (*TRAIN[:5], "--preset", "best", "--time-limit", "tomorrow"),
        "--time-limit must be a positive duration"),
    "a run named with a trailing slash": (None, (*SUBMIT[:-1], "r1/"),
                                          "run name 'r1/' is not a plain name"),
    "a leaderboard score that is a boolean": (
        _scores_file('{"x": true}'), ("runs", "-w", "{ws}", "--checkpoints", "{ck}",
                                      "--submissions", "{subs}"),
        "leaderboard.json: the score of 'x' is True, not a number from 0 to 1"),
    "a leaderboard score above one given": (
        None, ("runs", "-w", "{ws}", "--checkpoints", "{ck}", "--submissions", "{subs}",
               "--lb", "x", "1.5"),
        "--lb: the score must be a number from 0 to 1. Received: 1.5"),
    "submit a run whose best checkpoint is gone": (
        _spoil_run("best", lambda p: p.unlink()), SUBMIT,
        "run 'r1' has no best checkpoint yet"),
    # comp runs
    "runs sorted by an unknown column": (
        None, ("runs", "-w", "{ws}", "--checkpoints", "{ck}", "--submissions", "{subs}",
               "--sort", "luck"), "--sort must be one of created, name, oof, lb, time"),
    "a leaderboard file that is not a table": (
        _scores_file('["x", 0.5]'), ("runs", "-w", "{ws}", "--checkpoints", "{ck}",
                                     "--submissions", "{subs}"),
        "leaderboard.json: not a table of submission scores"),
    "a damaged leaderboard file": (
        _scores_file('{"x": 0.5'), ("runs", "-w", "{ws}", "--checkpoints", "{ck}",
                                    "--submissions", "{subs}"),
        "leaderboard.json: leaderboard scores is damaged"),
    "a leaderboard score that is not a number given": (
        None, ("runs", "-w", "{ws}", "--checkpoints", "{ck}", "--submissions", "{subs}",
               "--lb", "x", "nan"),
        "--lb: the score must be a number from 0 to 1. Received: nan"),
    "weights file not found": (
        None, (*TRAIN[:6], "mobilenetv2", *TRAIN[7:], "--weights", "{base}/gone.whl"),
        "gone.whl: file not found; pass the path of a MobileNetV2 (ImageNet) weights file"),
}

USAGE = {  # refused by the command line itself (exit code 2) before any work
    "fit choice": ((*PREPARE, "--fit", "foo"), "'foo' is not one of 'crop', 'stretch'"),
    "conflicts choice": ((*PREPARE, "--conflicts", "keep"), "'keep' is not one of"),
    "duplicates choice": ((*PREPARE, "--duplicates", "x"), "'x' is not one of"),
    "negative distance": ((*PREPARE, "--max-distance", "-1"), "--max-distance"),
    "huge distance": ((*PREPARE, "--max-distance", "99"), "--max-distance"),
    "negative pixel threshold": ((*PREPARE, "--pixel-threshold", "-1"), "--pixel-threshold"),
    "negative workers": ((*PREPARE, "--workers", "-1"), "--workers"),
    "zero epochs": ((*TRAIN, "--epochs", "0"), "--epochs"),
    "zero batch": ((*TRAIN, "--batch-size", "0"), "--batch-size"),
    "unknown model": ((*TRAIN, "--model", "b9"), "'b9' is not one of"),
    "one fold": ((*SUBMIT, "--folds", "1"), "--folds"),
    "unknown target": ((*SUBMIT, "--target", "train"), "'train' is not one of 'val', 'test'"),
    "size mismatch choice": ((*PHASE2, "--on-size-mismatch", "pad"), "'pad' is not one of"),
    "unknown balance": ((*TRAIN, "--balance", "equal"), "'equal' is not one of"),
    "zero trials": (("tune", "-w", "{ws}", "--trials", "0"), "--trials"),
    "audit ranking choice": (("audit", "-w", "{ws}", "--rank-by", "luck"), "'luck' is not one of"),
    "tta choice": ((*SUBMIT, "--tta", "maybe"), "'maybe' is not one of 'auto', 'on', 'off'"),
    "leaks choice": ((*SUBMIT, "--leaks", "sometimes"), "'sometimes' is not one of"),
    "no-face choice": ((*PREPARE, "--faces", "--no-face", "x"), "'x' is not one of"),
    "schedule choice": ((*TRAIN, "--schedule", "linear"), "'linear' is not one of"),
    "init choice": ((*TRAIN, "--init", "zeros"), "'zeros' is not one of"),
    "zero plateau patience": ((*TRAIN, "--plateau-patience", "0"), "--plateau-patience"),
    "zero max images": ((*TRAIN, "--max-images", "0"), "--max-images"),
    "negative l2": ((*TRAIN, "--l2", "-1"), "--l2"),
    "negative mixup": ((*TRAIN, "--mixup", "-0.5"), "--mixup"),
    "zero folds to train": ((*TRAIN[:-1], "0"), "--folds"),
    "evaluate one fold": ((*EVALUATE[:-1], "1"), "--folds"),
    "audit has no holdout folds": (("audit", "-w", "{ws}", "--folds", "3"),
                                   "No such option: --folds"),
    "inspect top zero": ((*INSPECT, "--top", "0"), "--top"),
    "tune zero epochs": ((*TUNE[:-1], "0"), "--epochs"),
    "tune negative startup": ((*TUNE, "--startup", "-1"), "--startup"),
    "demo train below twenty": (("demo", "--out", "{base}/d", "--train", "5"), "--train"),
    "predict without images": (("predict", "r1"), "Missing argument"),
    "evaluate without runs": (("evaluate", "-w", "{ws}"), "Missing argument"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_input_is_one_line_and_changes_nothing(scene: Path, case: str) -> None:
    spoil, command, message = CASES[case]
    if spoil is not None:
        spoil(scene)
    before = snapshot(scene)
    result = run(scene, *command)
    assert result.code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert message in lines[0], lines[0]
    assert snapshot(scene) == before


@pytest.mark.parametrize("case", sorted(USAGE))
def test_usage_errors_are_refused_before_any_work(scene: Path, case: str) -> None:
    command, message = USAGE[case]
    before = snapshot(scene)
    result = run(scene, *command)
    assert result.code == 2, result.output
    assert message in " ".join(result.output.replace("│", " ").split())
    assert "Traceback" not in result.output
    assert snapshot(scene) == before


@pytest.mark.parametrize("case", sorted(USAGE))
def test_the_comp_command_words_usage_errors_in_one_line(
        scene: Path, case: str, capsys: pytest.CaptureFixture[str]) -> None:
    """What a user types goes through `comp.cli.main`: the same refusals, one line each."""
    from comp.cli import main

    command, message = USAGE[case]
    with pytest.raises(SystemExit) as stop:
        main(expand(scene, command))
    captured = capsys.readouterr()
    assert stop.value.code == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert message in lines[0]
    assert lines[0].endswith(f"see `comp {command[0]} --help`")


def test_the_corpus_is_large() -> None:
    assert len(CASES) + len(USAGE) + len(LEGITIMATE) >= 150


def _fault_count() -> int:
    """The fault tests' items (a parametrized test counts once per case)."""
    from . import test_faults

    count = 0
    for name in dir(test_faults):
        func = getattr(test_faults, name)
        if name.startswith("test_") and callable(func):
            marks = [m for m in getattr(func, "pytestmark", []) if m.name == "parametrize"]
            count += len(marks[0].args[1]) if marks else 1
    return count


def test_the_readme_counts_come_from_the_suite() -> None:
    """The README's reliability paragraph states this corpus's sizes, not numbers typed once."""
    text = " ".join((Path(__file__).parents[1] / "README.md").read_text().split())
    total = len(CASES) + len(USAGE) + len(LEGITIMATE)
    for words in (f"**{total} kinds of input**", f"**{_fault_count()} faults**",
                  f"{len(CASES)} refused with one line (exit 1)",
                  f"{len(USAGE)} by the command line's own checks (exit 2",
                  f"{len(LEGITIMATE)} legitimate oddities"):
        assert words in text, f"README.md should say {words!r}"


# -- legitimate oddities: the right result -------------------------------------------------------

def _sixteen_bit(base: Path) -> None:
    ramp = np.linspace(0, 65535, SIZE * SIZE).reshape(SIZE, SIZE).astype(np.uint16)
    (base / "c/train/011.png").unlink()
    Image.fromarray(ramp).save(base / "c/train/011.png")


def _check_sixteen_bit(base: Path) -> None:
    ws = Workspace(base / "ws")
    index = ws.load_index()
    row = int(index[(index["source"] == "train") & (index["id"] == "011")]["row"].iloc[0])
    pixels = ws.load_store("train")[row, :, :, 0].astype(int)
    ramp = np.linspace(0, 65535, SIZE * SIZE).reshape(SIZE, SIZE)
    assert np.abs(pixels - np.round(ramp / 257)).max() <= 1  # scaled, not clipped to white


def _numeric_spellings(base: Path) -> None:
    _relabel(base, "001,1", "001,1.0")
    _relabel(base, "002,0", "002,0.0")


def _check_two_classes(base: Path) -> None:
    meta = Workspace(base / "ws").load_meta()
    assert meta.classes == ["0", "1"]


def _user_files_survive(base: Path) -> None:
    assert (base / "c" / "notes.txt").read_text() == "mine"


def _two_test_folders(base: Path) -> None:
    for name, count in (("t2", 6), ("t3", 4)):
        (base / name).mkdir()
        for k in range(count):
            _image(base / name / f"{name}-{k}.png", 3000 + 10 * count + k)


def _check_second_test_folder(base: Path) -> None:
    """After a first phase-2 ingest, a corrected test folder replaces it: 4 test images."""
    result = run(base, *SUBMIT, "--test", "{base}/t3")
    assert result.code == 0, result.output
    ws = Workspace(base / "ws")
    index = ws.load_index()
    assert sorted(index[index["source"] == "test"]["id"]) == [f"t3-{k}" for k in range(4)]
    assert ws.load_store("test").shape[0] == 4
    assert (ws.load_overlap()["source"] != "test").all() or set(
        ws.load_overlap().query("source == 'test'")["id"]) <= {f"t3-{k}" for k in range(4)}
    newest = max((base / "subs").glob("*.csv"), key=lambda p: p.stat().st_mtime_ns)
    assert sorted(pd.read_csv(newest, dtype=str)["id"]) == [f"t3-{k}" for k in range(4)]


def _spoil_run_cache(name: str) -> Callable[[Path], None]:
    return lambda base: _truncate(base / "ck" / "r1" / name)


def _check_cache_rebuilt(name: str) -> Callable[[Path], None]:
    def check(base: Path) -> None:
        with np.load(base / "ck" / "r1" / name) as saved:
            assert saved["prob"].shape == (6, 2)

    return check


def _rule_folder(base: Path) -> Path:
    (folder,) = (base / "ck" / "r1" / "submit").glob("*/decision.json")
    return folder.parent


def _spoil_rule(name: str, how: Callable[[Path], None]) -> Callable[[Path], None]:
    return lambda base: how(_rule_folder(base) / name)


def _threshold(value: float) -> Callable[[Path], None]:
    def edit(path: Path) -> None:
        import json

        data = json.loads(path.read_text())
        data["rule"], data["threshold"] = "threshold", value
        path.unlink()
        path.write_text(json.dumps(data))

    return edit


def _check_rule_refitted(base: Path) -> None:
    from comp.submit.rule import Decision, load_oof

    folder = _rule_folder(base)
    decision = Decision.load(folder, fingerprint=Workspace(base / "ws").load_meta().fingerprint)
    assert decision is not None and decision.valid()
    assert decision.threshold is None or 0.0 <= decision.threshold <= 1.0
    assert load_oof(folder) is not None


def _moved_workspace(base: Path) -> None:
    shutil.copytree(base / "ws", base / "moved", symlinks=True)


def _check_resumed_on_moved(base: Path) -> None:
    from comp.config import TrainConfig
    from comp.train.loop import _resume_config

    again = TrainConfig(workspace=base / "moved", checkpoints=base / "ck", resume="r1",
                        epochs=3)
    assert _resume_config(again)[0].workspace == base / "moved"  # not the one it started on
    record = RunDir(base / "ck" / "r1").load_record()
    assert record.epochs_done == 2
    history = pd.read_csv(RunDir(base / "ck" / "r1").history)
    assert list(history["epoch"]) == [1, 2]


def _check_resumed_history(base: Path) -> None:
    assert RunDir(base / "ck" / "r1").load_record().epochs_done == 2
    assert list(pd.read_csv(RunDir(base / "ck" / "r1").history)["epoch"]) == [2]


def _check_ten_folds(base: Path) -> None:
    folds = Workspace(base / "ws").labelled()["fold"]
    assert sorted(folds.unique()) == list(range(10))


def _check_none_dropped(base: Path) -> None:
    meta = Workspace(base / "ws").load_meta()
    assert meta.summary["kept"] == 24 and meta.summary["dropped_conflicts"] == 0
    assert meta.pixels == "32x32 rgb face margin 0.2"


def _check_second_run(base: Path) -> None:
    assert RunDir(base / "ck" / "r1-2").load_record().run == "r1-2"


LEGITIMATE: dict[str, tuple[Callable[[Path], None], tuple[str, ...],
                            Callable[[Path], None]]] = {
    "16-bit image": (_sixteen_bit, PREPARE, _check_sixteen_bit),
    "1 and 1.0 are one class": (_numeric_spellings, PREPARE, _check_two_classes),
    "ids given as file names": (lambda b: _labels(b, (b / "c/train.csv").read_text().replace(
        "\n0", "\n0").replace(",", ".png,", 24).replace("id.png,", "id,", 1)), PREPARE,
        _check_two_classes),
    "val of another size, resized when asked": (lambda b: _image(b / "c/val/v0.png", 5, 20),
                                                (*PREPARE, "--on-size-mismatch", "resize"),
                                                _check_two_classes),
    "re-prepare over a good workspace": (lambda b: None, PREPARE, _check_two_classes),
    "an id column of another name": (lambda b: _relabel(b, "id,label", "userid,label"),
                                     PREPARE, _check_two_classes),
    "a label column of another name": (lambda b: _relabel(b, "id,label", "id,gender"),
                                       PREPARE, _check_two_classes),
    "phase-2 day played twice": (_two_test_folders, (*SUBMIT, "--test", "{base}/t2"),
                                 _check_second_test_folder),
    "phase-2 ingest by prepare, then by submit": (
        _two_test_folders, ("prepare", "-w", "{ws}", "--test", "{base}/t3"),
        _check_second_test_folder),
    "a cut holdout cache is predicted again": (_spoil_run_cache("holdout.npz"), EVALUATE,
                                               _check_cache_rebuilt("holdout.npz")),
    "a cut rule file is fitted again": (_spoil_rule("oof.npz", _truncate), SUBMIT,
                                        _check_rule_refitted),
    "a rule edited out of range is fitted again": (_spoil_rule("decision.json", _threshold(2.5)),
                                                   SUBMIT, _check_rule_refitted),
    "a garbage rule is fitted again": (_spoil_rule("decision.json", _garbage), SUBMIT,
                                       _check_rule_refitted),
    "re-prepare over a dangling current link": (_dangling, PREPARE, _check_two_classes),
    "resume reads the workspace -w names": (_moved_workspace, (*RESUME[:2], "{base}/moved",
                                                               *RESUME[3:]),
                                            _check_resumed_on_moved),
    "a deleted history resumes without it": (_spoil_run("history", lambda p: p.unlink()),
                                             RESUME, _check_resumed_history),
    "a class with fewer images than folds is a note": (
        lambda b: _labels(b, "id,label\n" + "".join(f"{k:03d},{int(k < 8)}\n"
                                                     for k in range(24))),
        (*PREPARE, "--folds", "10", "--split", "0.34,0.33,0.33"), _check_ten_folds),
    "face crops of distinct images stay distinct": (
        lambda b: None, (*PREPARE, "--faces", "--size", "32x32"), _check_none_dropped),
    "a taken run name gets a suffix": (lambda b: None, (*TRAIN, "--name", "r1"),
                                       _check_second_run),
    "a labels file separated by semicolons": (_semicolons, PREPARE, _check_two_classes),
    "a damaged engine graph is exported again": (_garbage_engine, PREDICT, _check_engine_whole),
    "leaks weighed as evidence": (lambda b: None, (*SUBMIT, "--leaks", "evidence"),
                                  _check_second_submission),
    "leaks always, stackers off": (lambda b: None, (*SUBMIT, "--leaks", "always",
                                                    "--no-ensemble"), _check_second_submission),
    "the same run named twice": (lambda b: None, (*SUBMIT, "--run", "r1"),
                                 _check_second_submission),
    "leaks never": (lambda b: None, (*SUBMIT, "--leaks", "never"), _check_second_submission),
    "runs of a checkpoints folder that is not there": (
        lambda b: None, ("runs", "-w", "{ws}", "--checkpoints", "{base}/nock", "--submissions",
                         "{subs}"), lambda b: None if not (b / "nock").exists() else
        pytest.fail("comp runs made the folder it was asked to read")),
    "phase 2 with leaks weighed as evidence": (
        lambda b: _test_dir(b, lambda f: _image(f / "a.png", 1)),
        (*PHASE2, "--leaks", "evidence"), _check_one_test_label),
    "an engine failure of older libraries is tried again": (
        _old_engine_failures, PREDICT, _check_engine_retried),
    "a run folder that cannot record the submission": (
        _file_in_the_way, SUBMIT, _check_submitted_without_record),
}


def test_a_refused_new_run_leaves_no_folder_and_its_name_free(scene: Path) -> None:
    """Refused after its folder was made (the model cannot take 24x24 images): no folder
    left, so the next train with the same --name gets that name, not "-2"."""
    refused = run(scene, *TRAIN[:6], "mobilenetv2", *TRAIN[7:], "--weights", "none",
                  "--name", "m")
    assert refused.code == 1 and "needs images of at least 32x32" in refused.output
    assert not (scene / "ck" / "m").exists()
    assert run(scene, *TRAIN, "--name", "m").code == 0
    assert RunDir(scene / "ck" / "m").load_record().run == "m"


@pytest.mark.parametrize("case", sorted(LEGITIMATE))
def test_legitimate_oddities_give_the_right_result(scene: Path, case: str) -> None:
    spoil, command, check = LEGITIMATE[case]
    spoil(scene)
    result = run(scene, *command)
    assert result.code == 0, result.output
    check(scene)
