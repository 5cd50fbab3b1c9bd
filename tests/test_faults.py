"""Faults: kill -9 at chosen points, a full disk, two writers at once.

After a kill, the workspace, run or submissions are as they were before the command (or as the
last completed step left them), no decode worker lives on, and rerunning the same command
completes with the same bytes as an uninterrupted run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from comp.commit import FolderLock
from comp.runs import RunDir
from comp.workspace import Workspace

from .test_hostile import SUBMIT, TRAIN, expand, make_challenge, run, snapshot

PREPARE = ("prepare", "{c}", "-w", "{ws}", "--split", "0.5,0.25,0.25", "--workers", "2")


def cli(base: Path, *args: str, fault: str | None = None) -> subprocess.CompletedProcess[str]:
    """The command in a process of its own (so that it can be killed)."""
    env = {k: v for k, v in os.environ.items() if k != "COMP_FAULT"}
    if fault:
        env["COMP_FAULT"] = fault
    return subprocess.run([sys.executable, "-m", "comp.cli", *expand(base, args)],
                          capture_output=True, text=True, timeout=300, env=env)


def workspace_bytes(ws: Path) -> dict[str, str]:
    """The committed workspace's files, except the timing in meta.json."""
    folder = Workspace(ws).dir
    out = {}
    for path in sorted(folder.iterdir()):
        if path.name == "meta.json":
            meta = json.loads(path.read_text())
            meta["summary"].pop("seconds", None)
            meta.pop("config", None)
            out[path.name] = json.dumps(meta, sort_keys=True)
        elif path.suffix in (".npy", ".csv"):
            out[path.name] = path.read_bytes().hex()
    return out


def leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name.startswith(".staging-"))


def live_workers(marker: str) -> list[int]:
    """Processes whose command line holds `marker` (a decode worker is a fork of its parent)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            try:
                if marker in (proc / "cmdline").read_bytes().decode(errors="replace"):
                    pids.append(int(proc.name))
            except OSError:
                continue
    return pids


@pytest.fixture
def base(tmp_path: Path) -> Path:
    make_challenge(tmp_path / "c", n=600)  # enough images for several decode chunks
    return tmp_path


@pytest.mark.parametrize("point", ["prepare:decoded", "prepare:staged", "commit:renamed"])
def test_killed_prepare_leaves_the_old_workspace_and_reruns_to_the_same_bytes(
        base: Path, point: str) -> None:
    first = cli(base, *PREPARE)
    assert first.returncode == 0, first.stderr
    good = workspace_bytes(base / "ws")
    (base / "c" / "train.csv").write_text((base / "c" / "train.csv").read_text()
                                          .replace("001,1", "001,0"))  # another challenge
    killed = cli(base, *PREPARE, fault=point)
    assert killed.returncode == -9
    assert workspace_bytes(base / "ws") == good  # readers still see the old version whole
    time.sleep(0.5)
    assert live_workers(str(base / "ws")) == []  # no decode worker outlived its parent
    again = cli(base, *PREPARE)
    assert again.returncode == 0, again.stderr
    assert leftovers(base / "ws") == []
    uninterrupted = base / "ws-whole"
    assert cli(base, *PREPARE[:3], str(uninterrupted), *PREPARE[4:]).returncode == 0
    assert workspace_bytes(base / "ws") == workspace_bytes(uninterrupted)


def test_kill_during_decoding_leaves_no_worker(base: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "comp.cli", *expand(base, PREPARE)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    marker = str(base / "ws")
    deadline = time.time() + 60
    while len(live_workers(marker)) < 3 and time.time() < deadline:  # parent + 2 workers
        time.sleep(0.01)
    proc.kill()
    proc.wait()
    time.sleep(0.5)
    assert live_workers(marker) == []
    assert not Workspace(base / "ws").is_prepared()
    assert cli(base, *PREPARE).returncode == 0
    assert leftovers(base / "ws") == []


def test_killed_phase2_ingest_leaves_the_old_workspace(base: Path) -> None:
    assert cli(base, *PREPARE).returncode == 0
    good = workspace_bytes(base / "ws")
    test = base / "c" / "phase2" / "test"
    killed = cli(base, "prepare", "-w", "{ws}", "--test", str(test), fault="ingest:staged")
    assert killed.returncode == -9
    assert workspace_bytes(base / "ws") == good
    again = cli(base, "prepare", "-w", "{ws}", "--test", str(test))
    assert again.returncode == 0, again.stderr
    index = Workspace(base / "ws").load_index()
    assert (index["source"] == "test").sum() == 6 and leftovers(base / "ws") == []


def test_two_writers_one_workspace(base: Path) -> None:
    """A second prepare while the first holds the workspace: refused in one line, nothing
    changed; once the first is done, the same command goes through."""
    assert cli(base, *PREPARE).returncode == 0
    before = snapshot(base)
    with FolderLock(base / "ws", busy="held"):
        result = run(base, *PREPARE)
    assert result.code == 1
    assert result.output.strip() == (f"error: {base / 'ws'}: another comp command is writing "
                                     "this workspace right now; wait for it to finish, or pass "
                                     "another --workspace")
    assert snapshot(base) == before
    assert run(base, *PREPARE).code == 0


@pytest.fixture
def trained(tmp_path: Path) -> Path:
    make_challenge(tmp_path / "c")
    assert run(tmp_path, *PREPARE[:-1], "1").code == 0
    return tmp_path


def test_killed_epoch_leaves_the_previous_epoch_whole(trained: Path) -> None:
    """A kill while an epoch is being committed: the run holds epoch 1 entirely (model,
    history, state, record); the resume trains epochs 2-3 as an uninterrupted run does."""
    ok = cli(trained, *TRAIN, "--name", "r", "--epochs", "1")
    assert ok.returncode == 0, ok.stderr
    run_dir = RunDir(trained / "ck" / "r")
    def epoch_files() -> dict[str, bytes]:  # run.json also records the resuming command
        return {p.name: p.read_bytes() for p in run_dir.dir.iterdir() if p.name != "run.json"}

    epoch1 = epoch_files()
    killed = cli(trained, "train", "--checkpoints", "{ck}", "--resume", "r", "--epochs", "3",
                 fault="train:epoch-staged")
    assert killed.returncode == -9
    assert epoch_files() == epoch1
    assert run_dir.load_record().epochs_done == 1
    ok = cli(trained, "train", "--checkpoints", "{ck}", "--resume", "r", "--epochs", "3")
    assert ok.returncode == 0, ok.stderr
    whole = cli(trained, *TRAIN, "--name", "w", "--epochs", "3")
    assert whole.returncode == 0, whole.stderr
    a = pd.read_csv(RunDir(trained / "ck" / "r").history).drop(columns="seconds")
    b = pd.read_csv(RunDir(trained / "ck" / "w").history).drop(columns="seconds")
    assert a["epoch"].tolist() == [1, 2, 3]
    np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), rtol=1e-5, atol=1e-6)
    assert leftovers(trained / "ck" / "r") == []


def test_a_killed_fold_run_resumes_fold_by_fold(trained: Path) -> None:
    """A kill in fold 2's second epoch: fold 1 is finished and left as it is, fold 2 resumes
    from its first epoch, folds 3-5 start; every fold's history then equals an
    uninterrupted run's."""
    assert TRAIN[-2:] == ("--folds", "1")
    folds_train = (*TRAIN[:-2], "--epochs", "2")  # the last --epochs counts
    killed = cli(trained, *folds_train, "--name", "r", fault="train:epoch-staged@4")
    assert killed.returncode == -9
    run_dir = RunDir(trained / "ck" / "r")
    assert run_dir.fold(0).load_record().status == "finished"
    assert run_dir.fold(1).load_record().epochs_done == 1
    assert not run_dir.fold(2).path.exists()
    fold1 = {p.name: p.read_bytes() for p in run_dir.fold(0).dir.iterdir()}
    ok = cli(trained, "train", "--checkpoints", "{ck}", "--resume", "r")
    assert ok.returncode == 0, ok.stderr
    assert "run r fold 1/5" not in ok.stdout and "run r fold 2/5" in ok.stdout
    assert {p.name: p.read_bytes() for p in run_dir.fold(0).dir.iterdir()} == fold1
    assert run_dir.load_record().folds_done == 5
    whole = cli(trained, *folds_train, "--name", "w")
    assert whole.returncode == 0, whole.stderr
    for k in range(5):
        a = pd.read_csv(run_dir.fold(k).history).drop(columns="seconds")
        b = pd.read_csv(RunDir(trained / "ck" / "w").fold(k).history).drop(columns="seconds")
        assert a["epoch"].tolist() == [1, 2]
        np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), rtol=1e-5, atol=1e-6)
    assert leftovers(trained / "ck" / "r") == []


def test_killed_submit_leaves_no_csv(trained: Path) -> None:
    assert cli(trained, *TRAIN, "--name", "r1", "--epochs", "1").returncode == 0
    killed = cli(trained, *SUBMIT, fault="submit:manifest-claimed")
    assert killed.returncode == -9
    assert list((trained / "subs").glob("[!.]*.csv")) == []  # a CSV is complete or absent
    ok = cli(trained, *SUBMIT)
    assert ok.returncode == 0, ok.stderr
    csvs = list((trained / "subs").glob("[!.]*.csv"))
    assert len(csvs) == 1 and csvs[0].with_suffix(".json").exists()
    assert list((trained / "subs").glob(".*")) == []  # the killed writer's temporary is gone


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Path:
    """A 1 MiB file system, where the test can mount one."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tiny file system here ({made.stderr.strip()[:80]}); the "
                    "full-disk test needs root and mount rights")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_is_one_line_and_leaves_the_old_workspace(tiny_disk: Path) -> None:
    small, large = tiny_disk.parent / "small", tiny_disk.parent / "large"
    make_challenge(small, n=12)
    make_challenge(large, n=900)  # a 1.5 MB store: does not fit
    ws = tiny_disk / "ws"
    assert run(tiny_disk.parent, "prepare", str(small), "-w", str(ws), "--split",
               "0.5,0.25,0.25", "--workers", "1").code == 0
    before = workspace_bytes(ws)
    result = run(tiny_disk.parent, "prepare", str(large), "-w", str(ws), "--split",
                 "0.5,0.25,0.25", "--workers", "2")
    assert result.code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "No space left on device: the disk is full" in lines[0]
    assert workspace_bytes(ws) == before
    assert leftovers(ws) == []
    shutil.rmtree(ws)


def test_a_submit_during_a_resume_reads_the_versions_it_started_on(
        trained: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A resume commits epochs while a submit reads the run: the submit predicts with the
    checkpoint its rule was fitted on (the version it first read), which the resume's
    pruning leaves in place until the submit ends."""
    import comp.submit.pipeline as pipeline
    from comp.commit import KEEP

    assert run(trained, *TRAIN, "--name", "r1").code == 0
    run_dir = RunDir(trained / "ck" / "r1")
    started_on = run_dir.dir
    real = pipeline.predict_rule
    seen = []

    def resume_meanwhile(*args: object, **kwargs: object) -> object:
        with run_dir.lock():  # what each epoch of `comp train --resume r1` commits
            for _ in range(KEEP + 1):
                run_dir.save_record(run_dir.load_record())
        seen.append(RunDir(trained / "ck" / "r1").best)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pipeline, "predict_rule", resume_meanwhile)
    result = run(trained, *SUBMIT)
    assert result.code == 0, result.output
    assert seen == [started_on / "best.keras"] and started_on.is_dir()
    assert run_dir.dir != started_on  # the resume's versions are current for later readers
    with run_dir.lock():  # the resume's next epoch, once no reader holds the old version
        run_dir.save_record(run_dir.load_record())
    assert not started_on.exists()
