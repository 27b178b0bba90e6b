"""Stop greedy decoding once a row has written its answer's line.

Every built-in generation metric reads the first non-blank line of a decoded continuation and
nothing after it (:func:`adarank.compare.metrics.normalise_answer`). A model that has not learnt to
emit EOS (a sweep run at a rate too high or too low, the base model) goes on writing new prompts
until ``max_new_tokens``: on CoNLL-2000 that is 256 decoding steps for every batch, most of such a
run's time, for text no metric reads. So where the dataset's metric declares that it reads the first
line only (``Metric.reads_first_line``), a row stops at the first line break that follows a
non-whitespace character. Its first non-blank line, and so its score, is then the one the full
continuation would have had (``tests/compare/tasks/test_line_stop.py`` checks this property).

The check is per token, from each token's text decoded alone, with a row's state carried between
steps: "has written something". Where a token's lone text cannot be trusted (a byte-fallback
piece of a multi-byte character decodes to U+FFFD alone) it counts as neither text nor a line
break, so the rule can only stop later than it might, never earlier.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import StoppingCriteria

#: the characters ``str.splitlines`` breaks a line at
LINE_BREAKS = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")


def token_flags(text: str) -> tuple[bool, bool, bool]:
    """(has text, has a line break, has a line break after its own first non-whitespace character)
    of one token's lone text; an untrustworthy text (containing U+FFFD) has none of them."""
    if "\ufffd" in text:
        return False, False, False
    first = next((i for i, ch in enumerate(text) if not ch.isspace()), None)
    breaks = [i for i, ch in enumerate(text) if ch in LINE_BREAKS]
    return first is not None, bool(breaks), first is not None and any(i > first for i in breaks)


class LineTable:
    """Per-token flags over a vocabulary of ``size`` ids (ids past the tokenizer's are neither)."""

    def __init__(self, texts: list[str], size: int) -> None:
        flags = [token_flags(t) for t in texts] + [(False, False, False)] * max(0, size - len(texts))
        table = torch.tensor(flags, dtype=torch.bool)
        self.text, self.breaks, self.ends_line = table[:, 0], table[:, 1], table[:, 2]

    @classmethod
    def for_tokenizer(cls, tokenizer: Any, size: int) -> "LineTable":
        texts = tokenizer.batch_decode([[i] for i in range(len(tokenizer))], skip_special_tokens=True,
                                       clean_up_tokenization_spaces=False)
        return cls(list(texts), max(size, len(texts)))


_TABLES: dict[tuple[str, int, int], LineTable] = {}


def line_table(tokenizer: Any, size: int) -> LineTable:
    """:class:`LineTable` of ``tokenizer``, built once per process (262,144 tokens take ~2 s)."""
    key = (str(getattr(tokenizer, "name_or_path", "")), len(tokenizer), int(size))
    if key not in _TABLES or not key[0]:
        _TABLES[key] = LineTable.for_tokenizer(tokenizer, size)
    return _TABLES[key]


class LineStop(StoppingCriteria):
    """For one ``generate`` call: a row is done once it has written text and then a line break.
    The flags move to the ids' device at the first step, so a step costs no host round trip."""

    def __init__(self, table: LineTable) -> None:
        self.table = table
        self.wrote: torch.Tensor | None = None
        self.flags: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    def __call__(self, input_ids: torch.Tensor, scores: Any = None, **kwargs: Any) -> torch.Tensor:
        last = input_ids[:, -1]
        if self.flags is None or self.wrote is None:
            self.flags = tuple(t.to(last.device) for t in (self.table.text, self.table.breaks, self.table.ends_line))
            self.wrote = torch.zeros(last.shape[0], dtype=torch.bool, device=last.device)
        text, breaks, ends_line = self.flags
        done = (self.wrote & breaks[last]) | ends_line[last]
        self.wrote = self.wrote | text[last]
        return done
