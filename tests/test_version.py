"""comp's version, as run records note it, is the package's."""

from __future__ import annotations

import tomllib
from pathlib import Path

import comp
from comp.version import __version__


def test_the_version_is_the_packages() -> None:
    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    assert __version__ == project["project"]["version"] == comp.__version__
