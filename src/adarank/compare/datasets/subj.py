"""SUBJ subjectivity (Pang & Lee 2004; NLTK ``subjectivity``) as label-word generation.

No official split: the seeded stratified 90/10 split of :mod:`adarank.compare.data`, so the classification
form tests on the same sentences.
"""

from __future__ import annotations

from .labelled import register_label_corpus

register_label_corpus("subj", "movie sentences -> subjective / objective; seeded stratified 90/10 split; exact match",
                      "Sentence: {text}\nSubjective or objective:", aliases=("subjectivity",))
