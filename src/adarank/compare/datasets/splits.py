"""Turning (prompt, completion) examples into a :class:`GenerationData`: subsamples, splits, the decoding cap.

Every loader (built-in corpus, user file, hub dataset) ends here, so subsampling and validation splits follow
one rule everywhere, and the same rule as :mod:`adarank.compare.data` uses for classification: a label task
subsampled or split with the same seed keeps the same sentences in both forms.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ...errors import AdaRankError
from ..data import stratified_split, stratified_subsample
from .base import GenerationData

# Greedy decoding stops at this many new tokens. A tokenizer is not known when a dataset is loaded, so the
# cap is counted in whitespace words of the longest reference: label words and chunk tags such as
# "HUM:ind" or "I-ADVP" take at most about 4 subword tokens in common vocabularies, and the margin
# covers an end-of-sequence token and a leading space that tokenizes alone. A caller holding the tokenizer
# may tighten it.
TOKENS_PER_WORD = 4
EXTRA_TOKENS = 4


@dataclass
class Examples:
    """One split's examples; ``strata`` gives each a class (its label word) when the task has classes."""

    prompts: list[str]
    completions: list[str]
    strata: list[str] | None = None

    def __len__(self) -> int:
        return len(self.prompts)

    def take(self, positions: Sequence[int]) -> Examples:
        return Examples([self.prompts[i] for i in positions], [self.completions[i] for i in positions],
                        None if self.strata is None else [self.strata[i] for i in positions])

    def classes(self) -> list[str]:
        """What stratified splitting groups by: the strata, or one class for all when there are none."""
        return list(self.strata) if self.strata is not None else [""] * len(self)


def check_count(value: Any, name: str) -> int | None:
    """``value`` as a positive int, or ``None`` for "no limit"."""
    if value is None:
        return None
    if isinstance(value, bool) or not hasattr(value, "__index__") or value.__index__() < 1:
        raise AdaRankError(f"{name} must be a positive integer or None, got {value!r}; pass e.g. 1000")
    return int(value.__index__())


def check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not hasattr(seed, "__index__"):
        raise AdaRankError(f"seed must be an integer, got {seed!r}; pass e.g. 0")
    return int(seed.__index__())


def check_fraction(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < float(value) < 1.0:
        raise AdaRankError(f"{name} must be a number between 0 and 1 (exclusive), got {value!r}; pass e.g. 0.1")
    return float(value)


def max_new_tokens_for(completions: Sequence[str]) -> int:
    """The decoding cap for these references (see :data:`TOKENS_PER_WORD`)."""
    longest = max((len(c.split()) for c in completions), default=1)
    return max(longest, 1) * TOKENS_PER_WORD + EXTRA_TOKENS


def _subsample(examples: Examples, limit: int | None, seed: int, name: str) -> Examples:
    if limit is None or limit >= len(examples):
        return examples
    classes = examples.classes()
    n_classes = len(set(classes))
    if limit < n_classes:
        raise AdaRankError(f"{name}={limit} is smaller than the {n_classes} classes, so some class would have no "
                           f"example; pass {name} >= {n_classes}")
    return examples.take(stratified_subsample(classes, limit, seed))


def assemble(name: str, train: Examples, test: Examples, *, metric: str, split: dict, max_train: int | None,
             max_test: int | None, seed: int) -> GenerationData:
    """The dataset, with seeded (stratified where there are strata) subsamples recorded in ``split``.

    The decoding cap is taken over every reference of both splits before subsampling, so that it does not
    move with ``max_test`` or with a validation split carved out of training later.
    """
    max_train = check_count(max_train, "max_train")
    max_test = check_count(max_test, "max_test")
    seed = check_seed(seed)
    if not len(train):
        raise AdaRankError(f"dataset {name!r} has no training examples; check the data")
    if not len(test):
        raise AdaRankError(f"dataset {name!r} has no test examples; check the test data")
    cap = max_new_tokens_for(train.completions + test.completions)
    split = {**split}
    split.setdefault("chat_template", False)
    for key, limit in (("max_train", max_train), ("max_test", max_test)):
        if limit is not None:
            split[key] = limit
            split["subsample_seed"] = seed
    train = _subsample(train, max_train, seed, "max_train")
    test = _subsample(test, max_test, seed, "max_test")
    return GenerationData(name=name, train_prompts=train.prompts, train_completions=train.completions,
                          test_prompts=test.prompts, test_completions=test.completions, metric=metric,
                          max_new_tokens=cap, split=split, strata=train.strata)


def split_off_test(examples: Examples, test_fraction: float, seed: int) -> tuple[Examples, Examples]:
    """A seeded ``test_fraction`` split, stratified by the strata when there are any (data.py's rule)."""
    train_idx, test_idx = stratified_split(examples.classes(), test_fraction, seed)
    return examples.take(train_idx), examples.take(test_idx)


def hold_out_validation(data: GenerationData, fraction: float = 0.1, seed: int = 0) -> GenerationData:
    """``data`` with a seeded ``fraction`` of its training set moved into the evaluation slot.

    For choosing hyper-parameters: a run on the result trains on the rest of the training set and is scored
    on the held-out part, so the test set never takes part in the choice. The split is stratified by
    ``strata`` when present, with the same rule as the classification form's
    :func:`adarank.compare.data.hold_out_validation`, so both hold out the same sentences. The test split is
    dropped from the result, and ``split`` records what the evaluation set is.
    """
    fraction = check_fraction(fraction, "fraction")
    seed = check_seed(seed)
    train = Examples(list(data.train_prompts), list(data.train_completions),
                     None if data.strata is None else list(data.strata))
    if len(train) < 2:
        raise AdaRankError(f"dataset {data.name!r} has {len(train)} training example(s), too few to hold out a "
                           "validation split; use more training data")
    kept, held = split_off_test(train, fraction, seed)
    return GenerationData(name=data.name, train_prompts=kept.prompts, train_completions=kept.completions,
                          test_prompts=held.prompts, test_completions=held.completions, metric=data.metric,
                          max_new_tokens=data.max_new_tokens,
                          split={**data.split, "evaluated_on": "validation", "validation_fraction": fraction,
                                 "validation_seed": seed},
                          strata=kept.strata)
