"""Generation forms of the classification corpora (TREC, MR, SUBJ): a prompt ending in a cue, a label word.

They are built from :func:`adarank.compare.data.load_dataset_spec`'s result for the same corpus and seed, so
the generation and classification forms train and test on exactly the same sentences.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..data import TextClassificationData, load_dataset_spec
from .base import GenerationData
from .registry import DataDir, DatasetEntry, register
from .splits import Examples, assemble


def label_examples(texts: list[str], labels: list[int], label_names: list[str], prompt: str,
                   words: Mapping[str, str]) -> Examples:
    """``prompt.format(text=...)`` -> ``" " + word``; the strata are the words, so they sort like the labels."""
    said = [words.get(name, name) for name in label_names]
    strata = [said[label] for label in labels]
    return Examples([prompt.format(text=t) for t in texts], [" " + w for w in strata], strata)


def register_label_corpus(name: str, help: str, prompt: str, words: Mapping[str, str] | None = None,
                          aliases: tuple[str, ...] = ()) -> DatasetEntry:
    """Register corpus ``name`` of data.py as a generation dataset scored by exact match of its label word.

    ``words`` renames label names (``pos`` -> ``positive``); the renaming must keep their sorted order, so
    that stratified subsamples pick the same sentences as the classification form does.
    """
    words = dict(words or {})

    def load(data_dir: DataDir = None, *, max_train: int | None = None, max_test: int | None = None,
             seed: int = 0) -> GenerationData:
        data: TextClassificationData = load_dataset_spec(name, data_dir=data_dir, split_seed=seed)
        train = label_examples(data.train_texts, data.train_labels, data.label_names, prompt, words)
        test = label_examples(data.test_texts, data.test_labels, data.label_names, prompt, words)
        return assemble(name, train, test, metric="exact_match", split=data.split, max_train=max_train,
                        max_test=max_test, seed=seed)

    return register(DatasetEntry(name, help, load, classification=name, aliases=aliases))
