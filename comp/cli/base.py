"""What every command shares: the Typer app, the common options, and `clear_errors`, which
turns a `CompError` (or an OSError, or Ctrl-C) into one line on stderr and a non-zero exit."""

from __future__ import annotations

import errno
import functools
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from comp.errors import CompError
from comp.native_log import VERBOSE_ENV

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_show_locals=False,
                  help="From raw challenge files to a leaderboard CSV.")
F = TypeVar("F", bound=Callable[..., Any])

Workspace = Annotated[Path, typer.Option("--workspace", "-w", help="Prepared workspace folder.")]
Checkpoints = Annotated[Path, typer.Option(help="Where run folders are.")]
Seed = Annotated[int, typer.Option(help="Random seed of what this command draws.")]
Folds = Annotated[int | None, typer.Option(
    min=2, help="A one-model run's holdout folds for its out-of-fold decisions (default 5); "
    "a cross-fitted run is scored on the workspace's prepared folds.")]
Profile = Annotated[bool, typer.Option("--profile", help="Print the time of each stage.")]
Verbose = Annotated[bool, typer.Option("--verbose", help="Show TensorFlow's own start-up log.")]
Json = Annotated[bool, typer.Option("--json", help="Print the result as JSON (for scripts).")]


def quiet_tensorflow(verbose: bool) -> None:
    """TensorFlow's C++ start-up lines stay off the terminal unless --verbose
    (`comp.native_log.load_tensorflow` reads this when TensorFlow is first needed)."""
    if verbose:
        os.environ[VERBOSE_ENV] = "1"


def os_problem(exc: OSError) -> str:
    """One line for a failed file operation: the file, what the system said, what to do."""
    where = f"{exc.filename}: " if exc.filename else ""
    what = exc.strerror or str(exc) or type(exc).__name__
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return (f"{where}{what}: the disk is full; free some space and run the command again "
                "(what was already there is unchanged)")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"{where}{what}; fix the permissions or choose another folder"
    return f"{where}{what}; check the path and run the command again"


def clear_errors(func: F) -> F:
    """Turn a CompError (and Ctrl-C) into one line on stderr and a non-zero exit."""
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except CompError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(code=1) from None
        except OSError as exc:  # the machine's side: a full disk, a permission, a vanished file
            typer.echo(f"error: {os_problem(exc)}", err=True)
            raise typer.Exit(code=1) from None
        except KeyboardInterrupt:
            typer.echo("interrupted: nothing half-written was left behind", err=True)
            raise typer.Exit(code=130) from None
    return wrapper  # type: ignore[return-value]


def typed_options(ctx: typer.Context, *, rename: dict[str, str] | None = None
                  ) -> frozenset[str]:
    """The parameters the user typed (not left at their defaults), by config field name."""
    rename = rename or {}
    return frozenset(rename.get(name, name) for name in ctx.params
                     if getattr(ctx.get_parameter_source(name), "name", "") == "COMMANDLINE")


def echo_json(data: Any) -> None:
    """The machine form of a command's result (`--json`)."""
    typer.echo(json.dumps(data, indent=2, default=str))
