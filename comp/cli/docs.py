"""The options table of each command's page under docs/, generated from the Typer app itself,
so that a page cannot say something `--help` does not.

    python -m comp.cli.docs          # rewrite every page's table in place
    python -m comp.cli.docs --check  # exit 1 naming the pages whose table is out of date

A page is `docs/<command>.md`: its prose is written by hand; the table sits between the two
marker lines below and is replaced whole.
"""

from __future__ import annotations

import enum
import sys
import typing
from pathlib import Path
from typing import Any

BEGIN = "<!-- options: generated from the command line by `python -m comp.cli.docs` -->"
END = "<!-- end of options -->"
DOCS = Path(__file__).resolve().parents[2] / "docs"

_KINDS = {int: "INT", float: "NUMBER", str: "TEXT", Path: "PATH"}


def commands() -> dict[str, Any]:
    """Every command of the app, by name, as the command line sees it."""
    import typer.main

    from comp.cli import app

    return dict(sorted(typer.main.get_command(app).commands.items()))  # type: ignore[attr-defined]


def _takes(param: Any) -> str:
    annotation = param.type_descriptor.annotation
    if getattr(param, "is_flag", False):
        return "flag"
    repeat = typing.get_origin(annotation) in (list, tuple)
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is tuple:
        return " ".join(_kind(a) for a in args)
    inner = args[0] if repeat else annotation
    text = _kind(inner)
    if not repeat:
        return text
    return f"{text} (repeat)" if param.param_type_name == "option" else f"{text} ..."


def _kind(annotation: Any) -> str:
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return " \\| ".join(str(m.value) for m in annotation)
    return _KINDS.get(annotation, str(getattr(annotation, "__name__", annotation)).upper())


def _default(param: Any) -> str:
    value = param.default
    if getattr(param, "is_flag", False) and value is not None:
        return "on" if value else "off"
    if value is None or value == ():
        return "required" if param.required else "-"
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, list | tuple):
        value = " ".join(str(v) for v in value)
    return f"`{value}`"


def _names(param: Any) -> str:
    if param.param_type_name == "argument":
        return str(param.name).upper()
    names = [*param.opts, *param.secondary_opts]
    return ", ".join(f"`{n}`" for n in names)


def table(name: str) -> str:
    """The markdown options table of command `name`."""
    command = commands()[name]
    summary = " ".join(command.help.strip().split("\n\n")[0].split())
    lines = [f"`comp {name}`: {summary}", "",
             "| option | takes | default | what it does |", "|---|---|---|---|"]
    for param in command.params:
        if getattr(param, "hidden", False):
            continue
        text = " ".join(str(getattr(param, "help", None) or "").split()).replace("|", "\\|")
        lines.append(f"| {_names(param)} | {_takes(param)} | {_default(param)} | {text} |")
    return "\n".join(lines)


def page_path(name: str, docs: Path = DOCS) -> Path:
    return docs / f"{name}.md"


def updated(text: str, name: str) -> str:
    """A page's text with its options table replaced by the current one."""
    if BEGIN not in text or END not in text:
        raise ValueError(f"docs/{name}.md: no options markers ({BEGIN} ... {END})")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{table(name)}\n{END}{tail}"


def stale(docs: Path = DOCS) -> list[str]:
    """The pages that are missing or whose table differs from the command line's."""
    out = []
    for name in commands():
        path = page_path(name, docs)
        if not path.exists():
            out.append(f"{path}: missing")
            continue
        text = path.read_text()
        try:
            if updated(text, name) != text:
                out.append(f"{path}: its options table differs from `comp {name} --help`")
        except ValueError as exc:
            out.append(str(exc))
    return out


def main(argv: list[str]) -> int:
    if "--check" in argv:
        problems = stale()
        for line in problems:
            print(line)
        return 1 if problems else 0
    for name in commands():
        path = page_path(name)
        text = path.read_text() if path.exists() else f"# comp {name}\n\n{BEGIN}\n{END}\n"
        path.write_text(updated(text, name))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
