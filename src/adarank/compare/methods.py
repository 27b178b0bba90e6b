"""Rank allocations to compare in the fine-tuning benchmark.

Every rank-list method starts from the same AdaRank-scored plan (same modules, same shapes) and
only changes the scores the ranks are derived from, so all of them go through the one allocation
code path and the one PEFT export. ``eva`` and ``adalora`` pick their ranks themselves (from data,
or during training); for them :func:`plan_for_method` returns ``None``.

==================  ===========================================================  ===============
method              scores used for allocation                                  rule
==================  ===========================================================  ===============
uniform             all equal (every module gets exactly r̄)                      exact
adarank-floor       AdaRank disagreement (the paper's rule; spends a bit less)   floor
adarank-exact       AdaRank disagreement, budget r̄·M spent exactly               exact
random              uniform(0, 1) from ``Generator(seed + 10_000 * rank)``      exact
linear-depth        block index + 1 (ranks grow linearly with depth)             exact
eva                 (PEFT EVA, data-driven at initialisation)                    -
adalora             (PEFT AdaLoRA, pruned during training)                      -
adarank-power-0.5   AdaRank disagreement ** 0.5 (flatter than adarank-exact)     exact
adarank-power-2     AdaRank disagreement ** 2 (more concentrated)                exact
adarank-rank-order  position of the disagreement in its group (1 = lowest)       exact
adarank-fisher, …   another scored plan (:mod:`adarank.compare.variants`)          exact
==================  ===========================================================  ===============

``adarank-power-*`` and ``adarank-rank-order`` are the score transforms of
:func:`adarank.allocation.allocate_ranks`; the others use ``transform="proportional"`` whatever
transform the scored plan was made with, so a method's name alone says how its ranks were derived.
The variant methods (:data:`VARIANT_METHODS`) allocate like ``adarank-exact`` but from a plan scored
with another signal or other probes, which the caller passes as ``scored``; a plan made otherwise is
refused. :data:`CORE_METHODS` (the first seven) is what the benchmark grid runs by default; the
ablations and variants are run when asked for by name.

The random ablation's generator is seeded with ``seed + 10_000 * rank`` so that different average
ranks of one seed do not reuse the same draw, and the same (seed, rank) always gives the same list.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

import numpy as np

from ..errors import AdaRankError
from ..plan import ModuleEntry, RankPlan
from .variants import VARIANT_METHODS as _VARIANTS
from .variants import PlanVariant, variant_of

#: The benchmark's original methods: the grid's default list.
CORE_METHODS = ("uniform", "adarank-floor", "adarank-exact", "random", "linear-depth", "eva", "adalora")
#: Score-transform ablations of adarank-exact (appended, so existing result keys keep their order).
TRANSFORM_METHODS = ("adarank-power-0.5", "adarank-power-2", "adarank-rank-order")
#: Issue-6 variants: adarank-exact on a plan scored with another signal or other probes.
VARIANT_METHODS = tuple(_VARIANTS)
#: EVA's ranks with PEFT's default init (allocation without EVA's initialisation), and the two
#: references of a decoder study: the base model prompted (no training) and full fine-tuning.
EXTRA_METHODS = ("eva-ranks", "base-model", "full-ft")
METHODS = CORE_METHODS + TRANSFORM_METHODS + VARIANT_METHODS + EXTRA_METHODS

#: Methods whose ranks come from a :class:`RankPlan` (ordinary LoRA with a rank_pattern).
PLAN_METHODS = (("uniform", "adarank-floor", "adarank-exact", "random", "linear-depth") + TRANSFORM_METHODS
                + VARIANT_METHODS)
#: Plan methods that ignore the plan's scores (they only take its modules), so any scored plan will do.
SCORE_FREE = ("uniform", "random", "linear-depth")
#: Methods that allocate ranks themselves inside PEFT.
SELF_ALLOCATING = ("eva", "adalora", "eva-ranks", "base-model", "full-ft")

RANDOM_SEED_STRIDE = 10_000


def check_method(method: str) -> str:
    if method not in METHODS:
        raise AdaRankError(f"unknown method {method!r}; choose one of: {', '.join(METHODS)}")
    return method


def random_scores(n: int, seed: int, rank: int) -> np.ndarray:
    """The random ablation's scores: uniform(0, 1) from ``Generator(seed + 10_000 * rank)``."""
    return np.random.default_rng(seed + RANDOM_SEED_STRIDE * rank).uniform(0.0, 1.0, size=n)


def _with_scores(plan: RankPlan, values: list[float]) -> RankPlan:
    """A copy whose allocation scores are ``values`` (one value per module, no spread)."""
    modules = [replace(m, scores=[float(v)], score_mean=float(v), score_std=0.0)
               for m, v in zip(plan.modules, values)]
    return replace(plan, modules=modules)


def _depth_scores(modules: list[ModuleEntry]) -> list[float]:
    missing = [m.name for m in modules if m.block is None]
    if missing:
        raise AdaRankError(
            f"linear-depth needs every module inside the block stack, but {missing[0]} has no block index; "
            "target modules of the transformer blocks only"
        )
    return [float(m.block) + 1.0 for m in modules]  # type: ignore[operator]


def plan_for_method(method: str, scored: RankPlan, rank: int, seed: int, groups: str = "joint") -> RankPlan | None:
    """The ranks ``method`` gives the modules of ``scored`` at average rank ``rank``.

    ``scored`` is a plan scored by AdaRank on the target modules. Returns a new plan with the same
    modules and their ranks set (and ``settings["method"]``, ``settings["method_seed"]`` and
    ``settings["score_source"]`` recorded), or ``None`` for ``eva`` and ``adalora``, which choose
    their ranks themselves. ``groups`` is ``"joint"`` (one budget for all modules) or ``"type"``
    (one budget per module type); it applies to every rank-list method.
    """
    check_method(method)
    if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or rank < 1:
        raise AdaRankError(f"rank must be an integer >= 1, got {rank!r}")
    rank = int(rank)
    if groups not in ("joint", "type"):
        raise AdaRankError(f"groups must be 'joint' or 'type', got {groups!r}")
    if method in SELF_ALLOCATING:
        return None
    if not scored.modules:
        raise AdaRankError("the scored plan lists no modules; re-run `adarank predict`")

    if method not in SCORE_FREE:
        _check_variant(method, scored)
    n = len(scored.modules)
    # (scored plan to allocate from, rule, score source, transform, power)
    builders: dict[str, tuple[Callable[[], RankPlan], str, str, str, float]] = {
        "uniform": (lambda: _with_scores(scored, [1.0] * n), "exact", "equal", "proportional", 1.0),
        "adarank-floor": (lambda: scored, "floor", "adarank", "proportional", 1.0),
        "adarank-exact": (lambda: scored, "exact", "adarank", "proportional", 1.0),
        "random": (lambda: _with_scores(scored, random_scores(n, seed, rank).tolist()), "exact",
                   f"uniform(0,1) from numpy Generator(seed + {RANDOM_SEED_STRIDE}*rank)", "proportional", 1.0),
        "linear-depth": (lambda: _with_scores(scored, _depth_scores(scored.modules)), "exact", "block index + 1",
                         "proportional", 1.0),
        "adarank-power-0.5": (lambda: scored, "exact", "adarank ** 0.5", "power", 0.5),
        "adarank-power-2": (lambda: scored, "exact", "adarank ** 2", "power", 2.0),
        "adarank-rank-order": (lambda: scored, "exact", "rank order of adarank", "rank-order", 1.0),
    }
    for name in VARIANT_METHODS:
        builders[name] = (lambda: scored, "exact", f"adarank plan variant {variant_of(name).name}", "proportional", 1.0)
    build, rule, source, transform, power = builders[method]
    # Uniform is r̄ everywhere by definition, whatever unit or clamps the scored plan was made with;
    # the other methods keep the scored plan's unit and clamps, so they share one budget definition.
    fixed = {"unit": "ranks", "min_rank": 0, "max_rank": None} if method == "uniform" else {}
    plan = build().reallocate(rank=rank, rule=rule, groups=groups, transform=transform, power=power, **fixed)
    settings = dict(plan.settings)
    settings.update({"method": method, "method_seed": int(seed), "score_source": source})
    return replace(plan, settings=settings)


def _check_variant(method: str, scored: RankPlan) -> None:
    """Refuse a scored plan made with another signal or other probes than ``method`` stands for."""
    want, made = variant_of(method), PlanVariant.of_plan(scored.settings)
    if made != want:
        raise AdaRankError(
            f"method {method!r} needs a plan scored with {want.describe()}, "
            f"but the plan given was scored with {made.describe()}; pass the matching plan"
        )
