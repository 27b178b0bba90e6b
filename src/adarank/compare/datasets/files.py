"""User (prompt, completion) data: rows of a local file or of a hub dataset, checked one by one.

Two layouts are understood:

* ``prompt`` / ``completion`` columns (names configurable): used exactly as written, whitespace included,
  since where a space sits decides how the completion tokenizes;
* ``text`` / ``label`` columns: a classification set, turned into ``text + "\\nLabel:"`` -> ``" " + label``
  and stratified by label.

Every value must be a string (a label may also be an integer): a null never becomes the text "None".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ...errors import AdaRankError
from ..data import FILE_EXTENSIONS, read_records
from .base import GenerationData
from .splits import Examples, assemble, split_off_test

PROMPT_COMPLETION = "prompt-completion"
TEXT_LABEL = "text-label"
LABEL_CUE = "\nLabel:"

Record = tuple[str, Mapping[str, Any]]


def unsupported_file(path: Path) -> str:
    """Why a file of this type is refused, and how to get a readable one."""
    what = f"unsupported file type {path.suffix or '(no extension)'!r} for {path}"
    if path.suffix.lower() == ".parquet":
        return (f"{what}: Parquet files are not read directly; convert it to JSON lines first, e.g. python -c "
                f"\"import pandas as pd; pd.read_parquet('{path}').to_json('{path.with_suffix('.jsonl')}', "
                "orient='records', lines=True)\"")
    return (f"{what}; save it as {', '.join(FILE_EXTENSIONS)} with prompt and completion (or text and label) "
            "columns")


def layout(columns: Sequence[str], source: str, prompt_column: str, completion_column: str) -> str:
    """Which of the two layouts the columns hold; an error naming the columns found when it is neither."""
    if prompt_column in columns and completion_column in columns:
        return PROMPT_COMPLETION
    if "text" in columns and "label" in columns:
        return TEXT_LABEL
    missing = [c for c in (prompt_column, completion_column) if c not in columns]
    have = ", ".join(repr(c) for c in columns) if columns else "none"
    raise AdaRankError(f"{source} has no {' or '.join(repr(c) for c in missing)} column (columns: {have}); pass "
                       "prompt_column= and completion_column= naming two of them, or use 'text' and 'label' "
                       "columns")


def _string(value: Any, where: str, column: str, role: str) -> str:
    if value is None:
        raise AdaRankError(f"{where}: the {role} ({column!r}) is missing or null; give every row a {role} or "
                           "remove the row")
    if not isinstance(value, str):
        raise AdaRankError(f"{where}: the {role} ({column!r}) is a {type(value).__name__} ({value!r:.40}), not a "
                           f"string; write it as a JSON string")
    if not value.strip():
        raise AdaRankError(f"{where}: the {role} ({column!r}) is empty; give every row a non-empty {role} or "
                           "remove the row")
    return value


def _label(value: Any, where: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return _string(value, where, "label", "label").strip()


def examples_from_records(records: Sequence[Record], kind: str, prompt_column: str,
                          completion_column: str) -> Examples:
    """The rows as examples, in order; the first bad value stops with the row that holds it."""
    if kind == PROMPT_COMPLETION:
        out = Examples([], [])
        for where, record in records:
            out.prompts.append(_string(record.get(prompt_column), where, prompt_column, "prompt"))
            out.completions.append(_string(record.get(completion_column), where, completion_column, "completion"))
        return out
    out = Examples([], [], [])
    for where, record in records:
        text = _string(record.get("text"), where, "text", "text").strip()
        label = _label(record.get("label"), where)
        out.prompts.append(text + LABEL_CUE)
        out.completions.append(" " + label)
        out.strata.append(label)
    return out


def read_file(path: Path, prompt_column: str, completion_column: str) -> tuple[Examples, str]:
    """The examples of one local file and its layout."""
    suffix = path.suffix.lower()
    if suffix not in FILE_EXTENSIONS:
        raise AdaRankError(unsupported_file(path))
    columns, records = read_records(path)
    if not records:
        raise AdaRankError(f"{path} has no data rows; pass a file with at least one example")
    kind = layout(columns, str(path), prompt_column, completion_column)
    return examples_from_records(records, kind, prompt_column, completion_column), kind


def user_dataset(name: str, source: str, train: Examples, kind: str, test: Examples | None, split: dict, *,
                 test_fraction: float, seed: int, max_train: int | None,
                 max_test: int | None) -> GenerationData:
    """User examples as a dataset: ``test`` when given, else a seeded ``test_fraction`` split of ``train``.

    The split is stratified by label for a text/label set and plain random otherwise. Scored by exact match
    of the answer line; a caller wanting another metric replaces ``metric``.
    """
    split = {**split, "source": source, "format": kind}
    if test is None:
        if len(train) < 2:
            raise AdaRankError(f"{source} has {len(train)} example(s), too few to split off a test set; add "
                               "examples or pass test_file=")
        train, test = split_off_test(train, test_fraction, seed)
        split.update(kind="stratified" if train.strata is not None else "random", test_fraction=test_fraction,
                     seed=seed)
    return assemble(name, train, test, metric="exact_match", split=split, max_train=max_train, max_test=max_test,
                    seed=seed)
