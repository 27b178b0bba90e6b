"""``fisher``: gradient sensitivity, Σ (θ·∂L/∂θ)² over a module's weight (and bias).

For every probe example, the sum over the module's weight (and bias) of (θ · ∂L/∂θ)², the
first-order change of the loss when the weights are scaled, squared (the diagonal empirical Fisher
weighted by θ²). No trained head is needed: a model that returns ``logits`` over its vocabulary (a
causal or masked LM) uses the next-token loss on the probe tokens themselves (shifted by one,
padding ignored; for a masked LM this is a proxy, not its training loss); any other model uses the
squared norm of its output representation (the masked mean of the last hidden state, or a model's
own 2-D output as is). Gradients are taken one example at a time, so the values are true
per-example squares, not squares of a batch sum. The examples are split into K disjoint folds
(K = min(trials, examples), assignment seeded); each fold's mean is one of the module's K values, so
mean and spread read like disagreement's.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from ..errors import AdaRankError
from ..outputs import _field, representation
from ..probes import ProbeBatch
from ..scoring import ModuleScore, ScoreConfig
from ..targets import Target
from .registry import OnModule, Signal, register, resolve_targets


def _vocab_logits(model: nn.Module, outputs: Any) -> torch.Tensor | None:
    """Per-token logits over the vocabulary, or None (a head over labels, or no logits at all)."""
    if isinstance(outputs, torch.Tensor):
        return None
    logits = _field(outputs, "logits")
    if logits is None or logits.dim() != 3:
        return None
    vocab = getattr(getattr(model, "config", None), "vocab_size", None)
    return logits if vocab is None or logits.shape[-1] == vocab else None


def _next_token_loss(logits: torch.Tensor, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of predicting token t+1 at position t, over real token pairs only."""
    pred = logits[:, :-1].float()
    gold = input_ids[:, 1: logits.shape[1]]
    keep = (mask[:, :-1] * mask[:, 1: logits.shape[1]]).bool()
    ce = torch.nn.functional.cross_entropy(pred.reshape(-1, pred.shape[-1]), gold.reshape(-1), reduction="none")
    ce = ce.reshape(gold.shape)
    return (ce * keep).sum() / keep.sum().clamp_min(1)


def _representation_loss(outputs: Any, mask: torch.Tensor) -> torch.Tensor:
    """Squared norm of the output representation (mean over examples)."""
    if isinstance(outputs, torch.Tensor) and outputs.dim() == 2:
        value = outputs.float()
    elif isinstance(outputs, torch.Tensor) or _field(outputs, "last_hidden_state") is not None \
            or _field(outputs, "logits") is None:
        value, _ = representation(outputs, mask, "mean")
    else:  # a head over labels (a classifier): its logits, masked mean over tokens when per token
        logits = _field(outputs, "logits").float()
        value = representation(logits, mask, "mean")[0] if logits.dim() == 3 else logits.reshape(logits.shape[0], -1)
    return value.pow(2).sum(-1).mean()


def fisher_with_loss(model: nn.Module, probes: ProbeBatch, targets: Sequence[Target], *, folds: int, seed: int,
                     progress: bool) -> tuple[list[ModuleScore], str]:
    """The fisher scores of ``targets`` and the name of the loss they were taken of (the plan
    records it as its ``output``); :func:`fisher_scores` without the name."""
    modules = dict(model.named_modules(remove_duplicate=False))
    # Each target's own tensors; a tensor shared by two targets is counted for each.
    owned = []
    for t in targets:
        mod = modules[t.name]
        owned.append([p for p in (mod.weight, getattr(mod, "bias", None)) if isinstance(p, nn.Parameter)])
    unique: list[nn.Parameter] = list({id(p): p for ps in owned for p in ps}.values())
    position = {id(p): i for i, p in enumerate(unique)}

    n = len(probes)
    k = max(1, min(folds, n))
    gen = torch.Generator().manual_seed(int(seed))
    order = torch.randperm(n, generator=gen).tolist()
    fold_of = {ex: i % k for i, ex in enumerate(order)}
    totals = torch.zeros(len(targets), k, dtype=torch.float64)
    counts = torch.zeros(k, dtype=torch.float64)

    params = list(model.parameters())
    flags = [p.requires_grad for p in params]
    grads = [p.grad for p in params]
    was_training = model.training
    device = params[0].device
    probes = probes.to(device)
    loss_name = ""
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n, desc="fisher: probe examples", unit="example", dynamic_ncols=True)
    try:
        model.eval()
        for p in params:
            p.requires_grad_(False)
        for p in unique:
            p.requires_grad_(True)
        for ex in range(n):
            sub = probes.select(slice(ex, ex + 1))  # one example, cropped to its real length
            with torch.enable_grad():
                outputs = model(**sub.inputs)
                logits = _vocab_logits(model, outputs)
                if logits is not None:
                    loss = _next_token_loss(logits, sub.inputs["input_ids"], sub.attention_mask)
                    loss_name = "next-token-loss"
                else:
                    loss = _representation_loss(outputs, sub.attention_mask)
                    loss_name = "representation-norm"
                if not torch.isfinite(loss):
                    raise AdaRankError(f"the fisher loss is NaN/Inf on probe example {ex}; "
                                       "check the model's weights and --dtype (try fp32)")
                g = torch.autograd.grad(loss, unique, allow_unused=True)
            with torch.no_grad():
                sq = [torch.zeros((), dtype=torch.float64) if gi is None else
                      (p.detach().float() * gi.float()).pow(2).sum().double().cpu() for p, gi in zip(unique, g)]
                del g
                f = fold_of[ex]
                for i, ps in enumerate(owned):
                    totals[i, f] += sum((sq[position[id(p)]] for p in ps), torch.zeros((), dtype=torch.float64))
                counts[f] += 1
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
        for p, flag, grad in zip(params, flags, grads):
            p.requires_grad_(flag)
            p.grad = grad
        model.train(was_training)
    values = (totals / counts.clamp_min(1)).tolist()
    return [ModuleScore(t, values[i]) for i, t in enumerate(targets)], loss_name


def fisher_scores(model: nn.Module, probes: ProbeBatch, targets: Sequence[Target] | str | Sequence[str] = "all-linear",
                  *, seed: int = 0, progress: bool = False, folds: int = 5) -> list[ModuleScore]:
    """Σ (θ·∂L/∂θ)² over each target's weight and bias, averaged over probe examples, K = min(folds,
    examples) fold means per module (see the module docstring for the loss).

    The model's weights, ``requires_grad`` flags, ``.grad`` and train/eval mode are restored as
    they were, also on exceptions: gradients come from ``torch.autograd.grad`` and never land in
    ``.grad``.
    """
    return fisher_with_loss(model, probes, resolve_targets(model, targets), folds=folds, seed=seed, progress=progress)[0]


def _score(model: nn.Module, probes: ProbeBatch, targets: list[Target], config: ScoreConfig, *,
           progress: bool, on_module: OnModule | None) -> tuple[list[ModuleScore], str]:
    scores, loss = fisher_with_loss(model, probes, targets, folds=config.trials, seed=config.seed, progress=progress)
    if on_module is not None:
        for s in scores:
            on_module(s)
    return scores, loss


FISHER = register(Signal("fisher", "sum of (θ·∂L/∂θ)² for a head-free loss", _score))
