"""RTE 1-3 (PASCAL Recognising Textual Entailment; NLTK ``rte``): does the premise entail the hypothesis?

There is no official split of the three challenges together. This one trains on everything but the last
challenge's test set and tests on that: train = RTE1 dev + test, RTE2 dev + test, RTE3 dev (567 + 800 +
400 + 800 + 800 = 3,367 pairs), test = RTE3 test (800 pairs). Whitespace inside premise and hypothesis is
collapsed to single spaces, so that the prompt's line structure is the template's alone.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree

from ...errors import AdaRankError
from ..data import NLTK_DOWNLOAD, read_corpus_members
from .base import GenerationData
from .registry import DataDir, DatasetEntry, register
from .splits import Examples, assemble

PROMPT = "Premise: {premise}\nHypothesis: {hypothesis}\nEntailment (yes or no):"
TRAIN_FILES = ("rte1_dev.xml", "rte1_test.xml", "rte2_dev.xml", "rte2_test.xml", "rte3_dev.xml")
TEST_FILES = ("rte3_test.xml",)
# RTE2 and RTE3 say entailment="YES|NO"; RTE1 says value="TRUE|FALSE".
ANSWERS = {"YES": "yes", "NO": "no", "TRUE": "yes", "FALSE": "no"}


def parse(data: bytes, member: str) -> Examples:
    """The ``<pair>`` elements of one RTE file as examples."""
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError as exc:
        raise AdaRankError(f"{member} is not valid XML ({exc}); re-download the corpus with `{NLTK_DOWNLOAD}`") \
            from None
    examples = Examples([], [], [])
    for pair in root.iter("pair"):
        label = (pair.get("entailment") or pair.get("value") or "").upper()
        premise, hypothesis = pair.findtext("t"), pair.findtext("h")
        if label not in ANSWERS or not premise or not hypothesis:
            raise AdaRankError(f"{member} pair {pair.get('id')!r} lacks a premise, a hypothesis or a YES/NO "
                               f"(TRUE/FALSE) label; re-download the corpus with `{NLTK_DOWNLOAD}`")
        answer = ANSWERS[label]
        examples.prompts.append(PROMPT.format(premise=" ".join(premise.split()),
                                              hypothesis=" ".join(hypothesis.split())))
        examples.completions.append(" " + answer)
        examples.strata.append(answer)
    return examples


def _read(files: tuple[str, ...], data_dir: DataDir) -> Examples:
    raw = read_corpus_members("rte", list(files), data_dir)
    merged = Examples([], [], [])
    for member in files:
        part = parse(raw[member], f"rte/{member}")
        merged.prompts += part.prompts
        merged.completions += part.completions
        merged.strata += part.strata
    return merged


def load(data_dir: DataDir = None, *, max_train: int | None = None, max_test: int | None = None,
         seed: int = 0) -> GenerationData:
    split = {"kind": "documented", "train": [f"rte/{f}" for f in TRAIN_FILES],
             "test": [f"rte/{f}" for f in TEST_FILES]}
    return assemble("rte", _read(TRAIN_FILES, data_dir), _read(TEST_FILES, data_dir), metric="exact_match",
                    split=split, max_train=max_train, max_test=max_test, seed=seed)


register(DatasetEntry("rte", "RTE 1-3 premise/hypothesis -> yes / no; train RTE1-2 dev+test and RTE3 dev (3,367), "
                      "test RTE3 test (800); exact match", load))
