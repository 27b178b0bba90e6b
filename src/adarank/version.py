"""The package version and the commit of the source it runs from, in a module of its own: plans and run
records store them, and reading them must not import the whole package from inside one of its modules."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

__version__ = "0.1.0"

PACKAGE_DIR = Path(__file__).resolve().parent


def _git(folder: Path, *args: str) -> str | None:
    """``git -C folder ARGS``'s stdout, or None when git is missing or fails. ``GIT_DIR`` and its kin are
    dropped from the environment: set by a caller's own tooling, they would point git at the caller's
    repository instead of the one holding ``folder``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    try:
        done = subprocess.run(["git", "-C", str(folder), *args], check=False, capture_output=True, text=True,
                              timeout=10, env=env, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def source_commit(package_dir: Path | None = None) -> str | None:
    """The commit of the git checkout that adarank itself runs from, never that of the working directory.

    ``$ADARANK_COMMIT`` wins (a copy of the tree without its .git, or with a stale one, says what it is).
    Otherwise the package folder must be a tracked part of a checkout: a package installed into a
    virtual environment that sits inside some other repository is inside that repository's work tree, but
    untracked there, and that repository's HEAD says nothing about the code that ran. Such a package, or
    one without git at all, gives None. ``-dirty`` marks tracked files that differ from HEAD: that tree did
    not run HEAD's code. ``-unverified``: HEAD was read but the status check failed."""
    if os.environ.get("ADARANK_COMMIT"):
        return os.environ["ADARANK_COMMIT"]
    folder = (package_dir or PACKAGE_DIR).resolve()
    if _git(folder, "ls-files", "--error-unmatch", "--", "__init__.py") is None:
        return None
    commit = _git(folder, "rev-parse", "HEAD")
    if not commit:
        return None
    status = _git(folder, "status", "--porcelain", "--untracked-files=no")
    if status is None:
        return commit + "-unverified"
    return commit + "-dirty" if status else commit


def provenance() -> dict[str, str | None]:
    """What a stored result names as its source: adarank's version and :func:`source_commit`."""
    return {"adarank": __version__, "commit": source_commit()}
