"""``load_generation_spec``: one entry point for built-in names, local files and ``hf:`` hub ids."""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any

from ...errors import AdaRankError
from ..data import FILE_EXTENSIONS
from .base import GenerationData
from .files import read_file, unsupported_file, user_dataset
from .hub import load_hub
from .registry import DATASETS, DataDir, resolve
from .splits import check_count, check_fraction, check_seed

DEFAULT_TEST_FRACTION = 0.1
_NOT_READ = (".parquet", ".txt", ".arrow", ".xlsx", ".xls", ".gz", ".zip", ".pkl", ".feather")


def load_generation_spec(spec: str | os.PathLike, *, data_dir: DataDir = None, max_train: int | None = None,
                         max_test: int | None = None, seed: int = 0,
                         test_fraction: float = DEFAULT_TEST_FRACTION, prompt_column: str = "prompt",
                         completion_column: str = "completion", test_file: str | os.PathLike | None = None,
                         chat_template: bool = False) -> GenerationData:
    """Load the generation dataset ``spec`` names.

    ``spec`` is a name of :data:`DATASETS` (read from the NLTK data directory ``data_dir``), a local
    ``.jsonl`` / ``.ndjson`` / ``.csv`` / ``.tsv`` / ``.json`` file, or ``hf:<id>[:<config>]``. A file or hub
    dataset is split by ``test_fraction`` (seeded by ``seed``) unless ``test_file`` (for a file) or its own
    test split gives the test set; built-ins have fixed splits, so the file-only options are refused for them
    rather than ignored. ``max_train`` / ``max_test`` keep seeded subsamples, stratified where the data has
    classes. ``chat_template`` asks the trainer to wrap prompts in the tokenizer's chat template; it is
    recorded as ``split["chat_template"]``.
    """
    max_train = check_count(max_train, "max_train")
    max_test = check_count(max_test, "max_test")
    seed = check_seed(seed)
    test_fraction = check_fraction(test_fraction, "test_fraction")
    if not isinstance(chat_template, bool):
        raise AdaRankError(f"chat_template must be True or False, got {chat_template!r}")
    for option, value in (("prompt_column", prompt_column), ("completion_column", completion_column)):
        if not isinstance(value, str) or not value:
            raise AdaRankError(f"{option} must be a column name, got {value!r}")
    kind, target = _classify(spec)
    subsample = {"max_train": max_train, "max_test": max_test, "seed": seed}
    if kind == "builtin":
        _refuse_file_options(target, test_fraction, prompt_column, completion_column, test_file)
        data = DATASETS[target].load_generation(data_dir, **subsample)
    elif kind == "hub":
        if test_file is not None:
            raise AdaRankError(f"test_file only works with a local training file, and hf:{target} is a hub "
                               "dataset; drop test_file")
        data = load_hub(target, prompt_column, completion_column, test_fraction=test_fraction, **subsample)
    else:
        data = _load_file(target, prompt_column, completion_column, test_file, test_fraction, **subsample)
    data.split["chat_template"] = chat_template
    return data


def _classify(spec: str | os.PathLike) -> tuple[str, Any]:
    text = os.fspath(spec).strip() if isinstance(spec, (str, os.PathLike)) else ""
    if not text:
        raise AdaRankError(f"empty dataset spec; pass one of {', '.join(DATASETS)}, a "
                           f"{'/'.join(FILE_EXTENSIONS)} file or hf:<dataset id>")
    builtin = resolve(text)
    if builtin is not None:
        return "builtin", builtin
    if text.lower().startswith("hf:"):
        return "hub", text[3:].strip()
    path = Path(text).expanduser()
    suffix = path.suffix.lower()
    if path.is_file():
        if suffix not in FILE_EXTENSIONS:
            raise AdaRankError(unsupported_file(path))
        return "file", path
    if suffix in FILE_EXTENSIONS or suffix in _NOT_READ:
        raise AdaRankError(f"no such file: {text}; check the path (relative paths start from {Path.cwd()})")
    close = difflib.get_close_matches(text.lower(), list(DATASETS), n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise AdaRankError(f"unknown dataset {text!r}{hint}; pass one of {', '.join(DATASETS)}, a path to a "
                       f"{'/'.join(FILE_EXTENSIONS)} file, or hf:<id> for a Hugging Face dataset")


def _refuse_file_options(name: str, test_fraction: float, prompt_column: str, completion_column: str,
                         test_file: Any) -> None:
    given = [option for option, changed in (
        ("test_file", test_file is not None), ("test_fraction", test_fraction != DEFAULT_TEST_FRACTION),
        ("prompt_column", prompt_column != "prompt"), ("completion_column", completion_column != "completion"),
    ) if changed]
    if given:
        raise AdaRankError(f"{', '.join(given)} only apply to a file or hub dataset, and {name!r} is a built-in "
                           "with a fixed split and prompt format; drop them")


def _load_file(path: Path, prompt_column: str, completion_column: str, test_file: str | os.PathLike | None,
               test_fraction: float, **subsample: Any) -> GenerationData:
    train, kind = read_file(path, prompt_column, completion_column)
    test, split = None, {}
    if test_file is not None:
        test_path = Path(test_file).expanduser()
        if not test_path.is_file():
            raise AdaRankError(f"no such test file: {os.fspath(test_file)}; check the path")
        test, test_kind = read_file(test_path, prompt_column, completion_column)
        if test_kind != kind:
            raise AdaRankError(f"{test_path} has {test_kind} columns but {path} has {kind} columns; give both files "
                               "the same columns")
        split = {"kind": "test_file", "test_file": str(test_path)}
    return user_dataset(path.stem, str(path), train, kind, test, split, test_fraction=test_fraction, **subsample)
