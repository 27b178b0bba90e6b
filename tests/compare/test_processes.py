"""Grid workers end with the grid: a worker whose parent is killed exits (and one without the watch does not,
so the test can tell), busy workers are terminated when the grid stops, and SIGTERM interrupts the command line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ProcessPoolExecutor
import multiprocessing

import pytest

from adarank.compare import grid
from adarank.compare.processes import Terminated, die_with_parent, sigterm_interrupts, stop_workers

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads process states from /proc")


def _alive(pid: int) -> bool:
    """Running or sleeping: not gone, and not a zombie waiting for a reaper."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def _wait_gone(pid: int, seconds: float) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if not _alive(pid):
            return True
        time.sleep(0.1)
    return False


PARENT = textwrap.dedent("""
    import multiprocessing, os, sys, time
    from concurrent.futures import ProcessPoolExecutor
    from adarank.compare.processes import die_with_parent

    if __name__ == "__main__":
        watch = sys.argv[1] == "watch"
        pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=die_with_parent if watch else None, initargs=(0.1,) if watch else ())
        print(pool.submit(os.getpid).result(), flush=True)
        pool.submit(time.sleep, 120)
        time.sleep(120)
""")


@linux_only
@pytest.mark.parametrize("watch", [True, False])
def test_a_worker_exits_once_its_parent_is_killed_only_with_the_watch(tmp_path, watch):
    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    parent = subprocess.Popen([sys.executable, str(script), "watch" if watch else "plain"], stdout=subprocess.PIPE,
                              text=True)
    worker = int(parent.stdout.readline())
    try:
        time.sleep(0.5)  # the worker is in its two-minute task
        assert _alive(worker)
        parent.kill()  # SIGKILL: no handler of the parent's runs
        parent.wait(10)
        assert _wait_gone(worker, 5.0) == watch
    finally:
        if _alive(worker):
            os.kill(worker, signal.SIGKILL)


def _busy_pool() -> tuple[ProcessPoolExecutor, int]:
    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    worker = pool.submit(os.getpid).result()
    pool.submit(time.sleep, 120)
    time.sleep(0.3)
    return pool, worker


@linux_only
def test_stopping_the_workers_ends_a_busy_one_that_shutdown_alone_leaves_running():
    pool, worker = _busy_pool()
    try:
        pool.shutdown(wait=False, cancel_futures=True)
        assert not _wait_gone(worker, 1.0)  # shutdown drops queued runs only: the busy one goes on
        assert stop_workers(pool) == 0  # and afterwards the executor no longer knows its processes
    finally:
        os.kill(worker, signal.SIGKILL)
    pool, worker = _busy_pool()
    try:
        assert stop_workers(pool) == 1  # what the grid does, before its shutdown
        pool.shutdown(wait=False, cancel_futures=True)
        assert _wait_gone(worker, 5.0)
    finally:
        if _alive(worker):
            os.kill(worker, signal.SIGKILL)


def test_sigterm_raises_terminated_inside_the_block_and_the_old_handler_returns():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Terminated):
        with sigterm_interrupts():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises before this ends
    assert signal.getsignal(signal.SIGTERM) is before


def test_the_grid_command_line_exits_143_on_sigterm_and_says_the_runs_are_kept(monkeypatch, capsys, tmp_path):
    def terminated_run(opts):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)

    monkeypatch.setattr(grid, "run_grid", terminated_run)
    code = grid.main(["--model", str(tmp_path), "--results", str(tmp_path / "r"), "--datasets", "mr",
                      "--data-dir", str(tmp_path), "--dry-run"])
    assert code == 143
    assert "terminated; finished runs are kept" in capsys.readouterr().err


def test_die_with_parent_keeps_a_process_whose_parent_lives():
    thread = die_with_parent(poll=0.05)
    time.sleep(0.2)
    assert thread.is_alive() and thread.daemon
