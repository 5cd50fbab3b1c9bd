"""Named points where a test can stop the process as a kill -9 would (COMP_FAULT=<name>).

Reliability tests set the variable, run a command, and check that every workspace, run and
submission is as it was before (or as the command left it after a completed step), and that
rerunning the command completes. Without the variable a point costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

FAULT_ENV = "COMP_FAULT"
_hits: dict[str, int] = {}


def fault_point(name: str) -> None:
    """SIGKILL this process here when COMP_FAULT names this point (`name`: the first time
    it is reached; `name@N`: the N-th time)."""
    wanted = os.environ.get(FAULT_ENV)
    if wanted is None or not wanted.startswith(name):
        return
    _hits[name] = _hits.get(name, 0) + 1
    if wanted == name or wanted == f"{name}@{_hits[name]}":
        os.kill(os.getpid(), signal.SIGKILL)
