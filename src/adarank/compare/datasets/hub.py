"""Hugging Face hub datasets (``hf:<id>`` or ``hf:<id>:<config>``) as generation data.

:func:`from_hf_generation` does the conversion from a ``DatasetDict`` in memory, so it works (and is
tested) without the network; :func:`load_hub` only adds the download.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...errors import AdaRankError
from .base import GenerationData
from .files import TEXT_LABEL, Record, examples_from_records, layout, user_dataset
from .splits import Examples


def _split_examples(ds: Any, where: str, prompt_column: str, completion_column: str) -> tuple[Examples, str]:
    """One split's examples; rows whose ClassLabel is ``-1`` (unlabelled, as in GLUE test sets) are dropped."""
    columns = list(ds.column_names)
    kind = layout(columns, where, prompt_column, completion_column)
    used = ("text", "label") if kind == TEXT_LABEL else (prompt_column, completion_column)
    values = {c: list(ds[c]) for c in used}
    feature = ds.features.get("label") if kind == TEXT_LABEL and getattr(ds, "features", None) else None
    names = list(feature.names) if hasattr(feature, "names") and hasattr(feature, "int2str") else None
    records: list[Record] = []
    for i in range(len(values[used[0]])):
        record = {c: values[c][i] for c in used}
        if names is not None:
            label = record["label"]
            if label is None or int(label) < 0:
                continue
            record["label"] = names[int(label)]
        records.append((f"{where} row {i}", record))
    return examples_from_records(records, kind, prompt_column, completion_column), kind


def from_hf_generation(dd: Mapping[str, Any], name: str, prompt_column: str = "prompt",
                       completion_column: str = "completion", *, test_fraction: float = 0.1, seed: int = 0,
                       max_train: int | None = None, max_test: int | None = None) -> GenerationData:
    """A ``datasets.DatasetDict`` (or any mapping of split name -> Dataset) as generation data.

    Uses ``train``, and ``test`` as the test set when it has labelled rows; else a labelled ``validation``
    split; else a seeded ``test_fraction`` split of ``train``. The columns are read as for a local file.
    """
    source = f"Hugging Face dataset {name!r}"
    if "train" not in dd:
        raise AdaRankError(f"{source} has no 'train' split (splits: {', '.join(map(repr, dd)) or 'none'}); pick a "
                           "dataset or configuration with one")
    train, kind = _split_examples(dd["train"], f"{source} split 'train'", prompt_column, completion_column)
    test, split = None, {"kind": "official"}
    for candidate in ("test", "validation"):
        if candidate in dd:
            where = f"{source} split {candidate!r}"
            examples, other = _split_examples(dd[candidate], where, prompt_column, completion_column)
            if other != kind:
                raise AdaRankError(f"{where} has {other} columns but 'train' has {kind} columns; give every split "
                                   "the same columns")
            if len(examples):
                test, split = examples, {"kind": "official", "test_split": candidate}
                break
    return user_dataset(name, source, train, kind, test, split, test_fraction=test_fraction, seed=seed,
                        max_train=max_train, max_test=max_test)


def load_hub(spec: str, prompt_column: str, completion_column: str, **options: Any) -> GenerationData:
    """Download ``spec`` (``<id>`` or ``<id>:<config>``) with the ``datasets`` package and convert it."""
    try:
        import datasets
    except ImportError:
        raise AdaRankError(f"hf:{spec} needs the Hugging Face `datasets` package; `pip install 'adarank[compare]'`") \
            from None
    path, config = spec, None
    if ":" in spec and "://" not in spec:
        path, config = (part.strip() for part in spec.split(":", 1))
    if not path:
        raise AdaRankError("hf: needs a dataset id after it; pass e.g. hf:org/name or hf:org/name:config")
    try:
        dd = datasets.load_dataset(path, config) if config else datasets.load_dataset(path)
    except Exception as exc:  # noqa: BLE001 - any failure to fetch a named dataset is the user's to fix
        detail = " ".join(str(exc).split())[:200]
        raise AdaRankError(f"could not load hf:{spec} as a Hugging Face dataset ({type(exc).__name__}: {detail}); "
                           "check the id, the configuration and the network") from None
    return from_hf_generation(dd, spec, prompt_column, completion_column, **options)
