"""CoNLL-2000 chunking with bracketed completions: words -> the same words, grouped into typed chunks.

The corpus, split and gold chunks are :mod:`.conll2000`'s; only the completion differs. ``conll2000`` asks for
the tag sequence alone ("B-NP I-NP B-VP ..."), so the model must count words to keep each tag on its word: on
Gemma 3 270M at 100 steps x 32 its sweep scored chunk F1 0-10 % (benchmarks/results/decoder/
conll2000-tags-only). Here the completion copies the sentence with its chunks marked,
"[NP Major shippers] [VP say] [NP they] ...", so each chunk sits next to its words. The metric reads both texts
back into IOB tags and counts conlleval's chunk F1 (:func:`adarank.compare.metrics.bracket_chunk_f1`), so the
score is comparable with ``conll2000``'s.
"""

from __future__ import annotations

from ..metrics import bracketed
from .base import GenerationData
from .conll2000 import load_form
from .registry import DataDir, DatasetEntry, register

PROMPT = "Words: {words}\nChunks:"


def load(data_dir: DataDir = None, *, max_train: int | None = None, max_test: int | None = None,
         seed: int = 0) -> GenerationData:
    return load_form("conll2000-brackets", "bracket_chunk_f1", PROMPT, bracketed, data_dir, max_train, max_test,
                     seed)


register(DatasetEntry("conll2000-brackets", "CoNLL-2000 chunking: words -> the words bracketed by chunk "
                      "('[NP The cat] [VP sat]'); official 8,936/2,012 split; conlleval chunk F1", load))
