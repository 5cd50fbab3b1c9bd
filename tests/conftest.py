"""Shared fixtures: a tiny demo challenge and its prepared workspace, made once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_dataset(name: str) -> Path:
    """Path of a shared real dataset, or skip the test with the reason."""
    path = SHARED_DATA / name
    if not (path / "labels.csv").exists():
        pytest.skip(f"shared dataset {name} not found at {path} (tests read ../shared/data)")
    return path


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from comp.demo import DemoSpec, make_demo

    out = tmp_path_factory.mktemp("demo") / "challenge"
    make_demo(out, DemoSpec(train=600, val=60, test=200, size=32, seed=1,
                            exact_fraction=0.01, near_fraction=0.01, conflict_fraction=0.005,
                            leak_fraction=0.05, workers=2))
    return out


@pytest.fixture(scope="session")
def workspace(demo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from comp.config import PrepareConfig
    from comp.prepare import prepare

    ws = tmp_path_factory.mktemp("ws") / "workspace"
    prepare(PrepareConfig(challenge=demo_dir, workspace=ws, workers=2))
    return ws


@pytest.fixture(scope="session")
def demo4_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from comp.demo import DemoSpec, make_demo

    out = tmp_path_factory.mktemp("demo4") / "challenge"
    make_demo(out, DemoSpec(train=300, val=20, test=60, size=32, classes=4, seed=2, workers=2))
    return out


@pytest.fixture(scope="session")
def workspace4(demo4_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from comp.config import PrepareConfig
    from comp.prepare import prepare

    ws = tmp_path_factory.mktemp("ws4") / "workspace"
    prepare(PrepareConfig(challenge=demo4_dir, workspace=ws, workers=2))
    return ws
