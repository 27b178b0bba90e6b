"""A study's raw records as one gzipped JSON-lines file, lossless and byte-exact.

A study writes thousands of small files (one JSON record per fine-tuning run, sweep points, plans, logs). Kept
loose they swamp the repository; packed, each study has one ``records.jsonl.gz`` whose lines are
``{"path": <path relative to the study's results root>, "text": <the file's content>}``, or ``"base64"`` in place
of ``"text"`` for a file that is not UTF-8 (a PNG). Lines are sorted by path and the gzip header carries no
timestamp, so packing the same tree twice gives the same bytes.

    python experiments/archive.py pack SRC_DIR ARCHIVE [--prefix P]   (adds SRC_DIR's files under P/)
    python experiments/archive.py unpack ARCHIVE DST_DIR
"""

from __future__ import annotations

import argparse
import base64
import gzip
import io
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path


def read_archive(archive: Path) -> Iterator[tuple[str, bytes]]:
    """Every (relative path, content) pair of ARCHIVE, in the order stored."""
    with gzip.open(archive, "rt", encoding="utf-8") as fh:
        for line in fh:
            entry = json.loads(line)
            if "text" in entry:
                yield entry["path"], entry["text"].encode("utf-8")
            else:
                yield entry["path"], base64.b64decode(entry["base64"])


def _safe_relative(path: str) -> Path:
    """An archive path as a relative path that cannot leave the folder it is unpacked into."""
    rel = Path(path)
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise ValueError(f"archive path {path!r} is not a plain relative path")
    return rel


def unpack(archive: Path, dst: Path) -> int:
    """Write every file of ARCHIVE under DST (created if needed); returns how many were written."""
    count = 0
    for path, data in read_archive(archive):
        target = dst / _safe_relative(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        count += 1
    return count


def _entry(path: str, data: bytes) -> str:
    try:
        return json.dumps({"path": path, "text": data.decode("utf-8")}, ensure_ascii=False)
    except UnicodeDecodeError:
        return json.dumps({"path": path, "base64": base64.b64encode(data).decode("ascii")})


def pack(files: dict[str, bytes], archive: Path) -> None:
    """Write FILES (relative path -> content) to ARCHIVE, sorted by path, atomically and reproducibly."""
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, compresslevel=9) as gz:
        for path in sorted(files):
            _safe_relative(path)
            gz.write((_entry(path, files[path]) + "\n").encode("utf-8"))
    archive.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=archive.parent, prefix=archive.name, suffix=".tmp")
    with os.fdopen(fd, "wb") as fh:
        fh.write(buf.getvalue())
    os.chmod(tmp, 0o644)
    os.replace(tmp, archive)


def tree(src: Path, prefix: str = "") -> dict[str, bytes]:
    """Every file under SRC as (PREFIX/relative path -> content)."""
    out = {}
    for file in sorted(p for p in src.rglob("*") if p.is_file()):
        rel = file.relative_to(src).as_posix()
        out[f"{prefix}/{rel}" if prefix else rel] = file.read_bytes()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python experiments/archive.py", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack", help="add a folder's files to an archive (created or extended)")
    p.add_argument("src", type=Path)
    p.add_argument("archive", type=Path)
    p.add_argument("--prefix", default="", help="folder name the files get inside the archive")
    u = sub.add_parser("unpack", help="write an archive's files into a folder")
    u.add_argument("archive", type=Path)
    u.add_argument("dst", type=Path)
    args = parser.parse_args(argv)
    if args.cmd == "pack":
        if not args.src.is_dir():
            parser.exit(2, f"adarank: error: {args.src} is not a folder\n")
        files = dict(read_archive(args.archive)) if args.archive.exists() else {}
        files.update(tree(args.src, args.prefix.strip("/")))
        pack(files, args.archive)
        print(f"{args.archive}: {len(files)} files")
    else:
        if not args.archive.is_file():
            parser.exit(2, f"adarank: error: no archive at {args.archive}\n")
        print(f"{unpack(args.archive, args.dst)} files written to {args.dst}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
