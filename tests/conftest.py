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


def _demo(factory: pytest.TempPathFactory, name: str, **spec) -> Path:
    from comp.demo.generate import DemoSpec, make_demo

    out = factory.mktemp(name) / "challenge"
    make_demo(out, DemoSpec(size=32, workers=2, **spec))
    return out


def _prepared(challenge: Path, factory: pytest.TempPathFactory, name: str) -> Path:
    from comp.config import PrepareConfig
    from comp.prepare import prepare

    ws = factory.mktemp(name) / "workspace"
    prepare(PrepareConfig(challenge=challenge, workspace=ws, workers=2))
    return ws


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """600 binary 32x32 faces with plenty of planted copies, conflicts and leaks."""
    return _demo(tmp_path_factory, "demo", train=600, val=60, test=200, seed=1,
                 exact_fraction=0.01, near_fraction=0.01, conflict_fraction=0.005,
                 leak_fraction=0.05)


@pytest.fixture(scope="session")
def workspace(demo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _prepared(demo_dir, tmp_path_factory, "ws")


@pytest.fixture(scope="session")
def demo4_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """300 four-class faces (glasses x smile, written as class names)."""
    return _demo(tmp_path_factory, "demo4", train=300, val=20, test=60, classes=4, seed=2)


@pytest.fixture(scope="session")
def workspace4(demo4_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _prepared(demo4_dir, tmp_path_factory, "ws4")


@pytest.fixture
def file_server(tmp_path: Path):  # type: ignore[no-untyped-def]
    """An HTTP server on the loopback address: (the folder it serves, its address)."""
    import functools
    import http.server
    import threading

    served = tmp_path / "served"
    served.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:  # type: ignore[no-untyped-def]
            pass

    handler = functools.partial(Quiet, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def closed_port() -> int:
    """A free port on the loopback address, closed again: nothing listens there (offline)."""
    import socket

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        return int(closed.getsockname()[1])
