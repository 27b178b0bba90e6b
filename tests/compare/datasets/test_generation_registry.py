"""The generation-dataset registry, discovery of built-in files, and validation splits (no corpora needed)."""

from __future__ import annotations

import pkgutil
import sys
from collections import Counter

import pytest

import adarank.compare.datasets as package
from adarank.compare.datasets import DATASETS, DatasetEntry, GenerationData, hold_out_validation, load_generation_spec
from adarank.compare.datasets import register
from adarank.compare.datasets.registry import resolve
from adarank.compare.datasets.splits import Examples, assemble
from adarank.errors import AdaRankError


def toy_loader(data_dir=None, *, max_train=None, max_test=None, seed=0) -> GenerationData:
    words = ["red", "green", "blue"]
    train = Examples([f"Colour {i}:" for i in range(30)], [f" {words[i % 3]}" for i in range(30)],
                     [words[i % 3] for i in range(30)])
    test = Examples(["Colour x:", "Colour y:"], [" red", " dark blue"], ["red", "blue"])
    return assemble("toy-colours", train, test, metric="exact_match", split={"kind": "official"},
                    max_train=max_train, max_test=max_test, seed=seed)


@pytest.fixture
def toy():
    entry = register(DatasetEntry("toy-colours", "colour words", toy_loader, aliases=("colours",)))
    yield entry
    del DATASETS["toy-colours"]


def test_a_registered_dataset_loads_by_name_and_alias(toy):
    data = load_generation_spec("toy-colours", max_train=6, seed=1, chat_template=True)
    assert Counter(data.strata) == {"red": 2, "green": 2, "blue": 2}
    assert data.split == {"kind": "official", "max_train": 6, "subsample_seed": 1, "chat_template": True}
    # The decoding cap comes from the longest reference (" dark blue": 2 words), whatever the subsample.
    assert data.max_new_tokens == load_generation_spec("colours").max_new_tokens >= 2 * 4
    assert resolve("Colours") == "toy-colours"


def test_register_refuses_a_taken_name_or_alias(toy):
    with pytest.raises(ValueError, match="already registered"):
        register(DatasetEntry("toy-colours", "again", toy_loader))
    with pytest.raises(ValueError, match="'colours' is already registered"):
        register(DatasetEntry("other", "again", toy_loader, aliases=("colours",)))
    with pytest.raises(ValueError, match="'trec' is already registered"):
        register(DatasetEntry("trec", "shadowing an alias", toy_loader))
    assert "other" not in DATASETS and "trec" not in DATASETS


def test_every_file_of_the_package_is_imported():
    # Adding a dataset is adding a file: the package imports every module in it, so its register() runs.
    names = [m.name for m in pkgutil.iter_modules(package.__path__) if not m.name.startswith("_")]
    assert {"trec", "mr", "subj", "ppattach", "conll2000", "rte"} <= set(names)
    assert all(f"adarank.compare.datasets.{n}" in sys.modules for n in names)


def test_aliases_of_the_classification_corpora():
    assert resolve("TREC") == resolve("qc") == "trec-coarse"
    assert resolve("trec50") == "trec-fine"
    assert resolve("sentence_polarity") == "mr" and resolve("subjectivity") == "subj"
    assert resolve("conll") is None


def test_entries_without_a_classification_form(tmp_path):
    with pytest.raises(AdaRankError, match="'conll2000' has no classification form"):
        DATASETS["conll2000"].load_classification(tmp_path)


# --------------------------------------------------------------------------------------------------
# Validation split
# --------------------------------------------------------------------------------------------------


def test_hold_out_validation_is_stratified_disjoint_and_recorded(toy):
    data = load_generation_spec("toy-colours")
    held = hold_out_validation(data, 0.2, seed=4)
    assert Counter(held.test_completions) == {" red": 2, " green": 2, " blue": 2}
    assert sorted(held.train_prompts + held.test_prompts) == sorted(data.train_prompts)
    assert not set(held.train_prompts) & set(held.test_prompts)
    assert held.strata == [c.strip() for c in held.train_completions]
    assert held.split == {**data.split, "evaluated_on": "validation", "validation_fraction": 0.2,
                          "validation_seed": 4}
    assert held.max_new_tokens == data.max_new_tokens and held.metric == data.metric
    assert hold_out_validation(data, 0.2, seed=4).test_prompts == held.test_prompts
    assert hold_out_validation(data, 0.2, seed=5).test_prompts != held.test_prompts


def test_hold_out_validation_without_strata():
    data = GenerationData("free", [f"p{i}" for i in range(10)], [f" c{i}" for i in range(10)], ["t"], [" u"],
                          "exact_match", 8)
    held = hold_out_validation(data, 0.3, seed=0)
    assert len(held.test_prompts) == 3 and len(held.train_prompts) == 7 and held.strata is None
    assert sorted(held.train_prompts + held.test_prompts) == sorted(data.train_prompts)


def test_hold_out_validation_errors():
    one = GenerationData("one", ["p"], [" c"], ["t"], [" u"], "exact_match", 8)
    with pytest.raises(AdaRankError, match="too few to hold out"):
        hold_out_validation(one)
    with pytest.raises(AdaRankError, match="fraction must be a number between 0 and 1"):
        hold_out_validation(one, fraction=0)


def test_assemble_refuses_empty_splits():
    empty = Examples([], [])
    some = Examples(["p"], [" c"])
    with pytest.raises(AdaRankError, match="no training examples"):
        assemble("e", empty, some, metric="exact_match", split={}, max_train=None, max_test=None, seed=0)
    with pytest.raises(AdaRankError, match="no test examples"):
        assemble("e", some, empty, metric="exact_match", split={}, max_train=None, max_test=None, seed=0)
