"""The house: imports run only downward through the layers docs/development.md lists,
no source module grows past 400 lines, and every module has a test module named after it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
# bottom to top: a module may import its own layer's modules and the ones below
LAYERS = [
    ["errors", "faults", "metrics", "stopwatch", "native_log", "version", "choices", "threads"],
    ["commit"],
    ["workspace"],
    ["config", "runs"],
    ["specs", "pictures"],
    ["prepare"],
    ["train"],
    ["submit"],
    ["experiments", "audit", "inspect", "tune", "photos", "demo"],
    ["cli", "__init__"],
]
LAYER = {name: k for k, names in enumerate(LAYERS) for name in names}
TESTED_AS_A_PACKAGE = {"cli": "test_cli.py", "inspect": "test_inspect.py",
                       "demo": "test_demo.py"}


def modules() -> list[Path]:
    return sorted(p for p in (ROOT / "comp").rglob("*.py") if p.name != "__main__.py")


def top(path: Path) -> str:
    """The layer name of a module: its package under comp/, or its own name."""
    parts = path.relative_to(ROOT / "comp").with_suffix("").parts
    return parts[0]


def imported(path: Path) -> set[str]:
    """The comp modules a file imports, anywhere in it (lazy imports too), by layer name."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            parts = node.module.split(".")
            if parts[0] == "comp":
                if len(parts) > 1:
                    out.add(parts[1])
                else:  # from comp import config
                    out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "comp" and len(parts) > 1:
                    out.add(parts[1])
    return out


def test_every_module_has_a_layer() -> None:
    assert {top(p) for p in modules()} == set(LAYER)


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_run_only_downward(path: Path) -> None:
    mine = LAYER[top(path)]
    upward = {name for name in imported(path) if LAYER[name] > mine}
    assert not upward, f"{path.relative_to(ROOT)} imports {sorted(upward)} from above"


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_over_400_lines(path: Path) -> None:
    assert len(path.read_text().splitlines()) <= 400


@pytest.mark.parametrize("path", [p for p in modules() if p.name != "__init__.py"],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_every_module_has_its_test_module(path: Path) -> None:
    parts = path.relative_to(ROOT / "comp").with_suffix("").parts
    name = TESTED_AS_A_PACKAGE.get(parts[0]) if len(parts) > 1 else None
    name = name or f"test_{'_'.join(parts)}.py"
    assert (ROOT / "tests" / name).exists(), f"{path.relative_to(ROOT)}: no tests/{name}"


def test_no_function_is_over_sixty_lines() -> None:
    """A function a reader can hold at once (a command's options count: they are aliases)."""
    long = []
    for path in modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                if lines > 60:
                    long.append(f"{path.relative_to(ROOT)}:{node.name} {lines}")
    assert long == []
