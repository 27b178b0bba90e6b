"""TREC question classification (Li & Roth; NLTK ``qc``) as label-word generation, coarse and fine.

Official split: 5,452 training and 500 test questions. Coarse answers are one of ``ABBR DESC ENTY HUM LOC
NUM``; fine answers keep the corpus's ``COARSE:fine`` form (``HUM:ind``), so the 50 fine types stay
unambiguous.
"""

from __future__ import annotations

from .labelled import register_label_corpus

PROMPT = "Question: {text}\nAnswer type:"

register_label_corpus("trec-coarse", "TREC questions -> one of 6 answer types (HUM, LOC, ...); official 5,452/500 "
                      "split; exact match", PROMPT, aliases=("trec", "trec6", "qc"))
register_label_corpus("trec-fine", "TREC questions -> one of 50 fine answer types (HUM:ind, ...); official "
                      "5,452/500 split; exact match", PROMPT, aliases=("trec50",))
