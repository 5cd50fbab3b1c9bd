"""--profile's stage timings: repeated stages add up, the table accounts for all the time."""

from __future__ import annotations

import time

from comp.stopwatch import Stopwatch


def test_stages_add_up_and_the_table_closes_on_the_total() -> None:
    clock = Stopwatch()
    for _ in range(2):
        with clock.stage("decode"):
            time.sleep(0.01)
    with clock.stage("hash"):
        pass
    assert list(clock.seconds) == ["decode", "hash"]
    assert clock.seconds["decode"] >= 0.02
    lines = clock.table().splitlines()
    assert [line.split()[0] for line in lines] == ["decode", "hash", "(other)", "total"]
    parts = [float(line.split()[-2]) for line in lines]
    assert abs(sum(parts[:3]) - parts[3]) <= 0.02  # the stages and the rest make the total
