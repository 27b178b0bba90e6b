"""The built-in generation datasets by name: what each is, how to load it, and its classification twin."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Protocol

from ...errors import AdaRankError
from ..data import TextClassificationData, load_dataset_spec
from .base import GenerationData

DataDir = str | os.PathLike | None


class GenerationLoader(Protocol):
    """What every built-in provides: seeded subsamples of at most ``max_train`` / ``max_test`` examples."""

    def __call__(self, data_dir: DataDir, *, max_train: int | None, max_test: int | None,
                 seed: int) -> GenerationData: ...


@dataclass(frozen=True)
class DatasetEntry:
    """One built-in dataset.

    ``classification`` is the spec :func:`adarank.compare.data.load_dataset_spec` reads for the same corpus
    as a classification task (``None`` when it has none), so a harness can list both kinds of task and
    evaluate them on the same sentences.
    """

    name: str
    help: str
    load_generation: GenerationLoader
    classification: str | None = None
    aliases: tuple[str, ...] = ()

    def load_classification(self, data_dir: DataDir = None, *, max_train: int | None = None,
                            seed: int = 0) -> TextClassificationData:
        """This corpus as a classification dataset, split and subsampled with the same seed as its generation form."""
        if self.classification is None:
            raise AdaRankError(f"dataset {self.name!r} has no classification form; use it as a generation task")
        return load_dataset_spec(self.classification, data_dir=data_dir, split_seed=seed, max_train=max_train)


DATASETS: dict[str, DatasetEntry] = {}


def register(entry: DatasetEntry) -> DatasetEntry:
    """Make ``entry`` loadable by its name and aliases; a name or alias already taken is a bug, so it raises."""
    for name in (entry.name, *entry.aliases):
        if name in DATASETS or resolve(name) is not None:
            raise ValueError(f"a dataset named {name!r} is already registered")
    DATASETS[entry.name] = entry
    return entry


def resolve(name: str) -> str | None:
    """The registered name that ``name`` (any case, or an alias such as ``trec``) stands for, if any."""
    key = name.strip().lower()
    if key in DATASETS:
        return key
    return next((entry.name for entry in DATASETS.values() if key in entry.aliases), None)
