"""Every table a study commits is what the code makes of its packed records, byte for byte.

The studies commit their generated tables (reports, decisions, the allocation table) beside records.jsonl.gz. A
change to the report's wording or to the decision rule must show up in those files, or they silently describe
code that no longer exists: this test regenerates each table from the archive and compares it with the file.
When it fails, ``python experiments/regenerate.py --write`` rewrites them all.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
from pathlib import Path

import pytest

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"experiments_{name}", EXPERIMENTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


regenerate = _load("regenerate")
archive = _load("archive")


def test_every_study_with_tables_has_its_archive():
    with_tables = sorted(p.parent.name for p in EXPERIMENTS.glob("*/tables.json"))
    assert with_tables, "no study commits generated tables"
    assert regenerate.studies() == with_tables


@pytest.mark.parametrize("study", regenerate.studies())
def test_each_committed_table_is_regenerated_byte_for_byte(study, tmp_path):
    built, figures = regenerate.render(study, tmp_path)
    assert set(built) == {entry["out"] for entry in regenerate.tables(study)}
    differ = [name for name, data in built.items() if (EXPERIMENTS / study / name).read_bytes() != data]
    assert not differ, f"{study}: {differ} differ from the records; run python experiments/regenerate.py --write"
    assert figures, "the reports drew no plot"
    for name in figures:
        assert (EXPERIMENTS / study / name).is_file(), f"{study}/{name} is linked but not committed"


def test_an_archive_round_trips_text_and_binary_files_byte_for_byte(tmp_path):
    src = tmp_path / "src"
    (src / "runs").mkdir(parents=True)
    files = {"runs/a.json": '{"acc": 0.5, "name": "ü"}\n'.encode(), "plot.png": bytes(range(256)),
             "log.txt": b"no newline at the end"}
    for rel, data in files.items():
        (src / rel).write_bytes(data)
    packed = tmp_path / "records.jsonl.gz"
    archive.pack(archive.tree(src, "grid"), packed)
    first = packed.read_bytes()
    archive.pack(archive.tree(src, "grid"), packed)
    assert packed.read_bytes() == first, "packing the same tree twice gave different bytes"
    assert archive.unpack(packed, tmp_path / "dst") == len(files)
    for rel, data in files.items():
        assert (tmp_path / "dst" / "grid" / rel).read_bytes() == data
    lines = [json.loads(line) for line in gzip.open(packed, "rt", encoding="utf-8")]
    assert [entry["path"] for entry in lines] == sorted(f"grid/{rel}" for rel in files)
    assert "base64" in next(e for e in lines if e["path"] == "grid/plot.png")


def test_an_archive_path_that_leaves_the_folder_is_refused(tmp_path):
    bad = tmp_path / "bad.jsonl.gz"
    with gzip.open(bad, "wt", encoding="utf-8") as fh:
        fh.write(json.dumps({"path": "../escape.txt", "text": "x"}) + "\n")
    with pytest.raises(ValueError, match="not a plain relative path"):
        archive.unpack(bad, tmp_path / "dst")
    assert not (tmp_path / "escape.txt").exists()
