"""``predict_ranks``: targets + probes + scoring + allocation, as one call that returns a RankPlan."""

from __future__ import annotations

import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Callable, Sequence

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
    rank: float = 8,
    targets: str | Sequence[str] = "all-linear",
    probes: ProbeSet | ProbeBatch | Sequence[str] | None = None,
    rule: str = "floor",
    unit: str = "ranks",
    groups: str = "type",
    min_rank: int = 0,
    max_rank: int | None = None,
    transform: str = "proportional",
    power: float = 1.0,
    score_config: ScoreConfig | None = None,
    max_length: int | None = None,
    model_name: str | None = None,
    progress: bool = True,
    on_module: Callable[[ModuleScore], None] | None = None,
    extra_settings: dict[str, Any] | None = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = True,
    signal: str = "disagreement",
    seed: int | None = None,
) -> RankPlan:
    """Score ``targets`` of ``model`` on ``probes`` and allocate ranks of average ``rank``.

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

    ``seed`` sets the seed of ``score_config`` (or of the default one). A ``score_config`` that
    sets another seed of its own, not the default 0, is refused rather than resolved silently.

    Zero-score modules, groups whose scores are all equal, and ranks cut at a module's width are
    logged as warnings (logger ``adarank``) that name the modules.
    """
    check_signal(signal)
    config = _with_seed(score_config, seed)
    budget = Budget(rank=rank, unit=unit, rule=rule, groups=groups, min_rank=min_rank, max_rank=max_rank,  # type: ignore[arg-type]
                    transform=transform, power=power)  # type: ignore[arg-type]
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


def _with_seed(config: ScoreConfig | None, seed: int | None) -> ScoreConfig:
    if seed is None:
        return config or ScoreConfig()
    if config is not None and config.seed not in (seed, ScoreConfig().seed):
        raise AdaRankError(f"seed={seed} and score_config.seed={config.seed} disagree; give the seed once")
    return replace(config or ScoreConfig(), seed=seed)


class _Dummy:
    """A stand-in score (all equal) used to validate a budget before scoring."""

    def __init__(self, target: Any) -> None:
        self.target, self.scores, self.mean, self.std = target, [1.0], 1.0, 0.0
