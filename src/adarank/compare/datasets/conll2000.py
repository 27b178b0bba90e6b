"""CoNLL-2000 chunking (Tjong Kim Sang & Buchholz 2000; NLTK ``conll2000``): words -> one IOB chunk tag each.

Official split: 8,936 training and 2,012 test sentences (WSJ sections 15-18 and 20). The completion is the
tag sequence, one tag per word, separated by spaces; the metric is conlleval's chunk-level F1
(:func:`adarank.compare.metrics.chunk_f1`). POS tags are in the corpus but not in the prompt: the task is
chunking from words alone. ``conll2000-brackets`` (:mod:`.conll2000_brackets`) is the same corpus with the
words kept in the completion, bracketed by chunk.
"""

from __future__ import annotations

from ...errors import AdaRankError
from ..data import NLTK_DOWNLOAD
from .base import GenerationData
from .corpus import corpus_lines
from .registry import DataDir, DatasetEntry, register
from .splits import Examples, assemble

PROMPT = "Words: {words}\nChunk tags:"


Sentence = tuple[list[str], list[str]]  # words, one IOB chunk tag each


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


def parse(lines: list[str], member: str) -> Examples:
    """One example per sentence: the words as the prompt, their tags as the completion."""
    examples = Examples([], [])
    for words, tags in sentences(lines, member):
        examples.prompts.append(PROMPT.format(words=" ".join(words)))
        examples.completions.append(" " + " ".join(tags))
    return examples


def load(data_dir: DataDir = None, *, max_train: int | None = None, max_test: int | None = None,
         seed: int = 0) -> GenerationData:
    train = parse(corpus_lines("conll2000", "train.txt", data_dir), "conll2000/train.txt")
    test = parse(corpus_lines("conll2000", "test.txt", data_dir), "conll2000/test.txt")
    split = {"kind": "official", "train": "conll2000/train.txt", "test": "conll2000/test.txt"}
    return assemble("conll2000", train, test, metric="chunk_f1", split=split, max_train=max_train,
                    max_test=max_test, seed=seed)


register(DatasetEntry("conll2000", "CoNLL-2000 chunking: words -> one IOB chunk tag per word; official 8,936/2,012 "
                      "split; conlleval chunk F1", load))
