"""Tiny data for the pilot's tests: a three-label task the packaged MiniLM learns in a few steps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

DEMO = Path(__file__).resolve().parents[2] / "src" / "adarank" / "pilot" / "demo"


@pytest.fixture
def demo_files(tmp_path: Path) -> tuple[Path, Path]:
    """A small slice of the packaged demo data (60 training, 30 test rows)."""
    out = []
    for name, n in (("train", 60), ("test", 30)):
        rows = (DEMO / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()[:n]
        path = tmp_path / f"{name}.jsonl"
        path.write_text("\n".join(rows) + "\n", encoding="utf-8")
        out.append(path)
    return out[0], out[1]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path
