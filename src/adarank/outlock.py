"""One run at a time per output folder: an OS file lock (``filelock``) on ``out/.adarank.lock``.

Two runs writing one ``--out`` would each rename their files into place and each report success,
while the folder holds a mix of both. The lock makes the second run stop at once instead.

The lock is the kernel's (``flock``), not the file's existence: it is released when its process
ends, however it ends, so a run killed with SIGKILL leaves a lock file that blocks nobody, and a
0-byte file left by a run that failed while writing it is just a file. No process ever has to
decide that another's lock is stale and take it over, which is the step where two runs could both
end up holding it. The file is never deleted (deleting a flock file lets a waiter hold a lock on
the unlinked inode while a third run locks a new one); its text, ``pid host`` of the holder, only
serves the "busy" message.
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path
from types import TracebackType

from filelock import FileLock, Timeout

from .errors import AdaRankError

LOCK_NAME = ".adarank.lock"
STAGING_PREFIX = ".adarank-staging-"


class OutputLock:
    """``with OutputLock(out): ...`` holds ``out/.adarank.lock`` for the duration of the block.

    Acquiring never waits: a busy folder is an :class:`AdaRankError` naming the holder. On success
    the staging folders a killed run left in the folder are removed.
    """

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self._lock = FileLock(str(self.path), timeout=0, thread_local=False)
        self.held = False

    def acquire(self) -> None:
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            raise AdaRankError(self._busy_message()) from None
        except OSError as exc:
            raise AdaRankError(f"cannot create the lock file '{self.path}': {exc.strerror or exc}; "
                               "choose another --out") from None
        self.held = True
        try:
            # Overwritten only while held, so the text always names the current holder.
            with open(self.path, "w", encoding="utf-8") as fh:
                fh.write(f"{os.getpid()} {socket.gethostname()}\n")
        except OSError:
            pass  # the text is only for the busy message; the lock itself is held
        remove_stale_staging(self.folder)

    def release(self) -> None:
        if self.held:
            try:
                os.truncate(self.path, 0)  # still held: no one else's text can be erased
            except OSError:
                pass
            self._lock.release()
            self.held = False

    def owner(self) -> tuple[int | None, str]:
        """``(pid, host)`` written by the holder, or ``(None, "")`` when the file names nobody."""
        try:
            fields = self.path.read_text(encoding="utf-8").split()
            return int(fields[0]), (fields[1] if len(fields) > 1 else "")
        except (OSError, ValueError, IndexError, UnicodeDecodeError):
            return None, ""

    def _busy_message(self) -> str:
        pid, host = self.owner()
        who = f"process {pid} on {host}" if pid else "another process"
        return (f"another adarank run ({who}) is writing to '{self.folder}' (lock file {LOCK_NAME}); "
                "wait for it to finish or choose another --out")

    def __enter__(self) -> "OutputLock":
        self.acquire()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


def remove_stale_staging(folder: Path) -> list[Path]:
    """Delete staging folders a killed run left in ``folder``; only call while holding its lock."""
    removed = []
    for stage in folder.glob(STAGING_PREFIX + "*"):
        if stage.is_dir():
            shutil.rmtree(stage, ignore_errors=True)
            removed.append(stage)
    return removed
