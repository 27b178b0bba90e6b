"""How a generation task's decoded outputs are scored against its reference completions, by name.

A metric is a corpus metric: it receives every prediction and reference of the evaluation set at once,
because chunk F1 (like conlleval) pools its counts over the whole set instead of averaging per example.
It returns a dict whose ``"score"`` is the primary number, in [0, 1]; other keys are reported alongside.

Adding a metric is one :func:`register` call; :data:`METRICS` is what the harness and its CLI read.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..registries import add_unique, lookup

MetricFn = Callable[[list[str], list[str]], dict[str, float]]


@dataclass(frozen=True)
class Metric:
    """A named corpus metric; ``fn(predictions, references)`` returns at least ``{"score": value in [0, 1]}``."""

    name: str
    help: str
    fn: MetricFn
    #: the metric reads only each prediction's first non-blank line (:func:`normalise_answer`), so decoding
    #: may stop at that line's end (:mod:`adarank.compare.tasks.line_stop`); False: every token is decoded
    reads_first_line: bool = False


METRICS: dict[str, Metric] = {}


def register(metric: Metric) -> Metric:
    """Make ``metric`` available by its name; a second metric under a taken name is a bug, so it raises."""
    return add_unique(METRICS, metric, "metric")


def get_metric(name: str) -> Metric:
    """The registered metric ``name``, or an error that lists the known ones."""
    return lookup(METRICS, name, "metric")


def score(name: str, predictions: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Score ``predictions`` against ``references`` with the metric ``name``."""
    predictions, references = list(predictions), list(references)
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    if not references:
        raise ValueError("no examples to score")
    result = get_metric(name).fn(predictions, references)
    if not 0.0 <= result.get("score", -1.0) <= 1.0:
        raise ValueError(f"metric {name!r} returned {result!r}; its 'score' must lie in [0, 1]")
    return result


# --------------------------------------------------------------------------------------------------
# Exact match
# --------------------------------------------------------------------------------------------------


def normalise_answer(prediction: str) -> str:
    """The answer a decoded continuation gives: its first non-blank line, stripped.

    A model that has learnt the label word often keeps generating (a newline and a new prompt); only the
    first line is its answer. Case is kept, because label sets such as TREC's ``HUM:ind`` are case-exact.
    """
    stripped = prediction.strip()
    return stripped.splitlines()[0].strip() if stripped else ""


def exact_match(predictions: list[str], references: list[str]) -> dict[str, float]:
    """Share of predictions whose answer (:func:`normalise_answer`) equals the stripped reference."""
    hits = sum(normalise_answer(p) == r.strip() for p, r in zip(predictions, references))
    return {"score": hits / len(references)}


# --------------------------------------------------------------------------------------------------
# Tag sequences: chunk F1 as conlleval counts it, and per-position accuracy
# --------------------------------------------------------------------------------------------------

_TAG_RE = re.compile(r"([BI])-(\S+)\Z")
OUTSIDE = "O"


def _fit(tags: list[str], length: int) -> list[str]:
    """``tags`` aligned to ``length`` words: extra tags cut off, missing ones ``O``."""
    return tags[:length] + [OUTSIDE] * (length - len(tags))


def parse_tags(text: str, length: int) -> list[str]:
    """The tag sequence a decoded text gives, aligned to ``length`` words.

    Only the first line counts (as for exact match). Extra tags are cut off and missing ones count as
    ``O``; a token that is not ``O``, ``B-X`` or ``I-X`` counts as ``O`` too, since it names no chunk.
    """
    tokens = normalise_answer(text).split()[:length]
    return _fit([t if t == OUTSIDE or _TAG_RE.match(t) else OUTSIDE for t in tokens], length)


def _split_tag(tag: str) -> tuple[str, str]:
    """``B-NP`` -> ``("B", "NP")``; ``O`` -> ``("O", "")``."""
    match = _TAG_RE.match(tag)
    return (match.group(1), match.group(2)) if match else (OUTSIDE, "")


def _chunk_ends(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    """conlleval's end-of-chunk rule (IOB tags): does a chunk end between the previous token and this one?"""
    if prev_tag == OUTSIDE:
        return False
    return tag in ("B", OUTSIDE) or prev_type != type_


def _chunk_starts(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    """conlleval's start-of-chunk rule: ``B`` starts one, and so does an ``I`` after ``O`` or after another type."""
    if tag == OUTSIDE:
        return False
    return tag == "B" or prev_tag == OUTSIDE or prev_type != type_


def chunks(tags: Sequence[str]) -> set[tuple[int, int, str]]:
    """The chunks of one sentence as ``(first, last, type)`` word positions, by conlleval's rules."""
    found: set[tuple[int, int, str]] = set()
    start: int | None = None
    prev_tag, prev_type = OUTSIDE, ""
    for i, raw in enumerate([*tags, OUTSIDE]):
        tag, type_ = _split_tag(raw)
        if start is not None and _chunk_ends(prev_tag, tag, prev_type, type_):
            found.add((start, i - 1, prev_type))
            start = None
        if _chunk_starts(prev_tag, tag, prev_type, type_):
            start = i
        prev_tag, prev_type = tag, type_
    return found


def _aligned(predictions: list[str], references: list[str]) -> list[tuple[list[str], list[str]]]:
    pairs = []
    for prediction, reference in zip(predictions, references):
        gold = reference.split()
        pairs.append((parse_tags(prediction, len(gold)), gold))
    return pairs


def _micro_chunk_f1(pairs: list[tuple[list[str], list[str]]]) -> dict[str, float]:
    """conlleval's counts pooled over ``(guessed tags, gold tags)`` pairs, as precision, recall and F1."""
    correct = guessed = gold_total = 0
    for guess, gold in pairs:
        guess_chunks, gold_chunks = chunks(guess), chunks(gold)
        correct += len(guess_chunks & gold_chunks)
        guessed += len(guess_chunks)
        gold_total += len(gold_chunks)
    precision = correct / guessed if guessed else 0.0
    recall = correct / gold_total if gold_total else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"score": f1, "precision": precision, "recall": recall}


def chunk_f1(predictions: list[str], references: list[str]) -> dict[str, float]:
    """Micro chunk F1 over the whole set: a predicted chunk counts when its type and both ends match a gold one.

    Precision, recall and F1 are conlleval's (0 when there is nothing to divide by), as fractions, not
    percentages.
    """
    return _micro_chunk_f1(_aligned(predictions, references))


# Bracketed chunks: "[NP The cat] [VP sat] on [NP the mat]". The words travel with their chunks, so a model
# need not count positions to keep tags aligned with words, as it must when it writes the tags alone.
_BRACKET_TOKEN_RE = re.compile(r"\[([A-Z]+)(?=\s)|\]|[^\s\[\]]+")


def bracketed(words: Sequence[str], tags: Sequence[str]) -> str:
    """``words`` with their IOB ``tags`` written as bracketed chunks (conlleval's chunks; words outside are bare)."""
    if len(words) != len(tags):
        raise ValueError(f"{len(words)} words for {len(tags)} tags")
    found = chunks(tags)
    starts = {first: type_ for first, _, type_ in found}
    ends = {last for _, last, _ in found}
    out = []
    for i, word in enumerate(words):
        piece = f"[{starts[i]} {word}" if i in starts else word
        out.append(piece + "]" if i in ends else piece)
    return " ".join(out)


def bracket_tags(text: str) -> tuple[list[str], list[str]]:
    """The words of a bracketed text and one IOB tag each: ``[T`` opens a chunk, ``]`` closes it.

    Only the first line counts. A chunk opened while another is open ends the first; words outside any
    chunk are ``O``; a stray ``]`` is ignored.
    """
    words: list[str] = []
    tags: list[str] = []
    open_type: str | None = None
    first = False
    for match in _BRACKET_TOKEN_RE.finditer(normalise_answer(text)):
        token = match.group(0)
        if match.group(1):
            open_type, first = match.group(1), True
        elif token == "]":
            open_type = None
        else:
            words.append(token)
            tags.append(OUTSIDE if open_type is None else f"{'B' if first else 'I'}-{open_type}")
            first = False
    return words, tags


def bracket_chunk_f1(predictions: list[str], references: list[str]) -> dict[str, float]:
    """:func:`chunk_f1` for bracketed chunks: each text is read into IOB tags, the prediction's aligned by position
    to the reference's words (extra words cut off, missing ones ``O``), as :func:`parse_tags` aligns tags."""
    golds = [bracket_tags(reference)[1] for reference in references]
    return _micro_chunk_f1([(_fit(bracket_tags(prediction)[1], len(gold)), gold)
                            for prediction, gold in zip(predictions, golds)])


def token_accuracy(predictions: list[str], references: list[str]) -> dict[str, float]:
    """Share of reference positions whose predicted tag is the same string, pooled over the whole set.

    Tags are the whitespace-separated tokens of the answer's first line. A position the prediction leaves
    out counts as wrong, and extra tags are ignored: the metric is for any tag set, so no tag is assumed
    to be the default.
    """
    tokens = tokens_right = 0
    for prediction, reference in zip(predictions, references):
        gold = reference.split()
        guess = normalise_answer(prediction).split()
        tokens += len(gold)
        tokens_right += sum(g == r for g, r in zip(guess, gold))
    return {"score": tokens_right / tokens if tokens else 0.0}


register(Metric("exact_match", "first line of the output, stripped, equals the reference (case-sensitive)",
                exact_match, reads_first_line=True))
register(Metric("chunk_f1", "chunk-level micro F1 of IOB tag sequences, counted as conlleval does", chunk_f1,
                reads_first_line=True))
register(Metric("bracket_chunk_f1", "chunk-level micro F1 of bracketed chunks ('[NP The cat] [VP sat]'), read into "
                "IOB tags and counted as conlleval does", bracket_chunk_f1, reads_first_line=True))
register(Metric("token_accuracy", "per-position accuracy of whitespace-separated tag sequences", token_accuracy,
                reads_first_line=True))
