"""The completion-only loss: equal to the model's own loss (value and LoRA gradients) on tiny random causal
LMs, logits only at the labelled tokens, and AdaLoRA's orthogonality penalty as PEFT computes it."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from adarank.compare.tasks.completion_loss import IGNORE, completion_head, completion_loss
from adarank.compare.train import TrainConfig

from .test_generation import _plan, _toy_data, llama_folder  # noqa: F401  (llama_folder is a fixture)

VOCAB = 96
LLAMA_LIKE = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, vocab_size=VOCAB, max_position_embeddings=64, pad_token_id=0,
                  bos_token_id=1, eos_token_id=2)
#: arch -> (backbone class, LoRA target modules)
ARCHS = {
    "llama": ("LlamaModel", ["q_proj", "v_proj", "down_proj"]),
    "qwen2": ("Qwen2Model", ["q_proj", "v_proj", "down_proj"]),
    "gemma3": ("Gemma3TextModel", ["q_proj", "v_proj", "down_proj"]),
    "gemma3-softcap": ("Gemma3TextModel", ["q_proj", "v_proj", "down_proj"]),
    "gemma2": ("Gemma2Model", ["q_proj", "v_proj", "down_proj"]),  # final_logit_softcapping=30.0 by default
    "gpt2": ("GPT2Model", ["c_attn", "c_fc"]),
}
SOFTCAPPED = ("gemma3-softcap", "gemma2")


def _tiny_lm(arch: str, *, dropout: float = 0.0) -> torch.nn.Module:
    import transformers

    torch.manual_seed(0)
    if arch == "llama":
        model = transformers.LlamaForCausalLM(transformers.LlamaConfig(**LLAMA_LIKE))
    elif arch == "qwen2":
        model = transformers.Qwen2ForCausalLM(transformers.Qwen2Config(**LLAMA_LIKE))
    elif arch in ("gemma3", "gemma3-softcap"):
        cap = 30.0 if arch == "gemma3-softcap" else None
        config = transformers.Gemma3TextConfig(head_dim=8, sliding_window=4, final_logit_softcapping=cap, **LLAMA_LIKE)
        model = transformers.Gemma3ForCausalLM(config)
    elif arch == "gemma2":
        model = transformers.Gemma2ForCausalLM(transformers.Gemma2Config(head_dim=8, sliding_window=4, **LLAMA_LIKE))
        assert model.config.final_logit_softcapping == 30.0
    else:
        config = transformers.GPT2Config(n_embd=32, n_layer=2, n_head=4, vocab_size=VOCAB, n_positions=64,
                                         resid_pdrop=dropout, embd_pdrop=dropout, attn_pdrop=dropout,
                                         bos_token_id=1, eos_token_id=2, pad_token_id=0)
        model = transformers.GPT2LMHeadModel(config)
    if arch in SOFTCAPPED:  # large logits, so that the softcap changes the loss
        with torch.no_grad():
            model.get_output_embeddings().weight.mul_(300.0)
    return model


def _lora(model: torch.nn.Module, arch: str, *, dropout: float = 0.0) -> torch.nn.Module:
    import peft

    # init_lora_weights=False: B is random too, so every LoRA parameter gets a non-zero gradient
    config = peft.LoraConfig(r=4, lora_alpha=8, target_modules=ARCHS[arch][1], lora_dropout=dropout,
                             init_lora_weights=False, fan_in_fan_out=arch == "gpt2", task_type="CAUSAL_LM")
    return peft.get_peft_model(model, config)


def _batch(seed: int = 0) -> dict[str, torch.Tensor]:
    """Right-padded (prompt, completion) rows of different lengths; labels only on the completions."""
    gen = torch.Generator().manual_seed(seed)
    rows = [(5, 2), (3, 1), (7, 3), (2, 2)]  # (prompt tokens, completion tokens)
    width = max(p + c for p, c in rows)
    ids = torch.zeros((len(rows), width), dtype=torch.long)
    mask = torch.zeros_like(ids)
    labels = torch.full_like(ids, IGNORE)
    for i, (p, c) in enumerate(rows):
        seq = torch.randint(3, VOCAB, (p + c,), generator=gen)
        ids[i, :p + c], mask[i, :p + c], labels[i, p:p + c] = seq, 1, seq[p:]
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def _lora_grads(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if "lora_" in n}
    model.zero_grad(set_to_none=True)
    return grads


@pytest.mark.parametrize("arch", list(ARCHS))
def test_completion_loss_equals_the_models_own_loss_and_lora_gradients(arch):
    model = _lora(_tiny_lm(arch), arch).eval()
    batch = _batch()
    head = completion_head(model)
    assert head is not None and type(head.backbone).__name__ == ARCHS[arch][0]
    assert head.softcap == (30.0 if arch in SOFTCAPPED else None)

    full = model(**batch).loss
    full.backward()
    full_grads = _lora_grads(model)
    cheap = completion_loss(model, batch)
    cheap.backward()
    cheap_grads = _lora_grads(model)

    assert cheap.dtype == torch.float32
    torch.testing.assert_close(cheap, full, rtol=1e-6, atol=1e-6)
    assert full_grads and full_grads.keys() == cheap_grads.keys()
    assert all(g.abs().sum() > 0 for g in full_grads.values())
    for name, grad in full_grads.items():
        torch.testing.assert_close(cheap_grads[name], grad, rtol=1e-4, atol=1e-7, msg=name)
    if arch in SOFTCAPPED:  # the test would notice a missing softcap
        with torch.no_grad():
            uncapped = completion_loss(model, batch, dataclasses.replace(head, softcap=None))
        assert not math.isclose(float(uncapped), float(full.detach()), rel_tol=1e-2)


def test_logits_are_computed_at_the_labelled_tokens_only():
    model = _lora(_tiny_lm("gemma3"), "gemma3").eval()
    batch = _batch()
    rows = []
    handle = model.get_base_model().get_output_embeddings().register_forward_hook(
        lambda module, args, out: rows.append(tuple(out.shape)))
    try:
        completion_loss(model, batch)
    finally:
        handle.remove()
    labelled = int((batch["labels"][:, 1:] != IGNORE).sum())
    assert rows == [(labelled, VOCAB)]
    assert labelled < batch["input_ids"].numel() // 3  # far fewer rows than the full path's


def _head_rows(model: torch.nn.Module) -> tuple[list[int], object]:
    """Row counts of every call of the output embedding (forward and checkpoint recomputation)."""
    rows: list[int] = []
    handle = model.get_base_model().get_output_embeddings().register_forward_hook(
        lambda module, args, out: rows.append(out.shape[0]))
    return rows, handle


@pytest.mark.parametrize("arch", ["gemma3-softcap", "gpt2"])
@pytest.mark.parametrize("chunk", [1, 3, 7])
def test_chunked_completion_loss_equals_the_whole_one_and_materialises_chunk_rows_at_most(arch, chunk):
    model = _lora(_tiny_lm(arch), arch).eval()
    batch = _batch()
    labelled = int((batch["labels"][:, 1:] != IGNORE).sum())
    assert labelled > 7  # so that every chunk size here splits the rows
    whole = completion_loss(model, batch, chunk=labelled)
    whole.backward()
    whole_grads = _lora_grads(model)
    rows, handle = _head_rows(model)
    try:
        chunked = completion_loss(model, batch, chunk=chunk)
        forward_rows = list(rows)
        chunked.backward()
    finally:
        handle.remove()
    chunked_grads = _lora_grads(model)
    torch.testing.assert_close(chunked, whole, rtol=1e-6, atol=1e-6)
    for name, grad in whole_grads.items():
        torch.testing.assert_close(chunked_grads[name], grad, rtol=1e-4, atol=1e-7, msg=name)
    expected = [min(chunk, labelled - start) for start in range(0, labelled, chunk)]
    assert forward_rows == expected  # every labelled row once, chunk rows at a time
    assert sorted(rows[len(forward_rows):]) == sorted(expected)  # recomputed in backward, not kept
    with pytest.raises(ValueError, match="chunk"):
        completion_loss(model, batch, chunk=0)


def test_chunked_loss_gives_full_fine_tuning_the_same_gradients_including_the_tied_embedding():
    model = _tiny_lm("gemma3").eval()
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight
    batch = _batch(seed=1)
    grads = []
    for chunk in (10_000, 2):
        completion_loss(model, batch, chunk=chunk).backward()
        grads.append({n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None})
        model.zero_grad(set_to_none=True)
    assert grads[0].keys() == grads[1].keys() and len(grads[0]) == len(list(model.parameters()))
    for name, grad in grads[0].items():
        torch.testing.assert_close(grads[1][name], grad, rtol=1e-4, atol=1e-7, msg=name)


def test_the_full_path_where_the_completion_head_cannot_be_set_up(monkeypatch):
    import transformers

    base = transformers.LlamaModel(transformers.LlamaConfig(**LLAMA_LIKE))  # no output embeddings
    assert completion_head(base) is None
    lora = _lora(_tiny_lm("llama"), "llama")
    with monkeypatch.context() as patch:  # a tuner whose forward is more than its layers
        patch.setattr(type(lora.base_model), "forward", lambda self, *a, **k: self.model(*a, **k))
        assert completion_head(lora) is None
    assert completion_head(lora) is not None
    with pytest.raises(Exception, match="completion_logits"):
        TrainConfig(completion_logits="yes")


def _adalora_model(orth_reg_weight: float = 0.5) -> torch.nn.Module:
    import peft

    model = peft.get_peft_model(_tiny_lm("gemma3"), peft.AdaLoraConfig(
        init_r=4, target_r=2, total_step=10, tinit=1, tfinal=2, target_modules=["q_proj", "v_proj", "down_proj"],
        orth_reg_weight=orth_reg_weight, task_type="CAUSAL_LM"))
    with torch.no_grad():  # B starts at zero; random values make every penalty term and gradient non-trivial
        for name, param in model.named_parameters():
            if "lora_B" in name or "lora_E" in name:
                param.normal_(0, 0.3)
    return model


def test_adalora_trains_on_completion_logits_plus_its_orthogonality_penalty_equal_to_peft_own_loss():
    model = _adalora_model().eval()
    batch = _batch()
    head = completion_head(model)
    assert head is not None and head.penalty is not None
    full = model(**batch).loss
    full.backward()
    full_grads = _lora_grads(model)
    cheap = completion_loss(model, batch, chunk=3)
    cheap.backward()
    cheap_grads = _lora_grads(model)
    torch.testing.assert_close(cheap, full, rtol=1e-6, atol=1e-6)
    assert {n for n in full_grads if "lora_A" in n} and full_grads.keys() == cheap_grads.keys()
    for name, grad in full_grads.items():
        torch.testing.assert_close(cheap_grads[name], grad, rtol=1e-4, atol=1e-6, msg=name)
    penalty = float(head.penalty())
    plain = float(completion_loss(model, batch, dataclasses.replace(head, penalty=None)))
    assert penalty > 0.05 and float(full) == pytest.approx(plain + penalty, rel=1e-6)  # the test sees the penalty
    without = _adalora_model(orth_reg_weight=0.0)
    assert float(completion_head(without).penalty()) == 0.0
