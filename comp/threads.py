"""How many threads a library may use: sized to the work and to the cores other processes
leave free.

A library's fixed thread count fights the other processes of a busy machine for the same
cores (measured on 2 loaded cores: one LightGBM fit 1.9-2.5 s with two threads against 0.10 s
with one), and on a tiny fit a second thread does not pay. The free cores are measured, not
assumed: the idle time of this process's cores over a short interval, from /proc/stat (Linux;
elsewhere every core counts as free), at most once every `FRESH_SECONDS`.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

FRESH_SECONDS = 10.0  # how long one measurement of the free cores is trusted
INTERVAL = 0.1  # seconds over which the idle time is read
# rows x columns per thread: on 2 idle cores a second thread already paid at 10,200 numbers
# (LightGBM, the stacker's parameters: 0.076 s against 0.096 s; 600 x 129: 0.27 against 0.47)
CELLS_PER_THREAD = 10_000
STAT = Path("/proc/stat")

_last: tuple[float, float] | None = None  # (when, free cores)


def cores() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _idle_ticks(cpus: set[int], stat: Path) -> tuple[int, int] | None:
    """(idle + iowait, all) clock ticks of these cpus so far; None when unreadable."""
    try:
        lines = stat.read_text().splitlines()
    except OSError:
        return None
    idle = total = 0
    for line in lines:
        name, *fields = line.split()
        if not name.startswith("cpu") or name == "cpu" or int(name[3:]) not in cpus:
            continue
        ticks = [int(f) for f in fields[:8]]
        idle += ticks[3] + ticks[4]
        total += sum(ticks)
    return (idle, total) if total else None


def measure_free(*, interval: float = INTERVAL, stat: Path = STAT) -> float:
    """Cores idle over `interval` seconds among this process's (fractional); every core
    when /proc/stat cannot be read."""
    try:
        cpus = set(os.sched_getaffinity(0))
    except AttributeError:
        return float(cores())
    before = _idle_ticks(cpus, stat)
    time.sleep(interval)
    after = _idle_ticks(cpus, stat)
    if before is None or after is None or after[1] <= before[1]:
        return float(len(cpus))
    return len(cpus) * (after[0] - before[0]) / (after[1] - before[1])


def free_cores() -> int:
    """Cores the other processes leave free, at least 1 (measured at most once every
    `FRESH_SECONDS`)."""
    global _last  # noqa: PLW0603 - one measurement shared by every caller for a while
    now = time.monotonic()
    if _last is None or now - _last[0] > FRESH_SECONDS:
        _last = (now, measure_free())
    return max(1, min(cores(), round(_last[1])))


def threads_for(cells: int) -> int:
    """Threads for a fit over `cells` numbers (rows x columns): one per `CELLS_PER_THREAD`,
    no more than the free cores, at least one."""
    return max(1, min(free_cores(), cells // CELLS_PER_THREAD))
