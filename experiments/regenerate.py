"""Regenerate every committed table of the studies from their packed records, or check that they match.

Each study folder under experiments/ holds ``records.jsonl.gz`` (its raw run records, see archive.py) and
``tables.json``: the exact commands (``adarank report``, ``python -m adarank.compare.decision``, the allocation
script) whose outputs the study commits. This script unpacks the records into a temporary folder and runs every
command there, so a table never depends on loose files or on where the records once lay.

    python experiments/regenerate.py            check: exit 1 and name every table that differs from its file
    python experiments/regenerate.py --write    rewrite the tables (and their plots) in the study folders
    python experiments/regenerate.py --study decoder [--write]

Run ``--write`` after changing the report's wording or the decision rule: the committed tables then follow in one
command, and tests/experiments/test_regenerate.py keeps them equal to what the code produces.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

import archive  # noqa: E402


def studies() -> list[str]:
    """Every study folder that has both a tables.json and a records archive."""
    return sorted(p.parent.name for p in HERE.glob("*/tables.json") if (p.parent / "records.jsonl.gz").is_file())


def tables(study: str) -> list[dict]:
    """The table entries of STUDY's tables.json: out (file name), argv, optional plots (folder) and stdout."""
    return json.loads((HERE / study / "tables.json").read_text(encoding="utf-8"))["tables"]


def _argv(entry: dict, *, records: Path, out: Path, plots: Path, study: Path) -> list[str]:
    fill = {"{records}": str(records), "{out}": str(out), "{plots}": str(plots), "{study}": str(study)}
    argv = []
    for arg in entry["argv"]:
        for key, value in fill.items():
            arg = arg.replace(key, value)
        argv.append(arg)
    return [sys.executable if argv[0] == "python" else argv[0], *argv[1:]]


def render(study: str, work: Path) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """Every table of STUDY as its bytes, and every plot (relative path -> bytes), built under WORK.

    The tables are written into WORK, the records unpacked into WORK/records and the plots into WORK/<the entry's
    plots folder>: the links a report writes are relative to its own file, so they read ``plots/...`` and
    ``records/<archive path>`` wherever WORK is.
    """
    out_dir = work
    records = work / "records"
    archive.unpack(HERE / study / "records.jsonl.gz", records)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")])),
               MPLBACKEND="Agg", HF_HUB_OFFLINE="1")
    result = {}
    for entry in tables(study):
        out = out_dir / entry["out"]
        plots = out_dir / entry.get("plots", "plots")
        argv = _argv(entry, records=records, out=out, plots=plots, study=HERE / study)
        done = subprocess.run(argv, cwd=out_dir, env=env, capture_output=True)
        if done.returncode != 0:
            raise RuntimeError(f"{study}/{entry['out']}: {' '.join(argv[:4])} ... exited {done.returncode}:\n"
                               + done.stderr.decode("utf-8", "replace")[-2000:])
        result[entry["out"]] = done.stdout if entry.get("stdout") else out.read_bytes()
    figures = {}
    for folder in sorted({entry.get("plots") for entry in tables(study)} - {None}):
        for png in sorted((out_dir / folder).glob("*.png")):
            figures[f"{folder}/{png.name}"] = png.read_bytes()
    return result, figures


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python experiments/regenerate.py", description=__doc__.split("\n")[0])
    parser.add_argument("--write", action="store_true", help="rewrite the committed tables instead of checking them")
    parser.add_argument("--study", action="append", help="one study folder (repeatable; default: every study)")
    args = parser.parse_args(argv)
    names = args.study or studies()
    unknown = sorted(set(names) - set(studies()))
    if unknown:
        parser.exit(2, f"adarank: error: no study {', '.join(unknown)} (studies: {', '.join(studies())})\n")
    differ = []
    for study in names:
        with tempfile.TemporaryDirectory(prefix=f"adarank-{study}-") as tmp:
            built, figures = render(study, Path(tmp))
        if args.write:
            for name, data in figures.items():
                (HERE / study / name).parent.mkdir(parents=True, exist_ok=True)
                _write_atomic(HERE / study / name, data)
        for name, data in built.items():
            path = HERE / study / name
            if args.write:
                _write_atomic(path, data)
                print(f"wrote experiments/{study}/{name}")
            elif not path.is_file() or path.read_bytes() != data:
                differ.append(f"experiments/{study}/{name}")
    if differ:
        print("differ from the records (run python experiments/regenerate.py --write):\n  " + "\n  ".join(differ))
        return 1
    if not args.write:
        print(f"every table of {', '.join(names)} matches its records")
    return 0


if __name__ == "__main__":
    sys.exit(main())
