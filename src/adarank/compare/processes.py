"""The grid's worker processes end with the grid.

A grid trains in spawned worker processes (:func:`adarank.compare.grid._execute_pool`). Killed with
SIGTERM (``kill``, a batch system's limit) or SIGKILL, the grid used to leave its workers running:
each finished the run it held, minutes of a GPU or of every CPU core, and wrote its record beside
a grid started again on the same folder, which then trained the same run a second time. Seen on the
development machine (a ``pkill`` of the grid; its worker ran on for 25 minutes).

So each worker watches its parent (:func:`die_with_parent`) and exits as soon as it is gone, by any
signal, and the grid's command line turns SIGTERM into an interruption (:func:`sigterm_interrupts`)
that stops its workers (:func:`stop_workers`) before it exits. A run stopped that way leaves no
record and runs again on the next call, as a killed run always did.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from contextlib import contextmanager
from typing import Any, Iterator

#: seconds between a worker's checks that the grid that started it is alive
PARENT_POLL_SECONDS = 1.0
#: exit status of a worker that found its parent gone
ORPHANED_EXIT = 3


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C, so that the same clean-up runs."""


def die_with_parent(poll: float = PARENT_POLL_SECONDS) -> threading.Thread:
    """Start a daemon thread that ends this process once its parent has changed (it died, and the
    process was handed to init or a subreaper); returns the thread."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll)
        os._exit(ORPHANED_EXIT)  # no clean-up to run: records are written atomically or not at all

    thread = threading.Thread(target=watch, name="adarank-parent-watch", daemon=True)
    thread.start()
    return thread


def stop_workers(pool: Any) -> int:
    """Terminate every worker process of a ``ProcessPoolExecutor``, busy or idle; returns how many.

    ``shutdown(cancel_futures=True)`` only drops the runs not yet started and leaves a busy worker to
    finish its run, so the processes are signalled directly (the executor keeps them in
    ``_processes``, a private mapping that has held them since Python 3.2)."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    for process in processes:
        if process.is_alive():
            process.terminate()
    return len(processes)


@contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` in the main thread (elsewhere: no change)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise Terminated(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
