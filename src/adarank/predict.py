"""``predict_ranks``: targets + probes + scoring + allocation, as one call that returns a RankPlan."""

from __future__ import annotations

import time
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

from torch import nn

from .checkpoint import Checkpoint, fingerprint
from .errors import AdaRankError
from .distributed import gather, rank_and_world, shard
from .plan import Budget, RankPlan, entries_from_scores
from .plan_notes import warn_about
from .probes import ProbeBatch, ProbeSet, builtin_probes, check_takes_text, probes_from_texts, tokenize_probes
from .scoring import ModuleScore, ScoreConfig
from .signals import SIGNALS, check_signal, score_by_signal
from .targets import select_targets


def predict_ranks(
    model: nn.Module,
    tokenizer: Any = None,
    *,
    targets: str | Sequence[str] = "all-linear",
    probes: ProbeSet | ProbeBatch | Sequence[str] | None = None,
    budget: Budget | None = None,
    score_config: ScoreConfig | None = None,
    signal: str = "disagreement",
    max_length: int | None = None,
    model_name: str | None = None,
    progress: bool = True,
    on_module: Callable[[ModuleScore], None] | None = None,
    extra_settings: dict[str, Any] | None = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = True,
    **settings: Any,
) -> RankPlan:
    """Score ``targets`` of ``model`` on ``probes`` and allocate ranks of average ``rank``.

    The budget and scoring settings are the fields of :class:`adarank.plan.Budget` (``rank``,
    ``rule``, ``unit``, ``groups``, ``min_rank``, ``max_rank``, ``transform``, ``power``) and of
    :class:`adarank.scoring.ScoreConfig` (``trials``, ``noise_scale``, ``compare``, ``output``,
    ``seed``, ``engine``, ``max_batch``, ``prefix_replay``, ``distance``): give them as keyword
    arguments (``rank=8, trials=5, rule="floor"``), or as ``budget=`` / ``score_config=`` objects,
    or both. A keyword that sets a field the object already sets to another non-default value is
    refused rather than resolved silently; an unknown keyword is an error naming the valid ones.

    ``probes`` is a list of texts, a :class:`ProbeSet`, an already tokenised :class:`ProbeBatch`
    (then no tokenizer is needed), or None for the built-in sentences. Budget and clamp problems
    are checked before the (long) scoring starts.

    With ``checkpoint_dir``, each finished module is saved there as it completes; a later call with
    the same settings (``resume=True``) scores only the modules still missing and returns the same
    plan an uninterrupted run would. The checkpoint file stays until the caller has saved the plan
    (the CLI deletes it right after writing ``plan.json``), so no crash can lose finished work.
    Under ``torch.distributed`` (torchrun), each process scores every world-size-th module and
    every process returns the full plan.

    ``signal`` picks the importance signal (:data:`adarank.signals.SIGNALS`): ``disagreement`` (the
    paper), ``fisher``, ``representation`` or ``combined``. ``combined`` ranks modules against each
    other, so it always scores every target in every process and ignores finished modules in a
    checkpoint.

    Zero-score modules, groups whose scores are all equal, and ranks cut at a module's width are
    logged as warnings (logger ``adarank``) that name the modules.
    """
    check_signal(signal)
    budget_kw, score_kw = route_settings(settings)
    config = with_settings(score_config, ScoreConfig, score_kw, "score_config")
    budget = with_settings(budget, Budget, budget_kw, "budget")
    check_takes_text(model)
    found = select_targets(model, targets)
    # Validate the budget on dummy scores first: an impossible budget must not cost a scoring run.
    RankPlan.allocate("check", {}, entries_from_scores([_Dummy(t) for t in found]), budget)

    if isinstance(probes, ProbeBatch):
        batch, description = probes, f"pre-tokenised:{len(probes)} examples"
    else:
        if probes is None:
            probe_set = builtin_probes()
        elif isinstance(probes, ProbeSet):
            probe_set = probes
        else:
            probe_set = probes_from_texts(list(probes))
        if tokenizer is None:
            raise TypeError("predict_ranks needs a tokenizer to encode text probes (or pass a ProbeBatch)")
        batch, description = tokenize_probes(tokenizer, probe_set, max_length), probe_set.description

    param = next(model.parameters())
    name = model_name or getattr(getattr(model, "config", None), "_name_or_path", "") or type(model).__name__
    process, world = rank_and_world()  # not `rank`: that name is the average LoRA rank
    done: dict[str, list[float]] = {}
    ckpt = None
    if checkpoint_dir is not None:
        ckpt = Checkpoint(checkpoint_dir, rank=process, world=world)
        fp = fingerprint(name, found, config, batch, str(param.dtype), param.device.type, signal=signal)
        done = ckpt.start({**fp, "world_size": world}, resume)

    def record(result: ModuleScore) -> None:
        if ckpt is not None:
            ckpt.add(result)
        if on_module is not None:
            on_module(result)

    start = time.perf_counter()
    whole = not SIGNALS[signal].per_module  # its scores depend on every module: no sharding, no resume
    mine = found if whole else shard(found, process, world)
    todo = [t for t in mine if t.name not in done or whole]
    fresh, output = score_by_signal(signal, model, batch, todo, config, progress=progress and process == 0,
                                    on_module=record)
    elapsed = time.perf_counter() - start
    by_name = {r.target.name: r for r in fresh}
    finished = [by_name.get(t.name) or ModuleScore(t, done[t.name]) for t in mine]
    by_name = {r.target.name: r for r in gather(finished, world)}
    scores = [by_name[t.name] for t in found]
    resumed = sum(gather([len(mine) - len(todo)], world))
    settings: dict[str, Any] = {
        "signal": signal,
        "targets": targets if isinstance(targets, str) else list(targets),
        **asdict(config),
        "output": output,
        "probe": description,
        "probe_examples": len(batch),
        "probe_truncated": batch.truncated,
        "dtype": str(param.dtype).replace("torch.", ""),
        "device": str(param.device),
        "scoring_seconds": round(elapsed, 3),
        "resumed_modules": resumed,
        "world_size": world,
    }
    settings.update(extra_settings or {})
    plan = RankPlan.allocate(name, settings, entries_from_scores(scores), budget)
    warn_about(plan)
    return plan


def route_settings(settings: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split keyword settings into (budget fields, scoring fields) by field name."""
    budget_names, score_names = Budget.settings(), tuple(f.name for f in fields(ScoreConfig))
    unknown = sorted(set(settings) - set(budget_names) - set(score_names))
    if unknown:
        raise AdaRankError(f"predict_ranks got unknown setting(s) {', '.join(unknown)}; the budget settings are "
                           f"{', '.join(budget_names)} and the scoring settings are {', '.join(score_names)}")
    return ({k: v for k, v in settings.items() if k in budget_names},
            {k: v for k, v in settings.items() if k in score_names})


Config = TypeVar("Config", Budget, ScoreConfig)


def with_settings(base: Config | None, cls: type[Config], changes: dict[str, Any], what: str) -> Config:
    """``base`` (or the defaults) with ``changes`` applied; a change that contradicts a value ``base``
    set on purpose (not the default) is an error: the caller said two things, and neither wins."""
    if base is None:
        return cls(**changes)
    default = cls()
    for key, value in changes.items():
        mine = getattr(base, key)
        if mine != value and mine != getattr(default, key):
            raise AdaRankError(f"{key}={value!r} and {what}.{key}={mine!r} disagree; give the {key} once")
    return replace(base, **changes) if changes else base


class _Dummy:
    """A stand-in score (all equal) used to validate a budget before scoring."""

    def __init__(self, target: Any) -> None:
        self.target, self.scores, self.mean, self.std = target, [1.0], 1.0, 0.0
