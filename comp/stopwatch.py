"""Stage timings for `--profile`: where a command spends its time, measured in the code."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


class Stopwatch:
    """Wall time per named stage, in the order the stages ran (a repeated name adds up)."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start

    def total(self) -> float:
        return time.perf_counter() - self.started

    def table(self) -> str:
        """One line per stage, then the total and what no stage covered."""
        total = self.total()
        width = max([len(n) for n in self.seconds] + [len("(other)")])
        lines = [f"  {n:<{width}}  {s:7.2f} s" for n, s in self.seconds.items()]
        lines.append(f"  {'(other)':<{width}}  {total - sum(self.seconds.values()):7.2f} s")
        lines.append(f"  {'total':<{width}}  {total:7.2f} s")
        return "\n".join(lines)
