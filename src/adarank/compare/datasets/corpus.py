"""Reading a member of an NLTK corpus as text lines, for the built-ins that have no classification form."""

from __future__ import annotations

from ..data import read_corpus_members
from .registry import DataDir


def corpus_lines(package: str, member: str, data_dir: DataDir) -> list[str]:
    """The stripped lines of ``member`` (a basename) of NLTK corpus ``package``, blank lines kept.

    UTF-8, with a Latin-1 fallback for the old corpora that hold a few Latin-1 bytes; lines are split on
    bytes first, so that a decoded Latin-1 byte such as 0x85 never splits a line.
    """
    raw = read_corpus_members(package, [member], data_dir)[member]
    try:
        raw.decode("utf-8")
        encoding = "utf-8"
    except UnicodeDecodeError:
        encoding = "latin-1"
    return [line.decode(encoding).strip() for line in raw.splitlines()]
