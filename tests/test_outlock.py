"""OutputLock under real processes: a killed holder, a 0-byte leftover, and two racing runs."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
from pathlib import Path

import pytest

from adarank.errors import AdaRankError
from adarank.outlock import LOCK_NAME, STAGING_PREFIX, OutputLock

CTX = mp.get_context("spawn")


def _hold_forever(folder: str, ready) -> None:
    lock = OutputLock(folder)
    lock.acquire()
    ready.set()
    time.sleep(60)


def _race(folder: str, rounds: int, hold: float, deadline: float, log) -> None:
    """Take the lock ``rounds`` times (retrying while busy), hold it ``hold`` s, note when."""
    done = 0
    while done < rounds and time.monotonic() < deadline:
        lock = OutputLock(folder)
        try:
            lock.acquire()
        except AdaRankError:
            time.sleep(0.005)
            continue
        start = time.monotonic()
        time.sleep(hold)
        end = time.monotonic()
        lock.release()
        log.put((os.getpid(), start, end))
        done += 1
        time.sleep(0.005)


def _kill_a_holder(folder: Path) -> None:
    ready = CTX.Event()
    holder = CTX.Process(target=_hold_forever, args=(str(folder), ready))
    holder.start()
    assert ready.wait(30)
    with pytest.raises(AdaRankError, match=f"process {holder.pid}"):
        OutputLock(folder).acquire()
    os.kill(holder.pid, signal.SIGKILL)
    holder.join(10)
    assert (folder / LOCK_NAME).read_text().split()[0] == str(holder.pid)  # its lock file is left behind


def test_two_processes_racing_for_a_killed_runs_lock_hold_it_one_at_a_time(tmp_path):
    _kill_a_holder(tmp_path)
    log = CTX.Queue()
    deadline = time.monotonic() + 30
    racers = [CTX.Process(target=_race, args=(str(tmp_path), 4, 0.05, deadline, log)) for _ in range(2)]
    for p in racers:
        p.start()
    for p in racers:
        p.join(40)
        assert p.exitcode == 0
    spans = sorted(log.get(timeout=5) for _ in range(8))
    spans.sort(key=lambda s: s[1])
    assert {pid for pid, _, _ in spans} == {p.pid for p in racers}  # both got it, after the killed one
    for (_, _, end), (_, start, _) in zip(spans, spans[1:]):
        assert start >= end  # no two holders at once


def test_a_zero_byte_lock_file_blocks_nobody(tmp_path):
    (tmp_path / LOCK_NAME).write_bytes(b"")
    (tmp_path / (STAGING_PREFIX + "left")).mkdir()
    with OutputLock(tmp_path) as lock:
        assert lock.owner()[0] == os.getpid()
        assert not (tmp_path / (STAGING_PREFIX + "left")).exists()  # a killed run's leftovers are cleared
        with pytest.raises(AdaRankError, match=f"process {os.getpid()}"):
            OutputLock(tmp_path).acquire()  # a second lock in the same process is refused too
    with OutputLock(tmp_path):  # free again once released
        pass

