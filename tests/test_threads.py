"""Threads sized to the work and to the free cores (comp.threads)."""

from __future__ import annotations

import multiprocessing
import os
import time

import numpy as np
import pytest

from comp import threads

STAT_BEFORE = """cpu  500 0 100 1000 50 0 0 0 0 0
cpu0 100 0 50 400 20 0 0 0 0 0
cpu1 200 0 30 300 10 0 0 0 0 0
cpu2 200 0 20 300 20 0 0 0 0 0
intr 12345 0 0
ctxt 999
"""
# over the interval: cpu0 busy 10 and idle 90 ticks, cpu1 busy 80 and idle 20, cpu2 (not
# ours) fully busy
STAT_AFTER = """cpu  700 0 100 1110 50 0 0 0 0 0
cpu0 110 0 50 480 30 0 0 0 0 0
cpu1 280 0 30 320 10 0 0 0 0 0
cpu2 300 0 20 300 20 0 0 0 0 0
intr 12399 0 0
ctxt 1999
"""


def test_idle_ticks_sum_idle_and_iowait_of_our_cpus_only(tmp_path):
    stat = tmp_path / "stat"
    stat.write_text(STAT_BEFORE)
    # cpu0: idle 400 + iowait 20 of 570; cpu1: 300 + 10 of 540
    assert threads._idle_ticks({0, 1}, stat) == (730, 1110)
    assert threads._idle_ticks({2}, stat) == (320, 540)
    assert threads._idle_ticks({7}, stat) is None  # no such cpu: unreadable, not zero
    assert threads._idle_ticks({0}, tmp_path / "missing") is None


def test_free_cores_are_the_idle_share_of_our_cpus_over_the_interval(tmp_path, monkeypatch):
    stat = tmp_path / "stat"
    stat.write_text(STAT_BEFORE)
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda _pid: {0, 1})
    monkeypatch.setattr(threads.time, "sleep", lambda _s: stat.write_text(STAT_AFTER))
    # idle 90 + 20 of 100 + 100 ticks on 2 cpus: 1.1 cores free
    assert threads.measure_free(stat=stat) == pytest.approx(1.1)


def test_free_cores_fall_back_to_every_core_when_unreadable(tmp_path, monkeypatch):
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda _pid: {0, 1, 2})
    assert threads.measure_free(interval=0, stat=tmp_path / "missing") == 3.0


def _spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="needs /proc/stat (Linux)")
def test_a_busy_machine_leaves_fewer_free_cores():
    n = threads.cores()
    idle = threads.measure_free(interval=0.3)
    ctx = multiprocessing.get_context("spawn")
    busy = [ctx.Process(target=_spin, args=(6.0,)) for _ in range(n)]
    for p in busy:
        p.start()
    try:
        time.sleep(1.5)  # the spinners started (spawn imports this module first)
        loaded = threads.measure_free(interval=0.5)
    finally:
        for p in busy:
            p.terminate()
            p.join()
    assert loaded < 0.5 + 0.5 * n / 2  # each core about half taken at least
    assert loaded < idle


def test_threads_grow_with_the_work_up_to_the_free_cores(monkeypatch):
    monkeypatch.setattr(threads, "free_cores", lambda: 2)
    assert threads.threads_for(0) == 1
    assert threads.threads_for(threads.CELLS_PER_THREAD - 1) == 1
    assert threads.threads_for(2 * threads.CELLS_PER_THREAD) == 2
    assert threads.threads_for(50 * threads.CELLS_PER_THREAD) == 2
    monkeypatch.setattr(threads, "free_cores", lambda: 1)  # a busy machine
    assert threads.threads_for(50 * threads.CELLS_PER_THREAD) == 1


def test_free_cores_is_measured_once_while_fresh(monkeypatch):
    calls = []
    monkeypatch.setattr(threads, "_last", None)
    monkeypatch.setattr(threads, "cores", lambda: 4)
    monkeypatch.setattr(threads, "measure_free", lambda: calls.append(1) or 2.6)
    assert threads.free_cores() == 3
    assert threads.free_cores() == 3
    assert len(calls) == 1
    monkeypatch.setattr(threads, "measure_free", lambda: calls.append(1) or 0.2)
    monkeypatch.setattr(threads, "_last", (time.monotonic() - threads.FRESH_SECONDS - 1, 2.6))
    assert threads.free_cores() == 1  # measured again; never below one
    assert len(calls) == 2


def test_lightgbm_fits_the_same_on_one_thread_as_on_two():
    """The stacker's threads vary with the load; its fits must not (bagging included)."""
    from lightgbm import LGBMClassifier

    from comp.submit import stacker

    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 40)).astype(np.float32)
    y = (x[:, 0] + rng.normal(size=2000) > 0).astype(int)
    probs = [LGBMClassifier(**stacker.lgbm_params(2, 0), n_jobs=n).fit(x, y).predict_proba(x)
             for n in (1, 2)]
    np.testing.assert_array_equal(probs[0], probs[1])
