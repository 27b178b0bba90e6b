"""What "the model's output" is, for the distance between two perturbed models.

``auto`` takes the logits when the model has a head (and a plain tensor when the model returns
one). A bare encoder has no logits, so ``auto``
falls back to the attention-masked mean of the last hidden state: it is defined for every
architecture and is the representation sentence-transformers trains (the BERT ``pooler_output``
that the authors used is untrained in many checkpoints, MiniLM's included; choose ``pooled`` to
follow them). ``hidden`` keeps the last hidden state per token (batch, tokens, features) with its
token mask, for distances on internal representations (the ``representation`` signal); a model
whose output carries no ``last_hidden_state`` (a causal LM returns logits) is called with
``output_hidden_states=True`` and ``hidden_states[-1]`` is used. Padding positions never enter any
statistic.
"""

from __future__ import annotations

from typing import Any, Literal

import torch

from .errors import AdaRankError

OutputChoice = Literal["auto", "logits", "pooled", "first", "mean", "hidden"]
OUTPUT_CHOICES: tuple[str, ...] = ("auto", "logits", "pooled", "first", "mean", "hidden")
DISTANCES: tuple[str, ...] = ("l1", "cosine")


def _field(outputs: Any, name: str) -> torch.Tensor | None:
    if isinstance(outputs, dict) or hasattr(outputs, "keys"):
        try:
            value = outputs[name]
        except (KeyError, IndexError):
            return None
        return value if isinstance(value, torch.Tensor) else None
    return getattr(outputs, name, None)


def _hidden(outputs: Any) -> torch.Tensor:
    if isinstance(outputs, torch.Tensor):
        return outputs
    value = _field(outputs, "last_hidden_state")
    if value is None and isinstance(outputs, (tuple, list)) and outputs and isinstance(outputs[0], torch.Tensor):
        value = outputs[0]
    if value is None:
        raise AdaRankError("the model returns no last_hidden_state; choose --output logits or pooled")
    return value


def _field_any(outputs: Any, name: str) -> Any:
    if isinstance(outputs, dict) or hasattr(outputs, "keys"):
        try:
            return outputs[name]
        except (KeyError, IndexError):
            return None
    return getattr(outputs, name, None)


def _last_hidden(outputs: Any) -> torch.Tensor:
    """The last hidden state per token: ``last_hidden_state``, else ``hidden_states[-1]``, else a
    bare tensor output (or the first tensor of a tuple)."""
    if isinstance(outputs, torch.Tensor):
        return outputs
    value = _field(outputs, "last_hidden_state")
    if value is None:
        states = _field_any(outputs, "hidden_states")
        if isinstance(states, (tuple, list)) and states and isinstance(states[-1], torch.Tensor):
            value = states[-1]
    if value is None and _field(outputs, "logits") is None and isinstance(outputs, (tuple, list)) \
            and outputs and isinstance(outputs[0], torch.Tensor):
        value = outputs[0]
    if value is None:
        raise AdaRankError("the model returns neither last_hidden_state nor hidden_states; "
                           "it cannot be scored on its hidden states (choose another output or signal)")
    return value


def needs_hidden_states(outputs: Any, choice: str) -> bool:
    """Whether ``choice`` needs the model called again with ``output_hidden_states=True``: true for
    ``hidden`` when the output has logits but neither ``last_hidden_state`` nor ``hidden_states``."""
    if choice != "hidden" or isinstance(outputs, torch.Tensor):
        return False
    if _field(outputs, "last_hidden_state") is not None or _field_any(outputs, "hidden_states") is not None:
        return False
    return _field(outputs, "logits") is not None


def resolve_output(outputs: Any, choice: OutputChoice) -> str:
    """The concrete choice ``auto`` stands for with this model's outputs."""
    if choice != "auto":
        return choice
    if isinstance(outputs, torch.Tensor) or _field(outputs, "logits") is not None:
        return "logits"
    return "mean"


def representation(outputs: Any, attention_mask: torch.Tensor, choice: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(values, token_mask): values are (batch, features) or (batch, tokens, features) in fp32.

    A token mask comes back only for per-token values (a causal LM's logits), so the distance can
    average over real tokens alone.
    """
    if choice == "logits":
        value = outputs if isinstance(outputs, torch.Tensor) else _field(outputs, "logits")
        if value is None:
            raise AdaRankError("the model returns no logits; choose --output mean, first or pooled")
    elif choice == "pooled":
        value = _field(outputs, "pooler_output")
        if value is None:
            raise AdaRankError("the model returns no pooler_output; choose --output mean or first")
    elif choice == "first":
        value = _hidden(outputs)[:, 0]
    elif choice == "hidden":
        value = _last_hidden(outputs)
    elif choice == "mean":
        hidden = _hidden(outputs).float()
        mask = attention_mask[:, : hidden.shape[1]].to(hidden.dtype).unsqueeze(-1)
        return (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0), None
    else:
        raise AdaRankError(f"unknown output choice '{choice}'; use one of {', '.join(OUTPUT_CHOICES)}")
    value = value.float()
    if value.dim() == 3:
        return value, attention_mask[:, : value.shape[1]]
    return value.reshape(value.shape[0], -1), None


def l1_distance(a: torch.Tensor, b: torch.Tensor, token_mask: torch.Tensor | None) -> torch.Tensor:
    """Per-example l1 distance; per-token outputs average the distance over real tokens."""
    d = (a - b).abs().sum(dim=-1)
    if d.dim() == 1:
        return d
    mask = token_mask.to(d.dtype)
    return (d * mask).sum(-1) / mask.sum(-1).clamp_min(1.0)


def cosine_distance(a: torch.Tensor, b: torch.Tensor, token_mask: torch.Tensor | None) -> torch.Tensor:
    """Per-example 1 - cos(a, b) over the feature axis; per-token values average it over real tokens."""
    # In float64: nearby hidden states have cos within float32 rounding of 1. Clamped at 0 for the same reason.
    d = (1.0 - torch.nn.functional.cosine_similarity(a.double(), b.double(), dim=-1, eps=1e-12)).clamp_min(0.0)
    if d.dim() == 1:
        return d
    mask = token_mask.to(d.dtype)
    return (d * mask).sum(-1) / mask.sum(-1).clamp_min(1.0)


def distance_function(name: str) -> Any:
    """``l1`` (the paper) or ``cosine``, both (a, b, token_mask) -> per-example distances."""
    if name == "l1":
        return l1_distance
    if name == "cosine":
        return cosine_distance
    raise AdaRankError(f"unknown distance '{name}'; use one of {', '.join(DISTANCES)}")
