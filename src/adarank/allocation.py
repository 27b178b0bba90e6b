"""Turn per-module importance scores into integer LoRA ranks under a budget (docs/method.md §3).

Everything here is a pure function of its arguments: no torch, no randomness, no global state, so a
rank plan can be recomputed from a stored importance vector for any new budget without re-probing
the model.

Vocabulary
----------
* **group** – a set of modules sharing one budget. One group per module type reproduces the
  paper's per-type lists; a single joint group lets types with higher scores take budget from the
  others. Groups never exchange budget.
* **unit** – what the budget counts. ``"ranks"``: the group's budget is ``rank * M_g`` rank units
  (the paper). ``"params"``: the budget is ``rank * sum(costs)`` parameters, where ``costs[i]`` is
  what one unit of rank costs in module ``i`` (``d_in + d_out``), so "same number of parameters as
  uniform LoRA of rank ``rank``" holds even when modules differ in shape.
* **transform** – what the shares are proportional to. ``"proportional"``: the scores themselves
  (the paper). ``"power"``: ``s ** power`` (tempered: ``power > 1`` concentrates the budget on the
  top modules, ``power < 1`` flattens it). ``"rank-order"``: the 1-based position of each score in
  its group sorted ascending (ties share the average position), so only the order of the scores
  matters, not their spread. The transform is applied per group; everything after it (clamps,
  units, rules) is the same for all transforms.
* **rule** – how the continuous proportional share becomes an integer. ``"floor"`` is the paper's
  rule (it under-spends the budget by a few percent); ``"exact"`` adds largest-remainder rounding so
  that the budget is spent exactly (ranks unit) or as nearly as whole ranks allow (params unit).

Numerics
--------
The unclamped floor rule is evaluated literally as ``floor((rank * M_g) * s_i / sum(s))`` in float64
because the paper's rank lists (docs/method.md §4) come from exactly that expression, and a
mathematically equivalent reordering could move a value across an integer boundary and change a
rank. Sums use :func:`math.fsum` (correctly rounded), so the result does not depend on the order of
the modules. Scores are first rescaled by a power of two so that the largest is in ``[0.5, 1)``:
that is exact in floating point, so it changes no result, and it keeps ``rank * M * s_i`` from
overflowing for huge scores and makes the output exactly invariant to rescaling the scores by
powers of two. A share that is an integer up to a few ulps (``(3 * s) / s`` can come out as
2.9999999999999996) is moved onto that integer before flooring, so rounding noise never costs a
module a whole unit of rank.

The work is split by job: :mod:`adarank.allocation_inputs` (input checks),
:mod:`adarank.water_filling` (the continuous shares), :mod:`adarank.rounding` (integer rules),
:mod:`adarank.rank_allocation` (``allocate_ranks``) and :mod:`adarank.width_budget` (module widths);
this module keeps the public names in one place.
"""

from __future__ import annotations

from .rank_allocation import Allocation, Rule, Transform, Unit, allocate_ranks, budget_line, uniform_ranks
from .width_budget import allocate_within_widths, check_width_budget

__all__ = [
    "Allocation",
    "Rule",
    "Transform",
    "Unit",
    "allocate_ranks",
    "allocate_within_widths",
    "budget_line",
    "check_width_budget",
    "uniform_ranks",
]
