"""CoNLL-2000 chunking (Tjong Kim Sang & Buchholz 2000; NLTK ``conll2000``): words -> one IOB chunk tag each.

Official split: 8,936 training and 2,012 test sentences (WSJ sections 15-18 and 20). The completion is the
tag sequence, one tag per word, separated by spaces; the metric is conlleval's chunk-level F1
(:func:`adarank.compare.metrics.chunk_f1`). POS tags are in the corpus but not in the prompt: the task is
chunking from words alone. ``conll2000-brackets`` (:mod:`.conll2000_brackets`) is the same corpus with the
words kept in the completion, bracketed by chunk.
"""

from __future__ import annotations

from collections.abc import Callable

from ...errors import AdaRankError
from ..data import NLTK_DOWNLOAD
from .base import GenerationData
from .corpus import corpus_lines
from .registry import DataDir, DatasetEntry, register
from .splits import Examples, assemble

PROMPT = "Words: {words}\nChunk tags:"


Sentence = tuple[list[str], list[str]]  # words, one IOB chunk tag each
Completion = Callable[[list[str], list[str]], str]  # (words, tags) -> the completion's text


def sentences(lines: list[str], member: str) -> list[Sentence]:
    """``word POS chunk`` lines, a blank line after each sentence, as (words, chunk tags) per sentence."""
    found: list[Sentence] = []
    words: list[str] = []
    tags: list[str] = []
    for lineno, line in enumerate([*lines, ""], 1):
        if not line:
            if words:
                found.append((words, tags))
                words, tags = [], []
            continue
        fields = line.split()
        if len(fields) != 3:
            raise AdaRankError(f"{member} line {lineno} is not 'word POS chunk-tag' ({line[:60]!r}); "
                               f"re-download the corpus with `{NLTK_DOWNLOAD}`")
        words.append(fields[0])
        tags.append(fields[2])
    return found


def examples(lines: list[str], member: str, prompt: str, completion: Completion) -> Examples:
    """One example per sentence: ``prompt`` filled with its words, ``completion(words, tags)`` after a space."""
    found = Examples([], [])
    for words, tags in sentences(lines, member):
        found.prompts.append(prompt.format(words=" ".join(words)))
        found.completions.append(" " + completion(words, tags))
    return found


def load_form(name: str, metric: str, prompt: str, completion: Completion, data_dir: DataDir,
              max_train: int | None, max_test: int | None, seed: int) -> GenerationData:
    """The official split, written as ``prompt`` → ``completion``: what every form of the corpus shares."""
    train, test = (examples(corpus_lines("conll2000", member, data_dir), f"conll2000/{member}", prompt, completion)
                   for member in ("train.txt", "test.txt"))
    split = {"kind": "official", "train": "conll2000/train.txt", "test": "conll2000/test.txt"}
    return assemble(name, train, test, metric=metric, split=split, max_train=max_train, max_test=max_test, seed=seed)


def load(data_dir: DataDir = None, *, max_train: int | None = None, max_test: int | None = None,
         seed: int = 0) -> GenerationData:
    return load_form("conll2000", "chunk_f1", PROMPT, lambda words, tags: " ".join(tags), data_dir, max_train,
                     max_test, seed)


register(DatasetEntry("conll2000", "CoNLL-2000 chunking: words -> one IOB chunk tag per word; official 8,936/2,012 "
                      "split; conlleval chunk F1", load))
