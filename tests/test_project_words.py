"""The project speaks only of itself: no tracked text file names how its work was once organised.

Words about work sessions, issue numbers, borrowed GPU hosts and the mechanics of moving files onto them (pieces,
staging folders, transfer limits) mean nothing to a reader of the repository and go stale at once. This test scans
every tracked text file (``git ls-files``; binary and ``.gz`` files skipped) and lists each ``file:line`` that
matches. The pattern is assembled from fragments so that this file does not match itself.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

_ORDINALS = "first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|this|that|earlier|later|next|last|previous|one"
_SESS = "sess" + "ion"
_FRAGMENTS = [
    r"\b[Ii]ssues? ?[0-9]+\b", r"\b[Ii]ssue-[0-9]+",
    rf"\b({_ORDINALS}) {_SESS}s?\b", rf"\b{_SESS}s? [0-9]+\b",
    "log-" + _SESS, "log-" + "call", "GPU " + "machine", "device " + "machine", r"device " + r"calls?\b",
    "device " + "tool", "device " + "time", r"\b" + "le" + r"nt\b", "given " + "back", r"stays? " + "warm",
    "fresh " + "machine", r"staging " + "calls?", r"\.ca" + r"rry\b", "gpu_stage" + "_piece", "in " + "pieces",
    "/tmp/" + "stage", r"\$O" + r"UT\b", "64 " + "MiB", r"\.\./sh" + "ared",
]
PATTERN = re.compile("|".join(_FRAGMENTS))


def _tracked() -> list[Path]:
    done = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
    return [ROOT / name for name in done.stdout.decode("utf-8").split("\0") if name]


def hits(paths: list[Path]) -> list[str]:
    """``file:line: text`` for every line of a text file among PATHS that the pattern matches."""
    found = []
    for path in paths:
        if path.suffix == ".gz" or not path.is_file():
            continue
        data = path.read_bytes()
        if b"\0" in data[:8192]:
            continue
        for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
            if PATTERN.search(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:120]}")
    return found


def test_the_pattern_catches_what_it_is_for_and_spares_plain_words():
    caught = ["see " + "iss" + "ue 13", "the " + "eighth " + _SESS, "log-" + _SESS + "4.txt", "carried " + "in " + "pie" + "ces",
              "time was " + "le" + "nt", "$O" + "UT/x.tar.gz"]
    plain = ["the decoder study", "the two-level decision rule", "a silent change", "the lentil soup",
             "tissue 3", "the session cookie"]
    assert all(PATTERN.search(text) for text in caught)
    assert not any(PATTERN.search(text) for text in plain)


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="needs a git checkout")
def test_no_tracked_file_speaks_of_how_the_work_was_organised():
    found = hits(_tracked())
    assert not found, f"{len(found)} line(s) to rewrite plainly:\n" + "\n".join(found)
