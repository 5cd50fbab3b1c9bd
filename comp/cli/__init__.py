"""The Typer app: parse options, build a config, call one function, print the result.

One module per command (each a thin Typer function, registered on `app` when imported here);
the only package that imports typer. Defaults and choices come from `comp.config`;
heavy libraries (TensorFlow, LightGBM) are imported inside the commands that need them.
"""

from __future__ import annotations

import sys

import typer
from typer.exceptions import TyperException

from comp.cli import (  # noqa: F401 (each module registers its command on `app`)
    audit,
    demo,
    evaluate,
    inspect,
    predict,
    prepare,
    runs,
    submit,
    train,
    tune,
)
from comp.cli.base import app

__all__ = ["app", "main"]


def main(argv: list[str] | None = None) -> None:
    """The `comp` command. Usage errors (an unknown option or choice, a number out of range)
    are one line too, naming the option, with the command whose --help lists the choices."""
    args = sys.argv[1:] if argv is None else argv
    try:
        code = app(args, standalone_mode=False)
    except TyperException as exc:
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        if type(exc).__name__ == "NoArgsIsHelpError":  # `comp` alone: the help, as asked
            typer.echo(message)
            raise SystemExit(0) from None
        command = next((a for a in args if not a.startswith("-")), "")
        text = " ".join(message.replace("Value error, ", "").split()).rstrip(".")
        typer.echo(f"error: {text}; see `comp {command} --help`".replace("comp  ", "comp "),
                   err=True)
        raise SystemExit(getattr(exc, "exit_code", 2)) from None
    raise SystemExit(code if isinstance(code, int) else 0)
