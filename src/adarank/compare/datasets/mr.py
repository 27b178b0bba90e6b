"""MR movie-review sentence polarity (Pang & Lee 2005; NLTK ``sentence_polarity``) as label-word generation.

No official split: the seeded stratified 90/10 split of :mod:`adarank.compare.data`, so the classification
form tests on the same sentences.
"""

from __future__ import annotations

from .labelled import register_label_corpus

register_label_corpus("mr", "movie-review sentences -> positive / negative; seeded stratified 90/10 split; exact match",
                      "Review: {text}\nSentiment:", {"neg": "negative", "pos": "positive"},
                      aliases=("sentence_polarity", "sentence-polarity"))
