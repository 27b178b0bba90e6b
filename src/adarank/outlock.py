"""One run at a time per output folder: a lock file made with O_EXCL, holding the owner's pid.

Two runs writing one ``--out`` would each rename their files into place and each report success,
while the folder holds a mix of both. The lock makes the second run stop at once instead. A lock
whose process is gone (a run killed with SIGKILL cannot remove it) is stale and is taken over, and
so are the staging folders such a run left behind.
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path
from types import TracebackType

from .errors import AdaRankError

LOCK_NAME = ".adarank.lock"
STAGING_PREFIX = ".adarank-staging-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class OutputLock:
    """``with OutputLock(out): ...`` holds ``out/.adarank.lock`` for the duration of the block."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.held = False

    def acquire(self) -> None:
        for _ in range(3):  # a stale lock is removed and the exclusive create tried again
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if not self._remove_if_stale():
                    raise AdaRankError(self._busy_message()) from None
                continue
            except OSError as exc:
                raise AdaRankError(f"cannot create the lock file '{self.path}': {exc.strerror or exc}; "
                                   "choose another --out") from None
            with os.fdopen(fd, "w") as fh:
                fh.write(f"{os.getpid()} {socket.gethostname()}\n")
            self.held = True
            remove_stale_staging(self.folder)
            return
        raise AdaRankError(self._busy_message())

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False

    def _owner(self) -> tuple[int | None, str]:
        try:
            fields = self.path.read_text(encoding="utf-8").split()
            return int(fields[0]), (fields[1] if len(fields) > 1 else "")
        except FileNotFoundError:
            return None, ""
        except (OSError, ValueError, IndexError, UnicodeDecodeError):
            return -1, ""  # unreadable or half-written: treated as held, never silently broken

    def _remove_if_stale(self) -> bool:
        pid, host = self._owner()
        if pid is None:
            return True  # released meanwhile
        if pid > 0 and host == socket.gethostname() and not _alive(pid):
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass
            return True
        return False

    def _busy_message(self) -> str:
        pid, host = self._owner()
        who = f"process {pid} on {host}" if pid and pid > 0 else "another process"
        return (f"another adarank run ({who}) is writing to '{self.folder}' (lock file {LOCK_NAME}); "
                f"wait for it to finish or choose another --out (if no such run exists, delete {self.path})")

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
