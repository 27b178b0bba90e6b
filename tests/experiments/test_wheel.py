"""The wheel ships the library only: no study code, records or benchmark scripts (they live outside src/).

The studies' archives are megabytes each and their scripts import paths that exist only in a checkout, so a wheel
that picked them up (a packages.find widened to the repository root, a MANIFEST that grafts experiments/) would be
both heavy and broken. Building the wheel and reading its file list is the one check that cannot drift.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_the_wheel_holds_src_adarank_and_its_metadata_only(tmp_path):
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation",
                           "-q", "-w", str(tmp_path)], capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        pytest.fail(f"pip wheel failed:\n{done.stderr[-2000:]}")
    (wheel,) = tmp_path.glob("adarank-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    outside = [n for n in names if not (n.startswith("adarank/") or n.split("/")[0].endswith(".dist-info"))]
    assert not outside, f"the wheel holds files outside the package: {outside[:10]}"
    assert "adarank/__init__.py" in names and "adarank/compare/report.py" in names
    data = [n for n in names if n.endswith((".gz", ".jsonl", ".png"))]
    # The pilot's built-in demo corpus is the one data file a user needs from the wheel (`adarank pilot --demo`).
    assert sorted(data) == ["adarank/pilot/demo/test.jsonl", "adarank/pilot/demo/train.jsonl"], data
    assert not [n for n in names if "experiments" in n or "benchmarks" in n]
