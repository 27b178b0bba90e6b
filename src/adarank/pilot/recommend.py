"""The pilot's answer as files a user can train and serve with: PEFT config, axolotl keys, serving notes.

``write_recommended`` turns the cheapest non-inferior arm (and, when it differs, the best-scoring one)
into three files per folder:

* ``adapter_config.json`` — written by PEFT itself (``LoraConfig.save_pretrained``), so it loads with
  ``LoraConfig.from_pretrained(folder)`` on the PEFT that wrote it and carries every field PEFT expects;
* ``axolotl.yaml`` — the ``lora_*`` keys and ``learning_rate`` a training config takes, at the learning
  rate the pilot tuned for that arm (a rank change moves the best learning rate, so it travels with it);
* ``serving.md`` — the ``--max-lora-rank`` a vLLM server needs (it sizes every adapter slot by it and
  accepts only a few values) and the scale check below.

A server that applies one global LoRA scale (α/r of the served config) to every module gives a
per-module config the wrong scale unless every module's α_i / r_i equals lora_alpha / r. AdaRank's own
export keeps that ratio by construction (``alpha_pattern``), but a hand-made choice may not, and the
resulting adapter would serve differently from how it trained; such a choice is refused.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import AdaRankError
from ..io import atomic_write_text

#: the values vLLM accepts for ``--max-lora-rank`` (it refuses any other)
VLLM_MAX_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)

_REGEX_CHARS = re.compile(r"[\\()\[\]|*+?^$]")


@dataclass(frozen=True)
class AdapterChoice:
    """One arm as a LoRA configuration: base r and alpha, targets, per-module patterns, tuned learning rate."""

    name: str
    r: int
    lora_alpha: float
    target_modules: list[str]
    rank_pattern: dict[str, int]
    alpha_pattern: dict[str, float]
    lr: float
    task_type: str | None


def max_lora_rank(rank: int) -> int:
    """The smallest value vLLM accepts for ``--max-lora-rank`` that covers ``rank``.

    Raises ``AdaRankError`` for a rank below 1 or above vLLM's largest accepted value (512): such an
    adapter cannot be served by it as is.
    """
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise AdaRankError(f"a LoRA rank must be a whole number >= 1, got {rank!r}")
    for value in VLLM_MAX_LORA_RANKS:
        if rank <= value:
            return value
    raise AdaRankError(f"largest rank {rank} exceeds {VLLM_MAX_LORA_RANKS[-1]}, the largest --max-lora-rank vLLM accepts; "
                       "cap the ranks (adarank --max-rank) to serve this adapter with vLLM")


def largest_rank(choice: AdapterChoice) -> int:
    """The largest rank any module can get: the pattern's ranks and the base r (the rank of any module no
    key matches). Conservative when every module has its own key and r is only the average."""
    return max([int(choice.r), *(int(v) for v in choice.rank_pattern.values())])


def _number(value: Any, what: str, choice: str, *, positive: bool = True) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        x = float("nan")
    if not math.isfinite(x) or (positive and x <= 0):
        raise AdaRankError(f"adapter '{choice}': {what} must be a positive finite number, got {value!r}")
    return x


def check_choice(choice: AdapterChoice) -> None:
    """Refuse a choice PEFT or a one-scale server would mis-handle; see the module docstring.

    The scale check runs over every key of ``rank_pattern`` and ``alpha_pattern``: a module matched by a
    key has rank ``rank_pattern.get(key, r)`` and alpha ``alpha_pattern.get(key, lora_alpha)``, and
    their ratio must equal ``lora_alpha / r`` (relative tolerance 1e-9, so a float alpha such as
    2·r_i/r̄·α still passes).
    """
    if isinstance(choice.r, bool) or not isinstance(choice.r, int) or choice.r < 1:
        raise AdaRankError(f"adapter '{choice.name}': r must be a whole number >= 1, got {choice.r!r}")
    alpha = _number(choice.lora_alpha, "lora_alpha", choice.name)
    _number(choice.lr, "the learning rate", choice.name)
    if not choice.target_modules or not all(isinstance(t, str) and t for t in choice.target_modules):
        raise AdaRankError(f"adapter '{choice.name}': target_modules must be a non-empty list of module names")
    for key, rank in choice.rank_pattern.items():
        if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
            raise AdaRankError(f"adapter '{choice.name}': rank_pattern['{key}'] must be a whole number >= 1, got {rank!r}")
    for key, value in choice.alpha_pattern.items():
        _number(value, f"alpha_pattern['{key}']", choice.name)
    scale = alpha / choice.r
    for key in dict.fromkeys([*choice.rank_pattern, *choice.alpha_pattern]):
        r_i = choice.rank_pattern.get(key, choice.r)
        a_i = float(choice.alpha_pattern.get(key, alpha))
        if not math.isclose(a_i / r_i, scale, rel_tol=1e-9):
            raise AdaRankError(
                f"adapter '{choice.name}': module key '{key}' has alpha {a_i:g} at rank {r_i}, a scale of "
                f"{a_i / r_i:.6g}, but lora_alpha / r = {alpha:g}/{choice.r} = {scale:.6g}; a server that applies "
                "one scale to every module would serve it differently from how it trained — set its alpha to "
                f"{scale * r_i:g} (lora_alpha * r_i / r)")


def _targets(choice: AdapterChoice) -> list[str] | str:
    """PEFT's ``target_modules``: a list of names, or the one regex string when the list holds only a regex.

    AdaRank's plan export writes ``target_modules`` as one regex that PEFT full-matches; inside a list PEFT
    would take it as a module name and match nothing, so a single regex entry is passed as the string.
    """
    if len(choice.target_modules) == 1 and _REGEX_CHARS.search(choice.target_modules[0]):
        return choice.target_modules[0]
    return list(choice.target_modules)


def _plain(value: float) -> float | int:
    return int(value) if float(value).is_integer() else float(value)


def lora_config(choice: AdapterChoice) -> Any:
    """The ``peft.LoraConfig`` of ``choice`` (checked first)."""
    from peft import LoraConfig

    check_choice(choice)
    kwargs: dict[str, Any] = {}
    if choice.task_type:
        kwargs["task_type"] = choice.task_type
    try:
        return LoraConfig(r=int(choice.r), lora_alpha=_plain(choice.lora_alpha), target_modules=_targets(choice),
                          rank_pattern={k: int(v) for k, v in choice.rank_pattern.items()},
                          alpha_pattern={k: _plain(v) for k, v in choice.alpha_pattern.items()}, **kwargs)
    except (ValueError, TypeError) as exc:
        raise AdaRankError(f"adapter '{choice.name}': PEFT refuses the configuration: {exc}") from None


def axolotl_yaml(choice: AdapterChoice, config: Any) -> str:
    """The axolotl keys of ``choice``, from the same ``LoraConfig`` the JSON comes from."""
    import yaml

    targets = config.target_modules
    data: dict[str, Any] = {
        "adapter": "lora",
        "lora_r": int(config.r),
        "lora_alpha": _plain(config.lora_alpha),
        "lora_target_modules": targets if isinstance(targets, str) else sorted(targets),
    }
    if config.rank_pattern:
        data["lora_rank_pattern"] = {str(k): int(v) for k, v in config.rank_pattern.items()}
    if config.alpha_pattern:
        data["lora_alpha_pattern"] = {str(k): _plain(v) for k, v in config.alpha_pattern.items()}
    data["learning_rate"] = float(choice.lr)
    head = (f"# adarank pilot: {choice.name}\n"
            "# learning_rate is the one the pilot tuned for this configuration; rank patterns are PEFT's\n"
            "# rank_pattern / alpha_pattern (keys matched alone or after a '.'-separated prefix)\n")
    return head + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def serving_md(choice: AdapterChoice, rank: int, server_rank: int) -> str:
    """How to serve the adapter: the ``--max-lora-rank`` it needs and the one-scale check."""
    scale = float(choice.lora_alpha) / choice.r
    patterned = len(choice.rank_pattern)
    lines = [
        f"# Serving `{choice.name}`",
        "",
        f"- largest rank of any module: **{rank}**",
        (f"- vLLM: `--max-lora-rank {server_rank}` (the smallest value it accepts that covers {rank}; it sizes "
        "every adapter slot by it, so this, not the average rank, sets the adapter's serving memory)"),
        (f"- scale check: every module's alpha_i / r_i equals lora_alpha / r = {_plain(choice.lora_alpha)}/"
        f"{choice.r} = {scale:.6g} ({patterned} per-module rank key(s) checked), so a server applying one "
        "global scale serves the adapter as it was trained"),
        f"- learning rate the pilot tuned for it: {choice.lr:g}",
        "",
        "```",
        f"vllm serve <base-model> --enable-lora --max-lora-rank {server_rank} --lora-modules {choice.name}=<adapter-folder>",
        "```",
        "",
    ]
    return "\n".join(lines)


def _write_one(folder: Path, choice: AdapterChoice) -> dict[str, Any]:
    config = lora_config(choice)
    rank = largest_rank(choice)
    server_rank = max_lora_rank(rank)
    folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder, prefix=".adapter-config-"))
    try:
        config.save_pretrained(str(staging))
        os.replace(staging / "adapter_config.json", folder / "adapter_config.json")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    axolotl = atomic_write_text(folder / "axolotl.yaml", axolotl_yaml(choice, config))
    serving = atomic_write_text(folder / "serving.md", serving_md(choice, rank, server_rank))
    return {"name": choice.name, "folder": str(folder), "adapter_config": str(folder / "adapter_config.json"),
            "axolotl": str(axolotl), "serving": str(serving), "max_rank": rank, "max_lora_rank": server_rank,
            "lr": float(choice.lr)}


def write_recommended(folder: Path, cheapest: AdapterChoice, best: AdapterChoice | None = None) -> dict:
    """Write ``cheapest`` to ``folder`` and ``best`` (when given and different) to ``folder/best``.

    Both choices are checked before anything is written, so a refused ``best`` leaves no half-written
    recommendation. Returns the summary the report shows: for ``cheapest`` its paths, ``max_rank`` and
    ``max_lora_rank`` (and ``lr``), and under ``"best"`` the same for ``best`` or None.
    """
    folder = Path(folder)
    other = best if best is not None and best.name != cheapest.name else None
    for choice in (cheapest, other):
        if choice is not None:
            lora_config(choice)
            max_lora_rank(largest_rank(choice))
    summary = _write_one(folder, cheapest)
    summary["best"] = _write_one(folder / "best", other) if other is not None else None
    if other is None:
        _drop_stale(folder / "best")
    return summary


def _drop_stale(folder: Path) -> None:
    """A ``best/`` left by an earlier run would contradict this one; remove it if it holds only our files."""
    ours = {"adapter_config.json", "axolotl.yaml", "serving.md"}
    if folder.is_dir() and {p.name for p in folder.iterdir()} <= ours:
        for name in ours:
            (folder / name).unlink(missing_ok=True)
        folder.rmdir()
