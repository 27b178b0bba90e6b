"""Tests for adarank.compare.metrics: exact match normalisation, conlleval chunk F1 worked by hand, tag accuracy."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from adarank.compare import metrics
from adarank.compare.metrics import (METRICS, Metric, bracket_chunk_f1, bracket_tags, bracketed, chunk_f1, chunks,
                                     exact_match, parse_tags, score, token_accuracy)
from adarank.errors import AdaRankError


def test_builtin_metrics_registered():
    assert {"exact_match", "chunk_f1", "bracket_chunk_f1", "token_accuracy"} <= set(METRICS)
    assert all(METRICS[name].name == name and METRICS[name].help for name in METRICS)


# --------------------------------------------------------------------------------------------------
# Exact match
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("prediction, hit", [
    (" HUM", True),
    ("HUM", True),
    ("  HUM  ", True),
    ("HUM\nQuestion: Who wrote Hamlet ?\nAnswer type: HUM", True),   # the model kept generating: first line counts
    ("\n\n HUM\nLOC", True),                                         # leading blank lines are whitespace
    ("hum", False),                                                  # case-sensitive
    ("HUM:ind", False),
    ("HUM LOC", False),
    ("", False),
    ("\n", False),
])
def test_exact_match_normalisation(prediction, hit):
    assert exact_match([prediction], [" HUM"]) == {"score": 1.0 if hit else 0.0}


def test_exact_match_is_the_share_of_hits():
    result = score("exact_match", [" yes", "no\n", " yes", "Yes"], [" yes", " no", " no", " yes"])
    assert result == {"score": 0.5}


# --------------------------------------------------------------------------------------------------
# Chunks as conlleval reads them
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tags, expected", [
    ("B-NP I-NP O B-VP", {(0, 1, "NP"), (3, 3, "VP")}),
    ("I-NP I-NP O", {(0, 1, "NP")}),                        # I- at sentence start opens a chunk
    ("O I-NP I-NP B-NP I-NP", {(1, 2, "NP"), (3, 4, "NP")}),  # I- after O opens one; B- always opens one
    ("I-NP O I-NP", {(0, 0, "NP"), (2, 2, "NP")}),
    ("B-NP I-VP I-VP", {(0, 0, "NP"), (1, 2, "VP")}),       # a type change ends a chunk and starts another
    ("B-PP I-NP I-NP", {(0, 0, "PP"), (1, 2, "NP")}),
    ("B-NP B-NP", {(0, 0, "NP"), (1, 1, "NP")}),
    ("B-NP", {(0, 0, "NP")}),                               # a chunk still open at the end is closed
    ("O O", set()),
    ("", set()),
])
def test_chunks_follow_conlleval(tags, expected):
    assert chunks(tags.split()) == expected


def test_parse_tags_aligns_to_the_words():
    assert parse_tags(" B-NP I-NP", 4) == ["B-NP", "I-NP", "O", "O"]                 # padded with O
    assert parse_tags("B-NP I-NP O B-VP B-NP", 3) == ["B-NP", "I-NP", "O"]          # cut
    assert parse_tags("B-NP NP b-np B- O", 5) == ["B-NP", "O", "O", "O", "O"]       # malformed tags name no chunk
    assert parse_tags("B-NP\nB-VP B-VP", 2) == ["B-NP", "O"]                          # first line only
    assert parse_tags("", 0) == []


# --------------------------------------------------------------------------------------------------
# Chunk F1, hand-worked
# --------------------------------------------------------------------------------------------------


def f1_of(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall)


def test_chunk_f1_perfect():
    assert chunk_f1([" B-NP I-NP O B-VP"], [" B-NP I-NP O B-VP"]) == {"score": 1.0, "precision": 1.0, "recall": 1.0}


def test_chunk_f1_i_after_o_starts_the_same_chunk_as_b():
    # Gold NP(0-1) O; the guess opens its NP with I- (IOB1 style): conlleval counts it as the same chunk.
    assert chunk_f1(["I-NP I-NP O"], ["B-NP I-NP O"])["score"] == 1.0


def test_chunk_f1_type_change_is_a_boundary():
    # The guess writes I-VP right after I-NP: NP ends at 1 and VP starts at 2, exactly as gold says.
    assert chunk_f1(["B-NP I-NP I-VP"], ["B-NP I-NP B-VP"])["score"] == 1.0
    # Gold: one NP over 0-2. Guess: NP(0-1) and a VP at 2 (type change): neither chunk matches.
    result = chunk_f1(["B-NP I-NP I-VP"], ["B-NP I-NP I-NP"])
    assert result == {"score": 0.0, "precision": 0.0, "recall": 0.0}


def test_chunk_f1_needs_both_boundaries_and_the_type():
    # Gold NP(0-2); guess NP(0-1) + NP(2-2): same start, wrong end -> 0 of 2 guessed, 0 of 1 gold.
    assert chunk_f1(["B-NP I-NP B-NP"], ["B-NP I-NP I-NP"])["score"] == 0.0
    # Right boundaries, wrong type.
    assert chunk_f1(["B-VP I-VP"], ["B-NP I-NP"])["score"] == 0.0
    # Gold NP(0-1) VP(2) NP(3-4); guess NP(0-1) VP(2-4): one of two guessed, one of three gold.
    result = chunk_f1(["B-NP I-NP B-VP I-VP I-VP"], ["B-NP I-NP B-VP B-NP I-NP"])
    assert result["precision"] == pytest.approx(1 / 2)
    assert result["recall"] == pytest.approx(1 / 3)
    assert result["score"] == pytest.approx(f1_of(1 / 2, 1 / 3))


def test_chunk_f1_is_micro_over_the_whole_set():
    # Sentence 1: 3 gold chunks, all guessed right. Sentence 2: gold NP(0-1), guess NP(0) NP(1): 0 of 2.
    # Pooled: 3 correct, 5 guessed, 4 gold -> P 0.6, R 0.75; a per-sentence average would say 0.5.
    result = chunk_f1(["B-NP I-NP B-VP O B-NP", "B-NP B-NP"], ["B-NP I-NP B-VP O B-NP", "B-NP I-NP"])
    assert result["precision"] == pytest.approx(0.6)
    assert result["recall"] == pytest.approx(0.75)
    assert result["score"] == pytest.approx(f1_of(0.6, 0.75))


def test_chunk_f1_counts_each_sentence_on_its_own():
    # A chunk cannot run across examples: gold NP at the end of one and I-NP at the start of the next are two.
    result = chunk_f1(["B-NP", "I-NP"], ["B-NP", "B-NP"])
    assert result == {"score": 1.0, "precision": 1.0, "recall": 1.0}


def test_chunk_f1_aligns_decoded_text():
    gold = " B-NP I-NP O B-VP"
    assert chunk_f1(["B-NP I-NP"], [gold])["recall"] == pytest.approx(0.5)          # missing tags are O
    assert chunk_f1(["B-NP I-NP"], [gold])["precision"] == 1.0
    assert chunk_f1([" B-NP I-NP O B-VP B-NP I-NP"], [gold])["score"] == 1.0         # extra tags are cut
    assert chunk_f1([" B-NP I-NP O B-VP\nWords: next"], [gold])["score"] == 1.0      # later lines are ignored
    garbled = chunk_f1(["B-NP NP O B-VP"], [gold])                                  # NP -> O: guess NP(0), VP(3)
    assert garbled["precision"] == pytest.approx(0.5) and garbled["recall"] == pytest.approx(0.5)


def test_chunk_f1_nothing_to_count_is_zero():
    assert chunk_f1(["O O"], ["B-NP O"]) == {"score": 0.0, "precision": 0.0, "recall": 0.0}
    assert chunk_f1(["O"], ["O"])["score"] == 0.0  # conlleval: no chunks at all scores 0


tag = st.sampled_from(["O", "B-NP", "I-NP", "B-VP", "I-VP", "B-PP", "junk"])


@given(st.lists(st.lists(tag, max_size=8), min_size=1, max_size=5),
       st.lists(st.lists(tag, max_size=8), min_size=1, max_size=5))
@example(gold_sentences=[["B-NP", "B-VP"], ["B-NP", "B-NP", "B-NP"]],  # P = R = 0.8: F1 rounds to 0.8000000000000002
         guess_sentences=[["B-NP", "B-NP", "B-NP"]])
def test_chunk_f1_properties(gold_sentences, guess_sentences):
    guess_sentences = (guess_sentences * len(gold_sentences))[:len(gold_sentences)]
    gold = [" ".join(s) for s in gold_sentences]
    guess = [" ".join(s) for s in guess_sentences]
    result = chunk_f1(guess, gold)
    assert 0.0 <= result["score"] <= 1.0
    low, high = sorted((result["precision"], result["recall"]))
    assert low - 1e-12 <= result["score"] <= high + 1e-12  # a harmonic mean lies between its terms
    for sentence in gold_sentences:
        spans = sorted(chunks(sentence))
        assert all(0 <= a <= b < len(sentence) for a, b, _ in spans)
        assert all(prev[1] < nxt[0] for prev, nxt in zip(spans, spans[1:]))  # chunks never overlap
    if any(chunks(s) for s in gold_sentences):
        assert chunk_f1(gold, gold)["score"] == 1.0


# --------------------------------------------------------------------------------------------------
# Token accuracy
# --------------------------------------------------------------------------------------------------


def test_token_accuracy_pools_positions_and_counts_missing_as_wrong():
    # Example 1: B-NP right, second wrong, third missing -> 1 of 3; example 2: 1 of 1 -> 2 of 4 pooled.
    assert token_accuracy(["B-NP O", "O"], [" B-NP I-NP O", " O"]) == {"score": 0.5}
    assert token_accuracy(["NN VB DT extra\nmore"], ["NN VB DT"]) == {"score": 1.0}


# --------------------------------------------------------------------------------------------------
# Registry and calling conventions
# --------------------------------------------------------------------------------------------------


def test_register_a_new_metric(monkeypatch):
    monkeypatch.setattr(metrics, "METRICS", dict(METRICS))

    def length_match(predictions, references):
        same = sum(len(p.split()) == len(r.split()) for p, r in zip(predictions, references))
        return {"score": same / len(references)}

    metrics.register(Metric("length_match", "same number of words", length_match))
    assert score("length_match", ["a b", "c"], ["x y", "x y"]) == {"score": 0.5}
    with pytest.raises(ValueError, match="already registered"):
        metrics.register(Metric("length_match", "again", length_match))
    metrics.register(Metric("percent", "a metric in percent, by mistake", lambda p, r: {"score": 100.0}))
    with pytest.raises(ValueError, match="must lie in"):
        score("percent", ["a"], ["a"])


def test_score_errors():
    with pytest.raises(AdaRankError) as info:
        score("bleu", ["a"], ["a"])
    assert "unknown metric 'bleu'" in str(info.value) and "exact_match" in str(info.value)
    with pytest.raises(ValueError, match="2 predictions for 1 references"):
        score("exact_match", ["a", "b"], ["a"])
    with pytest.raises(ValueError, match="no examples"):
        score("exact_match", [], [])


# --------------------------------------------------------------------------------------------------
# Bracketed chunks
# --------------------------------------------------------------------------------------------------


def test_bracketed_writes_conllevals_chunks_around_their_words():
    words = "Major shippers say they expect , to".split()
    assert bracketed(words, "B-NP I-NP B-VP B-NP O O I-VP".split()) == \
        "[NP Major shippers] [VP say] [NP they] expect , [VP to]"       # I- after O opens a chunk, as in conlleval
    assert bracketed(["a", "b"], ["B-NP", "B-NP"]) == "[NP a] [NP b]"  # two chunks side by side stay two
    with pytest.raises(ValueError, match="2 words for 1 tags"):
        bracketed(["a", "b"], ["O"])


def test_bracket_tags_reads_words_and_iob_tags():
    assert bracket_tags(" [NP Major shippers] [VP say] they") == (
        ["Major", "shippers", "say", "they"], ["B-NP", "I-NP", "B-VP", "O"])
    assert bracket_tags("[NP a [VP b c]") == (["a", "b", "c"], ["B-NP", "B-VP", "I-VP"])  # an open chunk ends the last
    assert bracket_tags("a ] b") == (["a", "b"], ["O", "O"])                               # a stray ] is ignored
    assert bracket_tags("[NP a]\n[VP b]") == (["a"], ["B-NP"])                             # first line only
    assert bracket_tags("[np a]")[1] == ["O", "O"]  # "[np" is not a chunk type: no chunk, "np" is a word
    assert bracket_tags("") == ([], [])


def test_bracket_chunk_f1_aligns_by_word_position():
    gold = " [NP Major shippers] [VP say] [NP they]"
    assert bracket_chunk_f1(["[NP Major shippers] [VP say]"], [gold]) == \
        {"score": pytest.approx(f1_of(1.0, 2 / 3)), "precision": 1.0, "recall": pytest.approx(2 / 3)}
    assert bracket_chunk_f1([gold + " [NP extra]"], [gold])["score"] == 1.0  # words past the gold's are cut
    assert bracket_chunk_f1(["Major shippers say they"], [gold])["score"] == 0.0


@given(st.lists(st.tuples(tag, tag), min_size=1, max_size=10))
def test_bracket_chunk_f1_is_chunk_f1_of_the_same_tags(pairs):
    # Written as brackets and read back, any tag sequences score exactly as chunk_f1 scores them as tags.
    gold = [t if t != "junk" else "O" for t, _ in pairs]
    guess = [t if t != "junk" else "O" for _, t in pairs]
    words = [f"w{i}" for i in range(len(pairs))]
    assert chunks(bracket_tags(bracketed(words, gold))[1]) == chunks(gold)
    assert bracket_chunk_f1([" " + bracketed(words, guess)], [" " + bracketed(words, gold)]) == \
        chunk_f1([" ".join(guess)], [" ".join(gold)])
