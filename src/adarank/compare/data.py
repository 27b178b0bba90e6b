"""Text-classification datasets for the fine-tuning benchmark, by name, file path or Hugging Face name.

``load_dataset_spec(spec)`` understands three kinds of ``spec``:

* a built-in NLTK corpus name (``trec`` / ``trec-coarse``, ``trec-fine``, ``mr``, ``subj``), read straight from
  a standard NLTK data directory (``<dir>/corpora/<package>.zip``) with :mod:`zipfile`, without the ``nltk``
  package. ``nltk:<name>`` forces this reading;
* a local ``.csv``, ``.tsv``, ``.jsonl``/``.ndjson`` or ``.json`` file with a text and a label column;
* anything else is a Hugging Face ``datasets`` name (``hf:<name>`` forces this, ``<name>:<config>`` picks a
  configuration, e.g. ``glue:sst2``).

Labels become ids in sorted name order (numbers by value, then other names alphabetically), so the same data
always gives the same ids. When a corpus has no test split, a seeded stratified split is made and written down
in :attr:`TextClassificationData.split`; the example lists keep the source order (the training loop shuffles).
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
import json
import math
import os
import random
import re
import zipfile
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import AdaRankError

NLTK_DOWNLOAD = "python -m nltk.downloader qc sentence_polarity subjectivity conll2000 ppattach rte"
NLTK_CORPORA = ("trec-coarse", "trec-fine", "mr", "subj")
FILE_EXTENSIONS = (".csv", ".tsv", ".jsonl", ".ndjson", ".json")

# Accepted names -> canonical name. The NLTK package names are accepted too.
_NLTK_ALIASES = {
    "trec": "trec-coarse", "trec-coarse": "trec-coarse", "trec6": "trec-coarse", "qc": "trec-coarse",
    "trec-fine": "trec-fine", "trec50": "trec-fine",
    "mr": "mr", "sentence_polarity": "mr", "sentence-polarity": "mr",
    "subj": "subj", "subjectivity": "subj",
}
_NLTK_PACKAGE = {"trec-coarse": "qc", "trec-fine": "qc", "mr": "sentence_polarity", "subj": "subjectivity"}
# For the corpora without a test split: label name -> file inside the zip (found by basename).
_NLTK_CLASS_FILES = {
    "mr": {"neg": "rt-polarity.neg", "pos": "rt-polarity.pos"},
    "subj": {"objective": "plot.tok.gt9.5000", "subjective": "quote.tok.gt9.5000"},
}
# Extensions that name a file we do not read: reported as such instead of being tried as a hub name.
_OTHER_FILE_EXTENSIONS = (".txt", ".parquet", ".arrow", ".xlsx", ".xls", ".gz", ".bz2", ".xz", ".zip", ".pkl",
                          ".pickle", ".npy", ".npz", ".feather", ".h5", ".hdf5", ".tar")
_INT_RE = re.compile(r"[+-]?\d+\Z")


@dataclass
class TextClassificationData:
    """Train and test texts with integer labels; ``label_names[i]`` is the name of label ``i``."""

    name: str
    train_texts: list[str]
    train_labels: list[int]
    test_texts: list[str]
    test_labels: list[int]
    label_names: list[str]
    split: dict

    def __post_init__(self) -> None:
        if len(self.train_texts) != len(self.train_labels) or len(self.test_texts) != len(self.test_labels):
            raise ValueError("texts and labels must have the same length in each split")

    @property
    def num_labels(self) -> int:
        return len(self.label_names)


# --------------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------------


def load_dataset_spec(spec: str | os.PathLike, *, data_dir: str | os.PathLike | None = None,
                      text_column: str = "text", label_column: str = "label", test_file: str | None = None,
                      test_fraction: float = 0.1, split_seed: int = 0,
                      max_train: int | None = None) -> TextClassificationData:
    """Load a text-classification dataset named by ``spec`` (see the module docstring for the forms).

    ``data_dir`` is the NLTK data directory for the built-in corpora (default: each entry of ``$NLTK_DATA``,
    then ``~/nltk_data``). ``text_column``/``label_column`` name the columns of a file or hub dataset;
    ``test_file`` gives a local training file its test set. Without a test set, ``test_fraction`` of the data
    is held out by a stratified split seeded with ``split_seed``. ``max_train`` keeps a stratified, seeded
    subsample of at most that many training examples.
    """
    test_fraction = _check_fraction(test_fraction)
    split_seed = _check_seed(split_seed)
    max_train = _check_max_train(max_train)
    kind, target = _classify_spec(spec)
    if test_file is not None and kind != "file":
        raise AdaRankError(
            f"test_file only works with a local training file, and {str(spec)!r} is a "
            f"{'built-in corpus' if kind == 'nltk' else 'Hugging Face dataset'}; drop test_file"
        )
    common = {"test_fraction": test_fraction, "split_seed": split_seed, "max_train": max_train}
    if kind == "nltk":
        return _load_nltk(target, data_dir, **common)
    if kind == "file":
        return _load_file_dataset(target, str(spec), text_column, label_column, test_file, **common)
    return _load_hf(target, text_column, label_column, **common)


def _classify_spec(spec: str | os.PathLike) -> tuple[str, Any]:
    raw = os.fspath(spec)
    if not isinstance(raw, str) or not raw.strip():
        raise AdaRankError("empty dataset spec; pass trec-coarse, trec-fine, mr, subj, a .csv/.tsv/.jsonl file "
                           "or a Hugging Face dataset name")
    text = raw.strip()
    lower = text.lower()
    if lower.startswith("nltk:"):
        name = lower[len("nltk:"):].strip()
        if name not in _NLTK_ALIASES:
            raise AdaRankError(f"unknown NLTK corpus {name!r}; built-in corpora are {', '.join(NLTK_CORPORA)}"
                               f"{_did_you_mean(name)}")
        return "nltk", _NLTK_ALIASES[name]
    if lower.startswith("hf:"):
        return "hf", text[len("hf:"):].strip()
    if lower in _NLTK_ALIASES:
        return "nltk", _NLTK_ALIASES[lower]
    path = Path(text).expanduser()
    suffix = path.suffix.lower()
    if path.is_file():
        if suffix not in FILE_EXTENSIONS:
            raise AdaRankError(_unsupported_extension(path))
        return "file", path
    if suffix in FILE_EXTENSIONS:
        raise AdaRankError(f"no such file: {text}; check the path (relative paths start from "
                           f"{Path.cwd()})")
    if suffix in _OTHER_FILE_EXTENSIONS:
        raise AdaRankError(_unsupported_extension(path))
    return "hf", text


def is_builtin_corpus(spec: str | os.PathLike) -> bool:
    """Whether ``spec`` names one of the NLTK corpora, the only kind that reads an NLTK data directory."""
    text = os.fspath(spec).strip().lower()
    return text.startswith("nltk:") or text in _NLTK_ALIASES


_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]*(_[A-Za-z0-9.-]+)*\Z")  # no "/", ":" or "__"


def dataset_slug(spec: str | os.PathLike) -> str:
    """A name for ``spec`` that is safe as one part of a file name and of a grid run key.

    Run keys join their parts with ``__`` and name one file in one folder, so a dataset given as
    ``my/data/train.csv`` or ``user/name:config`` cannot appear in them as it is. Built-in corpora
    and other plain names stay unchanged (the committed records' keys). A file becomes its stem plus
    8 hex digits of the hash of its resolved path, so two ``train.csv`` in different folders never
    share a key; any other name is cleaned the same way and hashed as written.
    """
    text = os.fspath(spec).strip()
    path = Path(text).expanduser()
    is_file = path.suffix.lower() in FILE_EXTENSIONS or path.is_file()
    if not is_file and _SAFE_NAME.match(text):
        return text
    identity = str(path.resolve()) if is_file else text
    digest = hashlib.sha256(identity.encode("utf-8")).hexdigest()[:8]
    stem = re.sub(r"_{2,}", "_", re.sub(r"[^A-Za-z0-9._-]+", "-", path.stem if is_file else text)).strip("-._")
    return f"{stem or 'data'}-{digest}"


def _unsupported_extension(path: Path) -> str:
    return (f"unsupported file type {path.suffix or '(no extension)'!r} for {path}; "
            f"save it as {', '.join(FILE_EXTENSIONS)} with a text and a label column")


def _did_you_mean(name: str) -> str:
    close = difflib.get_close_matches(name.lower(), list(_NLTK_ALIASES), n=1, cutoff=0.75)
    return f" (did you mean {_NLTK_ALIASES[close[0]]!r}?)" if close else ""


# --------------------------------------------------------------------------------------------------
# Argument checks
# --------------------------------------------------------------------------------------------------


def _check_fraction(test_fraction: Any) -> float:
    if isinstance(test_fraction, bool):
        test_fraction = None
    try:
        value = float(test_fraction)
    except (TypeError, ValueError):
        raise AdaRankError(f"test_fraction must be a number, got {test_fraction!r}; pass e.g. 0.1") from None
    if not (0.0 < value < 1.0):
        raise AdaRankError(f"test_fraction must be between 0 and 1 (exclusive), got {test_fraction!r}; "
                           "pass e.g. 0.1")
    return value


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) and not (hasattr(seed, "__index__")):
        raise AdaRankError(f"split_seed must be an integer, got {seed!r}; pass e.g. 0")
    return int(seed.__index__())


def _check_max_train(max_train: Any) -> int | None:
    if max_train is None:
        return None
    if isinstance(max_train, bool) or not hasattr(max_train, "__index__") or max_train.__index__() < 1:
        raise AdaRankError(f"max_train must be a positive integer or None, got {max_train!r}; pass e.g. 1000")
    return int(max_train.__index__())


# --------------------------------------------------------------------------------------------------
# Stratified splitting and subsampling
# --------------------------------------------------------------------------------------------------


def _label_sort_key(label: Hashable) -> tuple:
    """Numbers (and names that are integers) by value first, then every other name alphabetically."""
    if isinstance(label, bool):
        return (1, 0, str(label))
    if isinstance(label, int):
        return (0, label, "")
    text = str(label)
    if _INT_RE.match(text.strip()):
        return (0, int(text), text)
    return (1, 0, text)


def sorted_label_names(labels: Sequence[Hashable] | set) -> list:
    """The distinct labels in the order that gives their ids (see :func:`_label_sort_key`)."""
    return sorted(set(labels), key=_label_sort_key)


def _indices_by_class(labels: Sequence[Hashable]) -> dict[Hashable, list[int]]:
    groups: dict[Hashable, list[int]] = {}
    for i, label in enumerate(labels):
        groups.setdefault(label, []).append(i)
    return {c: groups[c] for c in sorted(groups, key=_label_sort_key)}


def _allocate(sizes: list[int], total: int, lo: list[int], hi: list[int]) -> list[int]:
    """Share ``total`` among classes in proportion to ``sizes`` (largest remainder), within ``lo..hi``.

    The sum is exactly ``total`` unless the bounds forbid it; ties go to the earlier class.
    """
    n = sum(sizes)
    quota = [total * s / n if n else 0.0 for s in sizes]
    counts = [min(max(math.floor(q), low), high) for q, low, high in zip(quota, lo, hi)]
    while sum(counts) < total:
        room = [i for i in range(len(sizes)) if counts[i] < hi[i]]
        if not room:
            break
        best = max(room, key=lambda i: (quota[i] - counts[i], -i))
        counts[best] += 1
    while sum(counts) > total:
        room = [i for i in range(len(sizes)) if counts[i] > lo[i]]
        if not room:
            break
        worst = min(room, key=lambda i: (quota[i] - counts[i], i))
        counts[worst] -= 1
    return counts


def stratified_split(labels: Sequence[Hashable], test_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Deterministic stratified split of positions ``0..len(labels)-1`` into ``(train_idx, test_idx)``.

    The test part holds ``round(test_fraction * n)`` examples shared among the classes in proportion to their
    sizes; every class with at least 2 examples has at least one example in each part (a class with a single
    example stays in training). Both index lists are sorted. The same labels, fraction and seed always give
    the same split.
    """
    test_fraction = _check_fraction(test_fraction)
    seed = _check_seed(seed)
    groups = _indices_by_class(labels)
    sizes = [len(g) for g in groups.values()]
    total = math.floor(test_fraction * len(labels) + 0.5)
    lo = [min(1, max(s - 1, 0)) for s in sizes]
    hi = [max(s - 1, 0) for s in sizes]
    counts = _allocate(sizes, total, lo, hi)
    if labels and sum(counts) == 0:
        raise AdaRankError(f"cannot make a test split from {len(labels)} examples: no class has 2 or more "
                           "examples; add data or provide a separate test set")
    rng = random.Random(seed)
    train: list[int] = []
    test: list[int] = []
    for members, k in zip(groups.values(), counts):
        order = list(members)
        rng.shuffle(order)
        test.extend(order[:k])
        train.extend(order[k:])
    return sorted(train), sorted(test)


def hold_out_validation(data: TextClassificationData, fraction: float = 0.1, seed: int = 0) -> TextClassificationData:
    """``data`` with a stratified, seeded ``fraction`` of its training set moved into the evaluation slot.

    For choosing hyper-parameters: a run on the result trains on the rest of the training set and is
    scored on the held-out part, so the test set never takes part in the choice. The test split is
    dropped from the result, and ``split`` records what the evaluation set is.
    """
    fraction = _check_fraction(fraction)
    seed = _check_seed(seed)
    train_idx, val_idx = stratified_split(data.train_labels, fraction, seed)
    return TextClassificationData(
        name=data.name,
        train_texts=[data.train_texts[i] for i in train_idx],
        train_labels=[data.train_labels[i] for i in train_idx],
        test_texts=[data.train_texts[i] for i in val_idx],
        test_labels=[data.train_labels[i] for i in val_idx],
        label_names=list(data.label_names),
        split={**data.split, "evaluated_on": "validation", "validation_fraction": fraction, "validation_seed": seed},
    )


def stratified_subsample(labels: Sequence[Hashable], max_size: int, seed: int) -> list[int]:
    """Sorted positions of a seeded stratified subsample of at most ``max_size`` examples, every class kept."""
    max_size = _check_max_train(max_size)
    seed = _check_seed(seed)
    if max_size >= len(labels):
        return list(range(len(labels)))
    groups = _indices_by_class(labels)
    if max_size < len(groups):
        raise AdaRankError(f"max_train={max_size} is smaller than the {len(groups)} classes, so some class would "
                           f"have no training example; pass max_train >= {len(groups)}")
    sizes = [len(g) for g in groups.values()]
    counts = _allocate(sizes, max_size, [1] * len(sizes), sizes)
    rng = random.Random(f"adarank-subsample-{seed}")
    keep: list[int] = []
    for members, k in zip(groups.values(), counts):
        order = list(members)
        rng.shuffle(order)
        keep.extend(order[:k])
    return sorted(keep)


# --------------------------------------------------------------------------------------------------
# Assembling the result
# --------------------------------------------------------------------------------------------------


def _assemble(name: str, source: str, train_texts: list[str], train_names: list[str],
              test: tuple[list[str], list[str]] | None, official: dict | None, *, test_fraction: float,
              split_seed: int, max_train: int | None) -> TextClassificationData:
    """Check the examples, split when there is no test set, subsample, and map label names to ids."""
    if not train_texts:
        raise AdaRankError(f"{source} has no examples with non-empty text; check the file and the text column")
    classes = sorted_label_names(train_names)
    if len(classes) < 2:
        raise AdaRankError(f"{source} has a single class ({classes[0]!r}) in its training data; a classifier needs "
                           "at least two, check the label column")
    if test is None:
        train_idx, test_idx = stratified_split(train_names, test_fraction, split_seed)
        test_texts = [train_texts[i] for i in test_idx]
        test_names = [train_names[i] for i in test_idx]
        train_texts = [train_texts[i] for i in train_idx]
        train_names = [train_names[i] for i in train_idx]
        split: dict = {"kind": "stratified", "test_fraction": test_fraction, "seed": split_seed}
    else:
        test_texts, test_names = test
        if not test_texts:
            raise AdaRankError(f"the test set of {source} has no examples with non-empty text; check it")
        unseen = sorted_label_names(set(test_names) - set(classes))
        if unseen:
            shown = ", ".join(repr(u) for u in unseen[:10]) + (", ..." if len(unseen) > 10 else "")
            raise AdaRankError(f"test labels not seen in training in {source}: {shown}; add training examples of "
                               "them or drop them from the test set")
        split = {"kind": "official", **(official or {})}
    if max_train is not None:
        keep = stratified_subsample(train_names, max_train, split_seed)
        train_texts = [train_texts[i] for i in keep]
        train_names = [train_names[i] for i in keep]
        split["max_train"] = max_train
        split["subsample_seed"] = split_seed
    ids = {c: i for i, c in enumerate(classes)}
    return TextClassificationData(
        name=name,
        train_texts=list(train_texts),
        train_labels=[ids[c] for c in train_names],
        test_texts=list(test_texts),
        test_labels=[ids[c] for c in test_names],
        label_names=[str(c) for c in classes],
        split=split,
    )


def _label_name(value: Any, where: str) -> str | None:
    """A label value as its class name; ``None`` for a missing label."""
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int) or hasattr(value, "__index__") and not isinstance(value, str):
        return str(value.__index__())
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, str):
        value = value.strip()
        return value or None
    raise AdaRankError(f"{where}: label {value!r} is not a single class name or number; use one label per example")


def _text_value(value: Any, where: str) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise AdaRankError(f"{where}: text {value!r} is not a string; point text_column at the column with the text")


# --------------------------------------------------------------------------------------------------
# NLTK corpora
# --------------------------------------------------------------------------------------------------


def nltk_data_dirs(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """Where the built-in corpora are looked for: ``data_dir``, else ``$NLTK_DATA`` entries then ``~/nltk_data``."""
    if data_dir is not None:
        return [Path(data_dir).expanduser()]
    dirs = [Path(p).expanduser() for p in os.environ.get("NLTK_DATA", "").split(os.pathsep) if p.strip()]
    home = Path("~/nltk_data").expanduser()
    return dirs + ([home] if home not in dirs else [])


def read_corpus_members(package: str, wanted: list[str], data_dir: str | os.PathLike | None) -> dict[str, bytes]:
    """The files named in ``wanted`` (basenames) from ``<dir>/corpora/<package>.zip`` or its unzipped folder."""
    looked: list[str] = []
    for root in nltk_data_dirs(data_dir):
        for folder in (root / "corpora", root):
            archive = folder / f"{package}.zip"
            looked.append(str(folder))
            if archive.is_file():
                return _members_from_zip(archive, wanted)
            if (folder / package).is_dir():
                return _members_from_folder(folder / package, wanted)
    raise AdaRankError(f"NLTK corpus {package!r} not found (looked for {package}.zip in {', '.join(looked)}); "
                       f"run `{NLTK_DOWNLOAD}` or pass data_dir=<your nltk_data folder>")


def _members_from_zip(archive: Path, wanted: list[str]) -> dict[str, bytes]:
    try:
        with zipfile.ZipFile(archive) as zf:
            by_base: dict[str, zipfile.ZipInfo] = {}
            for info in sorted(zf.infolist(), key=lambda i: i.filename):
                if not info.is_dir():
                    by_base.setdefault(info.filename.rsplit("/", 1)[-1], info)
            missing = [w for w in wanted if w not in by_base]
            if missing:
                raise AdaRankError(f"{archive} has no file named {', '.join(missing)}; it is not the NLTK corpus "
                                   f"expected, re-download it with `{NLTK_DOWNLOAD}`")
            return {w: zf.read(by_base[w]) for w in wanted}
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise AdaRankError(f"cannot read {archive} as a zip file ({exc}); re-download it with `{NLTK_DOWNLOAD}`") \
            from None


def _members_from_folder(folder: Path, wanted: list[str]) -> dict[str, bytes]:
    out = {}
    for w in wanted:
        hits = sorted(p for p in folder.rglob(w) if p.is_file())
        if not hits:
            raise AdaRankError(f"{folder} has no file named {w}; re-download the corpus with `{NLTK_DOWNLOAD}`")
        out[w] = hits[0].read_bytes()
    return out


def _lines(data: bytes, *, encoding: str | None = None) -> list[str]:
    """Stripped non-empty lines; UTF-8 with a Latin-1 fallback unless ``encoding`` is given.

    Lines are split on bytes first, so that a decoded Latin-1 byte such as 0x85 never splits a line.
    """
    if encoding is None:
        try:
            data.decode("utf-8")
            encoding = "utf-8"
        except UnicodeDecodeError:
            encoding = "latin-1"
    decoded = (raw.decode(encoding).strip() for raw in data.splitlines())
    return [line for line in decoded if line]


def _parse_trec(data: bytes, member: str, fine: bool) -> tuple[list[str], list[str]]:
    texts: list[str] = []
    labels: list[str] = []
    for lineno, line in enumerate(_lines(data, encoding="latin-1"), 1):
        head, *rest = line.split(None, 1)
        coarse, colon, detail = head.partition(":")
        if not colon or not coarse or not detail:
            raise AdaRankError(f"{member} line {lineno} is not 'COARSE:fine question' ({line[:60]!r}); "
                               f"re-download the corpus with `{NLTK_DOWNLOAD}`")
        text = rest[0].strip() if rest else ""
        if text:
            texts.append(text)
            labels.append(head if fine else coarse)
    return texts, labels


def _load_nltk(name: str, data_dir: str | os.PathLike | None, *, test_fraction: float, split_seed: int,
               max_train: int | None) -> TextClassificationData:
    package = _NLTK_PACKAGE[name]
    opts = {"test_fraction": test_fraction, "split_seed": split_seed, "max_train": max_train}
    if name in ("trec-coarse", "trec-fine"):
        files = read_corpus_members(package, ["train.txt", "test.txt"], data_dir)
        fine = name == "trec-fine"
        train = _parse_trec(files["train.txt"], "qc/train.txt", fine)
        test = _parse_trec(files["test.txt"], "qc/test.txt", fine)
        return _assemble(name, f"NLTK corpus {package!r}", *train, test, None, **opts)
    class_files = _NLTK_CLASS_FILES[name]
    files = read_corpus_members(package, list(class_files.values()), data_dir)
    texts: list[str] = []
    labels: list[str] = []
    for label in sorted_label_names(class_files):
        lines = _lines(files[class_files[label]])
        texts.extend(lines)
        labels.extend([label] * len(lines))
    return _assemble(name, f"NLTK corpus {package!r}", texts, labels, None, None, **opts)


# --------------------------------------------------------------------------------------------------
# Local files
# --------------------------------------------------------------------------------------------------


def _decode_file(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise AdaRankError(f"cannot read {path}: {exc.strerror or exc}; check the path and its permissions") \
            from None
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError:
            raise AdaRankError(f"{path} starts like UTF-16 text but does not decode; re-save it as UTF-8") from None
    if b"\x00" in raw[:65536]:
        raise AdaRankError(f"{path} looks like a binary file (it contains NUL bytes), not "
                           f"{path.suffix.lstrip('.').upper()} text; pass a UTF-8 text file")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        bad = raw[exc.start:exc.start + 1].hex()
        line = raw.count(b"\n", 0, exc.start) + 1
        raise AdaRankError(f"{path} is not UTF-8 text (byte 0x{bad} on line {line}); re-save it as UTF-8") from None


def read_records(path: Path) -> tuple[list[str], list[tuple[str, Mapping]]]:
    """Column names and ``(where, record)`` pairs of a CSV, TSV, JSON-lines or JSON-array file."""
    text = _decode_file(path)
    if not text.strip():
        raise AdaRankError(f"{path} is empty; pass a file with a header (or JSON records) and at least one row")
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        return _read_delimited(text, path, "," if suffix == ".csv" else "\t")
    if suffix == ".json" and text.lstrip().startswith("["):
        return _read_json_array(text, path)
    return _read_json_lines(text, path)


def _read_delimited(text: str, path: Path, delimiter: str) -> tuple[list[str], list[tuple[str, Mapping]]]:
    # TSV is read without quote handling: tab-separated files rarely quote, and their texts often start with '"'.
    quoting = csv.QUOTE_MINIMAL if delimiter == "," else csv.QUOTE_NONE
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quoting=quoting)
    records: list[tuple[str, Mapping]] = []
    try:
        header: list[str] | None = None
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            if header is None:
                header = [cell.strip() for cell in row]
                continue
            records.append((f"{path} line {reader.line_num}", dict(zip(header, row))))
    except csv.Error as exc:
        raise AdaRankError(f"{path} line {reader.line_num} is not valid {'CSV' if delimiter == ',' else 'TSV'} "
                           f"({exc}); fix the quoting on that line") from None
    return header or [], records


def _read_json_lines(text: str, path: Path) -> tuple[list[str], list[tuple[str, Mapping]]]:
    records: list[tuple[str, Mapping]] = []
    columns: dict[str, None] = {}
    for lineno, line in enumerate(text.split("\n"), 1):
        line = line.strip()
        if not line:
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise AdaRankError(f"{path} line {lineno} is not valid JSON ({exc.msg}); write one JSON object per "
                               "line") from None
        if not isinstance(record, dict):
            raise AdaRankError(f"{path} line {lineno} is a JSON {type(record).__name__}, not an object; write one "
                               "object like {\"text\": ..., \"label\": ...} per line")
        columns.update(dict.fromkeys(record))
        records.append((f"{path} line {lineno}", record))
    return list(columns), records


def _read_json_array(text: str, path: Path) -> tuple[list[str], list[tuple[str, Mapping]]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AdaRankError(f"{path} is not valid JSON ({exc.msg} on line {exc.lineno}); fix it or write JSON "
                           "lines") from None
    columns: dict[str, None] = {}
    records: list[tuple[str, Mapping]] = []
    for i, record in enumerate(data, 1):
        if not isinstance(record, dict):
            raise AdaRankError(f"{path} record {i} is a JSON {type(record).__name__}, not an object; pass a list "
                               "of objects like {\"text\": ..., \"label\": ...}")
        columns.update(dict.fromkeys(record))
        records.append((f"{path} record {i}", record))
    return list(columns), records


def _check_columns(columns: list[str], where: str, text_column: str, label_column: str) -> None:
    for role, column in (("text", text_column), ("label", label_column)):
        if column not in columns:
            have = ", ".join(repr(c) for c in columns) if columns else "none"
            raise AdaRankError(f"{where} has no {role} column {column!r} (columns: {have}); pass "
                               f"{role}_column=<one of them>")


def _file_examples(path: Path, text_column: str, label_column: str) -> tuple[list[str], list[str]]:
    columns, records = read_records(path)
    if not records:
        raise AdaRankError(f"{path} has no data rows; pass a file with at least one example")
    _check_columns(columns, str(path), text_column, label_column)
    texts: list[str] = []
    labels: list[str] = []
    for where, record in records:
        text = _text_value(record.get(text_column), where)
        if not text:
            continue
        label = _label_name(record.get(label_column), where)
        if label is None:
            raise AdaRankError(f"{where} has text but no value in label column {label_column!r}; give every "
                               "example a label or remove the row")
        texts.append(text)
        labels.append(label)
    return texts, labels


def _load_file_dataset(path: Path, name: str, text_column: str, label_column: str, test_file: str | None, *,
                       test_fraction: float, split_seed: int, max_train: int | None) -> TextClassificationData:
    train = _file_examples(path, text_column, label_column)
    test = official = None
    if test_file is not None:
        test_path = Path(test_file).expanduser()
        if not test_path.is_file():
            raise AdaRankError(f"no such test file: {test_file}; check the path")
        if test_path.suffix.lower() not in FILE_EXTENSIONS:
            raise AdaRankError(_unsupported_extension(test_path))
        test = _file_examples(test_path, text_column, label_column)
        official = {"test_file": str(test_file)}
    return _assemble(name, str(path), *train, test, official, test_fraction=test_fraction, split_seed=split_seed,
                     max_train=max_train)


# --------------------------------------------------------------------------------------------------
# Hugging Face datasets
# --------------------------------------------------------------------------------------------------


def _load_hf(spec: str, text_column: str, label_column: str, *, test_fraction: float, split_seed: int,
             max_train: int | None) -> TextClassificationData:
    try:
        import datasets
    except ImportError:
        raise AdaRankError(f"{spec!r} is not a built-in corpus or a local file, and the Hugging Face `datasets` "
                           "package is missing; `pip install 'adarank[compare]'`") from None
    path, config = spec, None
    if ":" in spec and "://" not in spec:
        path, config = (part.strip() for part in spec.split(":", 1))
    try:
        dd = datasets.load_dataset(path, config) if config else datasets.load_dataset(path)
    except Exception as exc:  # noqa: BLE001 - any failure to fetch a named dataset is the user's to fix
        detail = " ".join(str(exc).split())[:200]
        raise AdaRankError(
            f"could not load {spec!r} as a Hugging Face dataset ({type(exc).__name__}: {detail}){_did_you_mean(spec)}; "
            f"built-in corpora are {', '.join(NLTK_CORPORA)}, local files must end in {', '.join(FILE_EXTENSIONS)}"
        ) from None
    return from_hf_dataset_dict(dd, spec, text_column, label_column, test_fraction=test_fraction,
                                split_seed=split_seed, max_train=max_train)


def _hf_examples(ds: Any, where: str, text_column: str, label_column: str) -> tuple[list[str], list[str]]:
    """Texts and label names of one split; rows without a label (``None`` or ClassLabel ``-1``) are dropped."""
    columns = list(ds.column_names)
    _check_columns(columns, where, text_column, label_column)
    feature = ds.features[label_column] if getattr(ds, "features", None) else None
    class_names = list(feature.names) if hasattr(feature, "names") and hasattr(feature, "int2str") else None
    texts: list[str] = []
    labels: list[str] = []
    for i, (raw_text, raw_label) in enumerate(zip(ds[text_column], ds[label_column])):
        row = f"{where} row {i}"
        text = _text_value(raw_text, row)
        if not text:
            continue
        if class_names is not None:
            if raw_label is None or int(raw_label) < 0:
                continue
            label = class_names[int(raw_label)]
        else:
            label = _label_name(raw_label, row)
            if label is None:
                continue
        texts.append(text)
        labels.append(label)
    return texts, labels


def from_hf_dataset_dict(dd: Mapping[str, Any], name: str, text_column: str = "text", label_column: str = "label",
                         *, test_fraction: float = 0.1, split_seed: int = 0,
                         max_train: int | None = None) -> TextClassificationData:
    """Turn a ``datasets.DatasetDict`` (or any mapping of split name -> Dataset) into a dataset.

    Uses the ``train`` split, and the ``test`` split as the test set when it has labels; when ``test`` is
    missing or unlabelled (GLUE-style ``-1`` labels), a labelled ``validation`` split stands in, and failing that
    a stratified split of ``train`` is made. ClassLabel columns give their class names, which are then sorted
    like every other label set (so ids may differ from the dataset's own ids).
    """
    test_fraction = _check_fraction(test_fraction)
    split_seed = _check_seed(split_seed)
    max_train = _check_max_train(max_train)
    splits = list(dd.keys())
    if "train" not in dd:
        raise AdaRankError(f"Hugging Face dataset {name!r} has no 'train' split (splits: "
                           f"{', '.join(map(repr, splits)) or 'none'}); pick a dataset or configuration with one")
    source = f"Hugging Face dataset {name!r}"
    train = _hf_examples(dd["train"], f"{source} split 'train'", text_column, label_column)
    test = official = None
    for candidate in ("test", "validation"):
        if candidate in dd:
            examples = _hf_examples(dd[candidate], f"{source} split {candidate!r}", text_column, label_column)
            if examples[0]:
                test, official = examples, {"test_split": candidate}
                break
    return _assemble(name, source, *train, test, official, test_fraction=test_fraction, split_seed=split_seed,
                     max_train=max_train)
