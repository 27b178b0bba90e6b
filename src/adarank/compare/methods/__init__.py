"""Rank allocations to compare in the fine-tuning benchmark, one module per method or family.

Every plan and score-free method starts from the same AdaRank-scored plan (same modules, same
shapes) and only changes the scores the ranks are derived from, so all of them go through the one
allocation code path and the one PEFT export. ``eva`` and ``adalora`` pick their ranks themselves
(from data, or during training); for them :func:`plan_for_method` returns ``None``.

==================  ===========================================================  ===============
method              scores used for allocation                                  rule
==================  ===========================================================  ===============
uniform             all equal (every module gets exactly r̄)                      exact
adarank-floor       AdaRank disagreement (the paper's rule; spends a bit less)   floor
adarank-exact       AdaRank disagreement, budget r̄·M spent exactly               exact
random              uniform(0, 1) from ``Generator(seed + 10_000 * rank)``      exact
linear-depth        block index + 1 (ranks grow linearly with depth)             exact
eva                 (PEFT EVA, data-driven at initialisation)                    -
eva-ranks           EVA's ranks from the same SVD, PEFT's default LoRA init      -
adalora             (PEFT AdaLoRA, pruned during training)                      -
adarank-power-0.5   AdaRank disagreement ** 0.5 (flatter than adarank-exact)     exact
adarank-power-2     AdaRank disagreement ** 2 (more concentrated)                exact
adarank-rank-order  position of the disagreement in its group (1 = lowest)       exact
adarank-fisher, …   another scored plan (:mod:`.variants`)                       exact
base-model          reference: no training, the base model prompted              -
full-ft             reference: every weight trained, no LoRA                     -
==================  ===========================================================  ===============

To add a method, write a module here that calls :func:`register` with a :class:`Method` and
import it below: the grid's ``--methods``, its default list, the trainer, the report's order and
the decision rule's candidates all read the registry. A plan method is refused a scored plan made
with another signal or other probes than its :attr:`Method.variant`.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ...errors import AdaRankError
from ...plan import RankPlan
from .registry import REGISTRY, Method, Names, PlanVariant, check_method, listed, register, variant_of

# The built-in methods; the core ones are listed in this order.
from . import uniform, adarank, random, linear_depth, eva, adalora, variants, eva_ranks, references  # noqa: E402,F401  isort: skip
from .adarank import TRANSFORM_METHODS  # noqa: E402
from .random import RANDOM_SEED_STRIDE, random_scores  # noqa: E402
from .variants import TASK_PROBE_SEED, VARIANT_METHODS, sample_texts  # noqa: E402

#: Every method, core first (live views of the registry: a method registered later is in them).
METHODS = Names(lambda m: True)
#: The grid's default list (the benchmark's original seven), also the report's leading order.
CORE_METHODS = Names(lambda m: m.core)
#: Methods whose ranks come from a :class:`RankPlan` (ordinary LoRA with a rank_pattern).
PLAN_METHODS = Names(lambda m: m.kind in ("plan", "score-free"))
#: Plan methods that ignore the plan's scores (they only take its modules), so any scored plan will do.
SCORE_FREE = Names(lambda m: m.kind == "score-free")
#: Methods that allocate ranks themselves inside PEFT.
SELF_ALLOCATING = Names(lambda m: m.kind == "self-allocating")
#: References that train no LoRA: the base model prompted, and full fine-tuning.
REFERENCE_METHODS = Names(lambda m: m.kind == "reference")
#: Methods that derive ranks from a plan's scores: the decision rule's default candidates.
SCORED_METHODS = Names(lambda m: m.kind == "plan")


def plan_for_method(method: str, scored: RankPlan, rank: int, seed: int, groups: str = "joint") -> RankPlan | None:
    """The ranks ``method`` gives the modules of ``scored`` at average rank ``rank``.

    ``scored`` is a plan scored by AdaRank on the target modules. Returns a new plan with the same
    modules and their ranks set (and ``settings["method"]``, ``settings["method_seed"]`` and
    ``settings["score_source"]`` recorded), or ``None`` for a self-allocating method. ``groups`` is
    ``"joint"`` (one budget for all modules) or ``"type"`` (one budget per module type); it applies
    to every rank-list method.
    """
    check_method(method)
    if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or rank < 1:
        raise AdaRankError(f"rank must be an integer >= 1, got {rank!r}")
    rank = int(rank)
    if groups not in ("joint", "type"):
        raise AdaRankError(f"groups must be 'joint' or 'type', got {groups!r}")
    entry = REGISTRY[method]
    if entry.plan_for is None:
        return None
    if not scored.modules:
        raise AdaRankError("the scored plan lists no modules; re-run `adarank predict`")
    if entry.kind == "plan":
        _check_variant(entry, scored)
    plan = entry.plan_for(scored, rank, int(seed), groups)
    settings = dict(plan.settings)
    settings.update({"method": method, "method_seed": int(seed), "score_source": entry.source})
    return replace(plan, settings=settings)


def _check_variant(method: Method, scored: RankPlan) -> None:
    """Refuse a scored plan made with another signal or other probes than ``method`` stands for."""
    made = PlanVariant.of_plan(scored.settings)
    if made != method.variant:
        raise AdaRankError(
            f"method {method.name!r} needs a plan scored with {method.variant.describe()}, "
            f"but the plan given was scored with {made.describe()}; pass the matching plan"
        )


def report_order() -> tuple[str, ...]:
    """The methods a report lists first, in this order; any other method follows, by name."""
    return tuple(CORE_METHODS)


__all__ = ["CORE_METHODS", "METHODS", "Method", "PLAN_METHODS", "PlanVariant", "RANDOM_SEED_STRIDE", "REFERENCE_METHODS", "REGISTRY",
           "SCORED_METHODS", "SCORE_FREE", "SELF_ALLOCATING", "TASK_PROBE_SEED", "TRANSFORM_METHODS",
           "VARIANT_METHODS", "check_method", "listed", "plan_for_method", "random_scores", "register",
           "report_order", "sample_texts", "variant_of"]
