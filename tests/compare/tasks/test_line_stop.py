"""Stopping at the end of the answer's line: the first non-blank line of what was decoded is the full
continuation's, for any token texts; untrustworthy tokens never stop early; generate honours it per row."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from adarank.compare.metrics import METRICS, normalise_answer
from adarank.compare.tasks.line_stop import LineStop, LineTable, token_flags

PIECES = ["a", "bc", " ", "  x", "\n", "\n\n", "y\n", "\nz", " \n ", "\r", "q\rr", "\u2028", "\x85", "\ufffd", "",
          "\t", "w \n v", "\x0c"]


def _stop_index(texts: list[str], ids: list[int]) -> int | None:
    """The step at which LineStop ends one row decoding ``ids`` (None: it never stops)."""
    stop = LineStop(LineTable(texts, len(texts)))
    seq = torch.zeros((1, 1), dtype=torch.long)
    for step, token in enumerate(ids):
        seq = torch.cat([seq, torch.tensor([[token]])], dim=1)
        if bool(stop(seq, None)[0]):
            return step
    return None


@settings(max_examples=400, deadline=None)
@given(st.lists(st.integers(0, len(PIECES) - 1), max_size=14))
def test_the_decoded_prefix_has_the_full_continuations_first_line(ids):
    at = _stop_index(PIECES, ids)
    full = "".join(PIECES[i] for i in ids)
    kept = full if at is None else "".join(PIECES[i] for i in ids[:at + 1])
    assert normalise_answer(kept) == normalise_answer(full)
    if at is not None:  # it stopped because the first line had ended
        assert any(ch in kept.lstrip() for ch in "\n\r\u2028\x85\x0c")


def test_it_stops_at_the_first_line_break_after_text_and_not_before():
    assert _stop_index(PIECES, [4, 4, 0, 2, 1, 4, 0]) == 5  # "\n\na bc\n": the leading breaks do not count
    assert _stop_index(PIECES, [6, 0]) == 0  # "y\n" ends its own line
    assert _stop_index(PIECES, [7, 0]) is None  # "\nz": text after the break, the line still open
    assert _stop_index(PIECES, [7, 4]) == 1
    assert _stop_index(PIECES, [13, 4, 0]) is None  # "\ufffd" alone may be a piece of whitespace: no text yet
    assert token_flags("\ufffd") == (False, False, False) and token_flags("x\ny") == (True, True, True)


def test_rows_are_independent_and_ids_past_the_tokenizer_are_neither_text_nor_breaks():
    texts = ["a", "\n", " "]  # ids 3 and 4 are past the tokenizer: a padded embedding matrix
    stop = LineStop(LineTable(texts, 5))
    rows = [[0, 1, 3],  # "a", "\n": done at step 1
            [2, 2, 2],  # blanks only: never
            [4, 4, 1]]  # unknown ids are not text, so the break at step 2 ends no line
    done = [stop(torch.tensor([[9] + row[:step + 1] for row in rows]), None).tolist() for step in range(3)]
    assert done == [[False, False, False], [True, False, False], [False, False, False]]


def test_every_builtin_metric_reads_the_first_line_only():
    for name in ("exact_match", "chunk_f1", "bracket_chunk_f1", "token_accuracy"):
        metric = METRICS[name]
        assert metric.reads_first_line
        ref = {"exact_match": [" yes"], "chunk_f1": [" B-NP I-NP"], "bracket_chunk_f1": [" [NP a b]"],
               "token_accuracy": [" B-NP I-NP"]}[name]
        guess = {"exact_match": " yes", "chunk_f1": " B-NP I-NP", "bracket_chunk_f1": " [NP a b]",
                 "token_accuracy": " B-NP I-NP"}[name]
        # what follows the first line changes nothing, so the stop cannot change the score
        assert metric.fn([guess + "\nWords: more\nChunks: [VP x]"], ref) == metric.fn([guess + "\n"], ref)


@pytest.mark.parametrize("stop", [False, True])
def test_generate_ends_a_row_at_its_line_and_leaves_the_others(stop):
    """A scripted causal LM (its next token is a function of the step) through transformers' generate."""
    import transformers

    texts = ["<pad>", "<eos>", "x", "\n", "y"]
    config = transformers.LlamaConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                                      num_key_value_heads=1, vocab_size=5, max_position_embeddings=64, pad_token_id=0,
                                      eos_token_id=1, bos_token_id=2)
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(config).eval()
    script = {0: [2, 3, 4, 4, 4], 1: [4, 4, 4, 4, 4]}  # row 0 writes "x\nyyy", row 1 "yyyyy"

    def scripted(module, args, output):
        step = scripted.calls
        scripted.calls += 1
        logits = torch.full_like(output.logits, -1e4)
        for row, tokens in script.items():
            logits[row, -1, tokens[min(step, len(tokens) - 1)]] = 0.0
        output.logits = logits
        return output

    scripted.calls = 0
    handle = model.register_forward_hook(scripted)
    try:
        criteria = transformers.StoppingCriteriaList([LineStop(LineTable(texts, 5))]) if stop else None
        out = model.generate(input_ids=torch.tensor([[2, 4], [2, 4]]), attention_mask=torch.ones(2, 2, dtype=torch.long),
                             max_new_tokens=5, do_sample=False, eos_token_id=1, pad_token_id=0,
                             stopping_criteria=criteria)
    finally:
        handle.remove()
    new = out[:, 2:].tolist()
    assert new[1] == [4, 4, 4, 4, 4]  # the row without a line break decodes to the budget either way
    assert new[0] == ([2, 3, 0, 0, 0] if stop else [2, 3, 4, 4, 4])  # stopped after "x\n", then padded
