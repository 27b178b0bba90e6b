"""Which modules of a model get a rank: PEFT-style patterns resolved to typed, indexed targets.

A target knows its *type* (its name inside a transformer block, e.g. ``attention.self.value``) and
its *block* index, because rank allocation groups modules by type and plots them by block.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import torch
from torch import nn

from .errors import AdaRankError

try:  # GPT-2 style layers store the weight transposed: (d_in, d_out)
    from transformers.pytorch_utils import Conv1D
except ImportError:  # pragma: no cover - transformers is a hard dependency
    Conv1D = ()  # type: ignore[assignment]

ALL_LINEAR = "all-linear"


@dataclass(frozen=True)
class Target:
    """One adaptable module, named as in the model it was found in."""

    name: str
    type: str
    block: int | None
    shape: tuple[int, int]  # (d_out, d_in), whatever the storage layout
    kind: str  # "linear" or "conv1d"
    aliases: tuple[str, ...] = field(default=())  # other names of the same module object

    @property
    def cost(self) -> int:
        """LoRA parameters per unit of rank: A is r x d_in, B is d_out x r."""
        return self.shape[0] + self.shape[1]


def is_adaptable(module: nn.Module) -> bool:
    return isinstance(module, nn.Linear) or (bool(Conv1D) and isinstance(module, Conv1D))


def linear_shape(module: nn.Module) -> tuple[int, int]:
    """(d_out, d_in) of a Linear or a transposed Conv1D."""
    w = module.weight
    if isinstance(module, nn.Linear):
        return int(w.shape[0]), int(w.shape[1])
    return int(w.shape[1]), int(w.shape[0])


def find_block_stack(model: nn.Module) -> tuple[str, nn.ModuleList] | None:
    """The model's stack of repeated blocks (``encoder.layer``, ``h``, ``model.layers``...).

    Chosen structurally, not by name, so it works for architectures this code has never seen: the
    ``ModuleList`` of two or more children of one class that holds the most parameters.
    """
    best: tuple[int, str, nn.ModuleList] | None = None
    for name, module in model.named_modules():
        if not isinstance(module, nn.ModuleList) or len(module) < 2:
            continue
        classes = {type(child) for child in module}
        if len(classes) != 1:
            continue
        if not any(is_adaptable(m) for m in module[0].modules()):
            continue
        size = sum(p.numel() for p in module.parameters())
        if best is None or size > best[0]:
            best = (size, name, module)
    return None if best is None else (best[1], best[2])


def _type_and_block(name: str, stack_prefix: str | None) -> tuple[str, int | None]:
    if stack_prefix is not None:
        head = f"{stack_prefix}." if stack_prefix else ""
        if name.startswith(head):
            index, _, rest = name[len(head):].partition(".")
            if index.isdigit() and rest:
                return rest, int(index)
    return name, None


def _output_head_names(model: nn.Module) -> set[str]:
    get = getattr(model, "get_output_embeddings", None)
    head = get() if callable(get) else None
    if head is None:
        return set()
    return {n for n, m in model.named_modules() if m is head}


def adaptable_modules(model: nn.Module) -> tuple[list[tuple[str, nn.Module]], dict[str, tuple[str, ...]]]:
    """Every adaptable module once; a module reachable under two names keeps its first name."""
    seen: dict[int, int] = {}
    out: list[tuple[str, nn.Module, list[str]]] = []
    for name, module in model.named_modules(remove_duplicate=False):
        if not name or not is_adaptable(module):
            continue
        if id(module) in seen:
            out[seen[id(module)]][2].append(name)
            continue
        seen[id(module)] = len(out)
        out.append((name, module, []))
    return [(n, m) for n, m, _ in out], {n: tuple(a) for n, _, a in out}


def _suggest(pattern: str, names: Iterable[str]) -> str:
    pool = sorted(set(names))
    short = sorted({n.split(".")[-1] for n in pool})
    close = difflib.get_close_matches(pattern, pool, n=3, cutoff=0.5)
    close += [s for s in difflib.get_close_matches(pattern.split(".")[-1], short, n=3, cutoff=0.5)
              if s not in close]
    if close:
        return "closest existing names: " + ", ".join(close[:5])
    return "linear modules are named like: " + ", ".join(short[:8])


def matches_key(name: str, key: str) -> bool:
    """PEFT's rule for a ``target_modules`` list entry: the exact name or a ``.``-suffix of it."""
    return name == key or name.endswith("." + key)


def is_encoder_decoder(model: nn.Module) -> bool:
    """T5, BART and their kin: an encoder stack and a decoder stack side by side.

    Checked structurally as well as by the config flag, because the flag is not reliable across
    head classes (``T5ForConditionalGeneration`` can carry ``is_encoder_decoder=False``).
    """
    if getattr(getattr(model, "config", None), "is_encoder_decoder", False):
        return True
    return any({"encoder", "decoder"} <= {n for n, _ in m.named_children()} for m in model.modules())


def refuse_encoder_decoder(model: nn.Module) -> None:
    """Encoder-decoder models are refused rather than half-scored.

    Their forward needs decoder inputs (without them transformers raises a ValueError), and only one
    block stack is recognised, so ``all-linear`` would silently cover the decoder alone.
    """
    if is_encoder_decoder(model):
        raise AdaRankError(
            f"{type(model).__name__} is an encoder-decoder model, which adarank does not score (its forward needs "
            "decoder inputs and its two block stacks would be ranked as one); score a decoder-only or an encoder "
            "model, e.g. T5's encoder alone as transformers.T5EncoderModel through the Python API"
        )


def select_targets(
    model: nn.Module,
    targets: str | Sequence[str] = ALL_LINEAR,
    *,
    require_float: bool = True,
) -> list[Target]:
    """Resolve PEFT-style ``targets`` to the modules to score, in model order.

    ``targets`` is ``"all-linear"`` (every Linear/Conv1D inside the block stack; heads and poolers
    outside it are left out because fine-tuning usually replaces them), a list of names or
    name suffixes (``["query", "value"]``), or a single string taken as a regular expression that
    must match whole names, as in PEFT. Every list entry must match at least one linear module: a
    pattern that silently matches nothing would turn a comparison into plain uniform LoRA.
    Encoder-decoder models are refused (:func:`refuse_encoder_decoder`).
    """
    refuse_encoder_decoder(model)
    found, aliases = adaptable_modules(model)
    stack = find_block_stack(model)
    prefix = stack[0] if stack else None
    all_names = [n for n, _ in model.named_modules() if n]

    if isinstance(targets, str) and targets.lower() == ALL_LINEAR:
        heads = _output_head_names(model)
        chosen = [(n, m) for n, m in found if n not in heads]
        if prefix is not None:
            in_stack = [(n, m) for n, m in chosen if _type_and_block(n, prefix)[1] is not None]
            chosen = in_stack or chosen
    elif isinstance(targets, str):
        try:
            rx = re.compile(targets)
        except re.error as exc:
            raise AdaRankError(f"target regex '{targets}' is invalid ({exc}); fix the expression") from None
        chosen = [(n, m) for n, m in found if any(rx.fullmatch(a) for a in (n, *aliases[n]))]
        if not chosen:
            hit = [n for n in all_names if rx.fullmatch(n)]
            if hit:
                raise AdaRankError(
                    f"target regex '{targets}' matches only non-linear modules (e.g. {hit[0]}, "
                    f"a {type(dict(model.named_modules())[hit[0]]).__name__}); target Linear/Conv1D layers"
                )
            raise AdaRankError(
                f"target regex '{targets}' matches no module (it must match whole names); "
                + _suggest(targets, [n for n, _ in found])
            )
    else:
        keys = [str(k).strip() for k in targets if str(k).strip()]
        if not keys:
            raise AdaRankError("no target modules given; pass names such as 'query,value' or 'all-linear'")
        chosen = []
        for key in keys:
            hits = [(n, m) for n, m in found if any(matches_key(a, key) for a in (n, *aliases[n]))]
            if not hits:
                other = [n for n in all_names if matches_key(n, key)]
                if other:
                    kind = type(dict(model.named_modules())[other[0]]).__name__
                    raise AdaRankError(
                        f"target '{key}' matches only non-linear modules (e.g. {other[0]}, a {kind}); "
                        "target Linear/Conv1D layers"
                    )
                raise AdaRankError(f"target '{key}' matches no module; " + _suggest(key, [n for n, _ in found]))
            chosen.extend(hits)
        order = {n: i for i, (n, _) in enumerate(found)}
        chosen = sorted(dict(chosen).items(), key=lambda nm: order[nm[0]])

    if not chosen:
        raise AdaRankError("the model has no Linear or Conv1D module to adapt")
    out: list[Target] = []
    for name, module in chosen:
        weight = module.weight
        if require_float and not (isinstance(weight, torch.Tensor) and weight.dtype.is_floating_point):
            raise AdaRankError(
                f"module '{name}' has {weight.dtype} weights (quantized or integer); "
                "score a floating-point copy of the model (load it without quantization)"
            )
        type_, block = _type_and_block(name, prefix)
        kind = "linear" if isinstance(module, nn.Linear) else "conv1d"
        out.append(Target(name, type_, block, linear_shape(module), kind, aliases.get(name, ())))
    return out


def describe_targets(targets: Sequence[Target]) -> str:
    """A table of types (rows) by blocks (columns): what ``adarank inspect`` prints."""
    types = list(dict.fromkeys(t.type for t in targets))
    blocks = sorted({t.block for t in targets if t.block is not None})
    lines = []
    width = max(len(t) for t in types)
    shapes = {t.type: t.shape for t in targets}
    if blocks:
        header = f"{'module type':<{width}}  {'shape (out x in)':>16}  blocks"
        lines.append(header)
        for ty in types:
            bs = [t.block for t in targets if t.type == ty and t.block is not None]
            span = _ranges(bs) if bs else "-"
            d_out, d_in = shapes[ty]
            lines.append(f"{ty:<{width}}  {f'{d_out} x {d_in}':>16}  {span}")
    else:
        for t in targets:
            lines.append(f"{t.name:<{width}}  {t.shape[0]} x {t.shape[1]}")
    lines.append(f"{len(targets)} modules in {len(types)} types" + (f" over {len(blocks)} blocks" if blocks else ""))
    return "\n".join(lines)


def _ranges(values: Sequence[int]) -> str:
    vals = sorted(set(values))
    parts, start, prev = [], vals[0], vals[0]
    for v in vals[1:] + [None]:  # type: ignore[list-item]
        if v is not None and v == prev + 1:
            prev = v
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if v is not None:
            start = prev = v
    return ",".join(parts)
