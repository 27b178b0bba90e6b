"""An independent reference for the batched engine: the method written out from its documented rule.

The engine-equivalence test in test_scoring.py compares two engines that share the noise drawing and
the distance code, so a mistake in either shared piece would pass it. This reference shares nothing
with adarank but the probe batch: its own seeding (README, "How scoring works"), its own sigma, its
own perturbed copies (full forwards of deep-copied models with W+E written into them) and its own
l1 distance, and the batched engine (hooks, stacked replicas, prefix replay) must match it.
"""

from __future__ import annotations

import copy
import zlib

import pytest
import torch

from adarank.scoring import ScoreConfig, score_modules

from conftest import random_probes, tiny_bert_model


def reference_seed(seed: int, name: str, trial: int, copy_index: int) -> int:
    """The documented rule: CRC-32 of the key in the low 32 bits, CRC-32 of the reversed key above them."""
    key = f"{seed}:{name}:{trial}:{copy_index}".encode("utf-8")
    return zlib.crc32(key) + (zlib.crc32(bytes(reversed(key))) << 32)


def perturbed_logits(model, name: str, inputs, seed: int, trial: int, copy_index: int, scale: float):
    clone = copy.deepcopy(model)
    module = dict(clone.named_modules())[name]
    gen = torch.Generator().manual_seed(reference_seed(seed, name, trial, copy_index))
    with torch.no_grad():
        for tensor in (module.weight, module.bias):  # weight first, then bias, from one generator
            if tensor is None:
                continue
            sigma = scale * torch.sqrt(((tensor - tensor.mean()) ** 2).mean())  # population std
            tensor += torch.randn(tensor.shape, generator=gen) * sigma
        return clone(**inputs).logits


def reference_score(model, name: str, inputs, mask, trials: int, seed: int, scale: float) -> list[float]:
    scores = []
    for t in range(trials):
        a, b = (perturbed_logits(model, name, inputs, seed, t, c, scale) for c in (0, 1))
        per_position = (a - b).abs().sum(-1)
        if per_position.dim() == 2:  # per-token logits: mean over real tokens only
            per_position = (per_position * mask).sum(-1) / mask.sum(-1)
        scores.append(float(per_position.mean()))
    return scores


def _gpt2():
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    return GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=128, n_positions=64,
                                      bos_token_id=0, eos_token_id=0)).eval()


@pytest.mark.parametrize("which", ["gpt2-lm", "bert-seq-cls"])
@pytest.mark.parametrize("scale", [1.0, 0.3])
def test_batched_engine_matches_an_independent_reference(which, scale):
    if which == "gpt2-lm":
        model, probes = _gpt2(), random_probes(128, n=4, length=9)
    else:  # a wider init than BERT's 0.02: a random classifier's logits would sit near fp32 rounding
        model, probes = tiny_bert_model("BertForSequenceClassification", num_labels=3, initializer_range=0.5), \
            random_probes(30522, n=4, length=9, token_types=True)
    seed, trials = 11, 2
    scores, output = score_modules(model, probes, "all-linear",
                                   ScoreConfig(trials=trials, seed=seed, noise_scale=scale), progress=False)
    assert output == "logits"
    mask = probes.inputs["attention_mask"].float()
    assert (mask.sum(-1) < mask.shape[1]).any()  # padding present: it must not count
    for result in scores:
        expected = reference_score(model, result.target.name, probes.inputs, mask, trials, seed, scale)
        assert result.scores == pytest.approx(expected, rel=1e-4), result.target.name
