"""PP attachment (Ratnaparkhi 1994; NLTK ``ppattach``): does "prep noun2" attach to the verb or to noun1?

Official split: ``training`` (20,801 quadruples) for training and ``test`` (3,097) for testing. ``devset``
(4,039) is not used: hyper-parameters are chosen on a validation split held out of training
(:func:`~adarank.compare.datasets.hold_out_validation`), as for every other dataset.
"""

from __future__ import annotations

from ...errors import AdaRankError
from ..data import NLTK_DOWNLOAD
from .base import GenerationData
from .corpus import corpus_lines
from .registry import DataDir, DatasetEntry, register
from .splits import Examples, assemble

PROMPT = "Attach '{prep} {noun2}' in: {verb} {noun1} {prep} {noun2}\nAttaches to (verb or noun):"
ANSWERS = {"V": "verb", "N": "noun"}


def parse(lines: list[str], member: str) -> Examples:
    """``<sentence id> verb noun1 prep noun2 <V|N>`` lines as examples."""
    examples = Examples([], [], [])
    for lineno, line in enumerate(lines, 1):
        if not line:
            continue
        fields = line.split()
        if len(fields) != 6 or fields[5] not in ANSWERS:
            raise AdaRankError(f"{member} line {lineno} is not 'id verb noun1 prep noun2 V|N' ({line[:60]!r}); "
                               f"re-download the corpus with `{NLTK_DOWNLOAD}`")
        _, verb, noun1, prep, noun2, attachment = fields
        answer = ANSWERS[attachment]
        examples.prompts.append(PROMPT.format(verb=verb, noun1=noun1, prep=prep, noun2=noun2))
        examples.completions.append(" " + answer)
        examples.strata.append(answer)
    return examples


def load(data_dir: DataDir = None, *, max_train: int | None = None, max_test: int | None = None,
         seed: int = 0) -> GenerationData:
    train = parse(corpus_lines("ppattach", "training", data_dir), "ppattach/training")
    test = parse(corpus_lines("ppattach", "test", data_dir), "ppattach/test")
    split = {"kind": "official", "train": "ppattach/training", "test": "ppattach/test"}
    return assemble("ppattach", train, test, metric="exact_match", split=split, max_train=max_train,
                    max_test=max_test, seed=seed)


register(DatasetEntry("ppattach", "PP attachment: 'verb noun1 prep noun2' -> verb / noun; official training/test "
                      "split (20,801/3,097; devset unused); exact match", load))
