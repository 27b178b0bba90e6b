"""The causal-LM training loss with logits only where the loss is (the completion's tokens).

Training now runs in TRL's ``SFTTrainer``, whose fused LM head keeps no full-vocabulary logits either; this
module stays for :func:`orthogonality_penalty` (added back to SFTTrainer's loss for AdaLoRA runs) and for
the memory measurement in ``benchmarks/completion_loss_memory.py``.

Why: a causal LM's own loss (``model(**batch).loss``) computes logits at every position, batch x
length x vocab floats. With Gemma 3's 262,144-token vocabulary a batch of 32 x 147 tokens needs
4.9 GB per fp32 copy, although only the completion's tokens (often one or two per example) carry a
loss; runs sharing a GPU ran out of memory on those logits alone.

How: the decoder backbone (no LM head) gives the final hidden states (after its final norm); the
rows whose *next* token is a label (position p predicts token p + 1) go through the model's output
embedding, the config's ``final_logit_softcapping`` is applied if it has one, and the cross-entropy
is averaged over those tokens in float32. That is the value of transformers' causal-LM loss (the
mean over the batch's labelled tokens), for a fraction of the memory. The operations mirror the
model's own forward (output embedding and softcap in the ambient dtype, then float32), so under
bf16 autocast the two paths differ by rounding only.

Long completions still need several full-vocabulary copies of their rows at once: CoNLL-2000's
bracketed chunks are ~66 tokens each, 2,100 rows a batch of 32, and the bf16 logits, the softcap's
tanh, the float32 copy and its log-softmax come to about 8 GB there, which ran runs sharing a GPU
out of memory. So above ``CHUNK_TOKENS`` labelled tokens the head and the cross-entropy run over
chunks of that many rows, each under activation checkpointing
(:func:`torch.utils.checkpoint.checkpoint`): a chunk keeps only its hidden rows for the backward
pass and recomputes its logits there. The peak is one chunk's copies, for a second head forward
over the completion rows; the chunks' summed losses over the labelled tokens are the same mean.

AdaLoRA's forward adds an orthogonality penalty to the model's loss (the mean Frobenius distance of
each ``lora_A``'s ``A Aᵀ`` and each ``lora_B``'s ``Bᵀ B`` from the identity, times
``orth_reg_weight``), so its full-logits loss is the largest of all (its runs on CoNLL-2000 would
hold 32 × 300 × 262,144 floats per copy). The head adds that penalty, computed as PEFT 0.21's
``AdaLoraModel.forward`` computes it, to the completion-only loss.

:func:`completion_head` returns ``None`` where this cannot be set up (no backbone, no output
embeddings, another PEFT tuner that changes the forward); the training loop then uses the model's
own loss. It also checks the two losses against each other on every run's first batch
(:mod:`adarank.compare.train`), so a PEFT whose penalty differs from this one is caught there: the
run trains on PEFT's own loss, with a warning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

#: label of positions without a loss (prompt, padding)
IGNORE = -100
#: name of this loss path in a run's record (``loss_logits``)
COMPLETION_ONLY = "completion-only"
#: labelled tokens whose logits are materialised at once; more are done in checkpointed chunks
CHUNK_TOKENS = 512


@dataclass(frozen=True)
class CompletionHead:
    """The parts of a causal LM the completion-only loss runs: backbone, output embedding, softcap."""

    lm: nn.Module
    backbone: nn.Module
    output: nn.Module
    softcap: float | None
    #: a term the tuner's forward adds to the model's loss (AdaLoRA's orthogonality penalty), or None
    penalty: Callable[[], torch.Tensor] | None = None


def _adalora(model: nn.Module) -> Any:
    """The AdaLoRA tuner of a PEFT model, or ``None``."""
    from peft.tuners.adalora import AdaLoraModel

    tuner = getattr(model, "base_model", None)
    return tuner if isinstance(tuner, AdaLoraModel) else None


def _causal_lm(model: nn.Module) -> nn.Module | None:
    """The transformers causal LM inside ``model`` (itself, or the model a PEFT wrapper adapts);
    ``None`` if a PEFT wrapper changes more than the layers (prompt learning, a tuner with its own
    forward other than AdaLoRA's, whose penalty :func:`orthogonality_penalty` adds)."""
    from peft import PeftModel
    from peft.tuners.tuners_utils import BaseTuner

    if not isinstance(model, PeftModel):
        return model
    if model.active_peft_config.is_prompt_learning:
        return None
    tuner = model.base_model
    if not isinstance(tuner, BaseTuner):
        return None
    if type(tuner).forward is not BaseTuner.forward and _adalora(model) is None:
        return None
    return model.get_base_model()


def orthogonality_penalty(tuner: Any) -> torch.Tensor:
    """What AdaLoRA's forward adds to the loss: ``orth_reg_weight`` times the mean over the trained
    adapter's ``lora_A`` and ``lora_B`` of ``‖A Aᵀ − I‖_F`` and ``‖Bᵀ B − I‖_F``."""
    adapter = tuner.trainable_adapter_name
    weight = float(tuner.peft_config[adapter].orth_reg_weight)
    total, count = None, 0
    for name, param in tuner.model.named_parameters():
        if ("lora_A" in name or "lora_B" in name) and adapter in name:
            cov = param @ param.T if "lora_A" in name else param.T @ param
            eye = torch.eye(*cov.shape, dtype=cov.dtype, device=cov.device)
            term = torch.norm(cov - eye, p="fro")  # PEFT's op, so that autocast treats it alike
            total = term if total is None else total + term
            count += 1
    if total is None:
        return torch.zeros(())
    return weight * (total / count)


def _softcap(lm: nn.Module) -> float | None:
    config = getattr(lm, "config", None)
    if config is None:
        return None
    text = config.get_text_config() if callable(getattr(config, "get_text_config", None)) else config
    cap = getattr(text, "final_logit_softcapping", None)
    return None if cap is None else float(cap)


def completion_head(model: nn.Module) -> CompletionHead | None:
    """The backbone, output embedding and softcap of ``model`` (a causal LM, PEFT-wrapped or not),
    or ``None`` where the completion-only loss cannot be set up.

    The backbone is the module the causal LM's forward runs before its head: the attribute named by
    ``base_model_prefix`` (``model`` for Llama, Gemma 3, Qwen2; ``transformer`` for GPT-2), else
    ``get_decoder()``.
    """
    lm = _causal_lm(model)
    if lm is None:
        return None
    get_output = getattr(lm, "get_output_embeddings", None)
    output = get_output() if callable(get_output) else None
    if not isinstance(output, nn.Module):
        return None
    prefix = getattr(lm, "base_model_prefix", "")
    backbone = getattr(lm, prefix, None) if isinstance(prefix, str) and prefix else None
    if not isinstance(backbone, nn.Module) and callable(getattr(lm, "get_decoder", None)):
        try:
            backbone = lm.get_decoder()
        except (AttributeError, NotImplementedError, ValueError):
            backbone = None
    if not isinstance(backbone, nn.Module) or backbone is lm or backbone is output:
        return None
    tuner = _adalora(model)
    penalty = None if tuner is None else (lambda: orthogonality_penalty(tuner))
    return CompletionHead(lm=lm, backbone=backbone, output=output, softcap=_softcap(lm), penalty=penalty)


def _last_hidden(outputs: Any) -> torch.Tensor:
    hidden = getattr(outputs, "last_hidden_state", None)
    return outputs[0] if hidden is None else hidden


def _summed_loss(output: nn.Module, softcap: float | None, hidden: torch.Tensor,
                 targets: torch.Tensor) -> torch.Tensor:
    """Summed cross-entropy of ``hidden`` rows (labelled positions) against ``targets``, in float32."""
    logits = output(hidden)  # (rows, vocab)
    if softcap is not None:
        logits = torch.tanh(logits / softcap) * softcap
    return F.cross_entropy(logits.float(), targets, reduction="sum")


def completion_loss(model: nn.Module, batch: dict[str, torch.Tensor],
                    head: CompletionHead | None = None, *, chunk: int = CHUNK_TOKENS) -> torch.Tensor:
    """Mean cross-entropy over the batch's labelled next tokens, with logits at those positions only,
    ``chunk`` rows of them at a time (checkpointed) where there are more.

    ``batch`` holds ``labels`` (``IGNORE`` where there is no loss) and the backbone's inputs
    (``input_ids``, ``attention_mask``). Equals ``model(**batch).loss`` of a transformers causal LM.
    """
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1 labelled token, got {chunk}")
    head = completion_head(model) if head is None else head
    if head is None:
        raise ValueError(f"no completion-only loss for {type(model).__name__}: backbone or output embedding not found")
    labels = batch["labels"]
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    hidden = _last_hidden(head.backbone(**inputs))
    targets = labels[:, 1:]  # position p predicts token p + 1
    keep = targets != IGNORE
    rows, wanted = hidden[:, :-1][keep], targets[keep]  # (labelled tokens, hidden), (labelled tokens,)
    count = wanted.numel()
    if count <= chunk:
        loss = _summed_loss(head.output, head.softcap, rows, wanted) / count
    else:
        from torch.utils.checkpoint import checkpoint

        total = rows.new_zeros((), dtype=torch.float32)
        for start in range(0, count, chunk):
            part = slice(start, start + chunk)
            total = total + checkpoint(_summed_loss, head.output, head.softcap, rows[part], wanted[part],
                                       use_reentrant=False)
        loss = total / count
    return loss if head.penalty is None else loss + head.penalty()
