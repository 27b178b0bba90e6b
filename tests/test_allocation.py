"""Tests for adarank.allocation: the paper's oracle, budget arithmetic, clamps, and invariants."""

from __future__ import annotations

import math
from collections import defaultdict

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from adarank.allocation import Allocation, allocate_ranks, budget_line, uniform_ranks
from adarank.errors import AdaRankError

# --------------------------------------------------------------------------------------------------
# docs/method.md §4: mean disagreement per layer of bert-base-cased (the authors' notebook) and the rank
# lists the paper derives from it with the floor rule at r̄ = 8. These are facts from the paper.
# --------------------------------------------------------------------------------------------------

DISAGREEMENT = {
    "query": [.083, .139, .152, .156, .190, .236, .262, .283, .311, .321, .335, .335],
    "key": [.034, .077, .132, .161, .201, .235, .252, .287, .330, .337, .332, .336],
    "value": [.107, .267, .511, .650, .660, .621, .591, .613, .602, .726, .723, .570],
    "dense": [.338, .463, .508, .512, .553, .594, .555, .595, .578, .598, .587, .423],
}
TYPES = ["query", "key", "value", "dense"]

PER_TYPE_R8 = {
    "query": [2, 4, 5, 5, 6, 8, 8, 9, 10, 10, 11, 11],
    "key": [1, 2, 4, 5, 7, 8, 8, 10, 11, 11, 11, 11],
    "value": [1, 3, 7, 9, 9, 8, 8, 8, 8, 10, 10, 8],
    "dense": [5, 7, 7, 7, 8, 9, 8, 9, 8, 9, 8, 6],
}
PER_TYPE_SUMS_R8 = {"query": 89, "key": 89, "value": 89, "dense": 91}

JOINT_R8 = (
    [1, 2, 3, 3, 3, 4, 5, 5, 6, 6, 6, 6]
    + [0, 1, 2, 3, 4, 4, 5, 5, 6, 7, 6, 6]
    + [2, 5, 10, 13, 13, 12, 12, 12, 12, 15, 15, 11]
    + [7, 9, 10, 10, 11, 12, 11, 12, 12, 12, 12, 8]
)
JOINT_SUM_R8 = 357

ALL_SCORES = [d for t in TYPES for d in DISAGREEMENT[t]]
ALL_TYPES = [t for t in TYPES for _ in range(12)]


def _by_group(values, labels):
    out = defaultdict(list)
    for v, g in zip(values, labels):
        out[g].append(v)
    return out


# --------------------------------------------------------------------------------------------------
# oracle
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("t", TYPES)
def test_oracle_single_type_floor_r8(t):
    alloc = allocate_ranks(DISAGREEMENT[t], 8)
    assert alloc.ranks == PER_TYPE_R8[t]
    assert alloc.used == sum(alloc.ranks) == PER_TYPE_SUMS_R8[t]
    assert alloc.total == 96


def test_oracle_per_type_groups_floor_r8():
    alloc = allocate_ranks(ALL_SCORES, 8, rule="floor", groups=ALL_TYPES)
    assert alloc.ranks == [r for t in TYPES for r in PER_TYPE_R8[t]]
    sums = {t: sum(v) for t, v in _by_group(alloc.ranks, ALL_TYPES).items()}
    assert sums == PER_TYPE_SUMS_R8
    assert alloc.used == 89 + 89 + 89 + 91
    assert alloc.total == 4 * 96


def test_oracle_joint_group_floor_r8():
    alloc = allocate_ranks(ALL_SCORES, 8)
    assert alloc.ranks == JOINT_R8
    assert alloc.used == JOINT_SUM_R8
    assert alloc.total == 384
    assert budget_line(alloc, "ranks") == "used 357 of 384 rank units (93.0%)"


def test_oracle_survives_non_binding_clamps():
    # min_rank=0 / max_rank large do not bind, so the literal formula must come out unchanged.
    assert allocate_ranks(ALL_SCORES, 8, min_rank=0, max_rank=None).ranks == JOINT_R8
    # the largest continuous shares are 15.1 (joint) and 11.9 (per type): caps above them are idle
    assert allocate_ranks(ALL_SCORES, 8, max_rank=16).ranks == JOINT_R8
    grouped = allocate_ranks(ALL_SCORES, 8, groups=ALL_TYPES, max_rank=12)
    assert grouped.ranks == [r for t in TYPES for r in PER_TYPE_R8[t]]


def test_oracle_params_unit_with_equal_costs_matches_ranks_unit():
    # bert-base: every attention projection is 768 x 768, so every module costs 1536 per rank.
    costs = [1536] * 48
    alloc = allocate_ranks(ALL_SCORES, 8, unit="params", costs=costs)
    assert alloc.ranks == JOINT_R8
    assert alloc.used == JOINT_SUM_R8 * 1536
    assert alloc.total == 384 * 1536
    grouped = allocate_ranks(ALL_SCORES, 8, unit="params", costs=costs, groups=ALL_TYPES)
    assert grouped.ranks == [r for t in TYPES for r in PER_TYPE_R8[t]]


@pytest.mark.parametrize("rbar", [2, 4, 8, 16])
def test_exact_rule_spends_budget_exactly_on_oracle(rbar):
    joint = allocate_ranks(ALL_SCORES, rbar, rule="exact")
    assert sum(joint.ranks) == joint.used == 48 * rbar == joint.total
    grouped = allocate_ranks(ALL_SCORES, rbar, rule="exact", groups=ALL_TYPES)
    for t, ranks in _by_group(grouped.ranks, ALL_TYPES).items():
        assert sum(ranks) == 12 * rbar, t
    # exact only adds to the floor result, and at most one unit per module
    floor = allocate_ranks(ALL_SCORES, rbar, rule="floor")
    assert all(0 <= e - f <= 1 for e, f in zip(joint.ranks, floor.ranks))


def test_exact_rule_with_fractional_budget_uses_floor_of_budget():
    alloc = allocate_ranks([1.0, 2.0, 3.0], 2.5, rule="exact")  # budget 7.5 -> 7 whole units
    assert alloc.total == 7.5
    assert alloc.used == 7
    assert alloc.ranks == [1, 2, 4]  # shares 1.25, 2.5, 3.75: floors 1,2,3 + largest remainder


def test_integer_share_is_not_lost_to_float_rounding():
    # (3 * s) / s evaluates to 2.9999999999999996 for this s; a lone module must still get rank 3
    s = 699051.4243654131
    assert allocate_ranks([s], 3).ranks == [3]
    assert allocate_ranks([0.0, s, 0.0], 3, groups=[0, 1, 0]).ranks == [3, 3, 3]
    assert allocate_ranks([s] * 7, 3).ranks == [3] * 7


def test_exact_snaps_decimal_budget_to_intended_integer():
    # 0.57 * 100 is 56.99999999999999 in binary floating point; the user meant 57.
    alloc = allocate_ranks([1.0] * 100, 0.57, rule="exact")
    assert alloc.used == 57


# --------------------------------------------------------------------------------------------------
# clamps
# --------------------------------------------------------------------------------------------------


def test_clamps_on_oracle_are_respected_and_budget_kept():
    alloc = allocate_ranks(ALL_SCORES, 8, rule="exact", min_rank=2, max_rank=12)
    assert min(alloc.ranks) >= 2 and max(alloc.ranks) <= 12
    assert alloc.used == 384
    floor = allocate_ranks(ALL_SCORES, 8, rule="floor", min_rank=2, max_rank=12)
    assert min(floor.ranks) >= 2 and max(floor.ranks) <= 12
    assert floor.used <= 384
    # what the clamps take away is redistributed, so floor spends at least as much as unclamped
    assert floor.used >= JOINT_SUM_R8


def test_water_filling_hand_computed_max_clamp():
    # budget 16; module 3 wants 16*10/13 > 8, is capped at 8, the other three share 8 -> 8/3 each
    assert allocate_ranks([1, 1, 1, 10], 4, max_rank=8).ranks == [2, 2, 2, 8]
    # exact: +2 among equal remainders and equal scores goes to the lowest indices
    assert allocate_ranks([1, 1, 1, 10], 4, max_rank=8, rule="exact").ranks == [3, 3, 2, 8]


def test_water_filling_hand_computed_min_clamp():
    # budget 16; module 0 is raised to 2, the rest share 14 in ratio 1:1:2 -> 3.5, 3.5, 7
    assert allocate_ranks([0, 1, 1, 2], 4, min_rank=2).ranks == [2, 3, 3, 7]
    assert allocate_ranks([0, 1, 1, 2], 4, min_rank=2, rule="exact").ranks == [2, 4, 3, 7]


def test_zero_scores_absorb_budget_when_scored_modules_are_saturated():
    alloc = allocate_ranks([1.0, 0.0, 0.0], 8, max_rank=10, rule="exact")
    assert alloc.ranks == [10, 7, 7]
    assert alloc.used == 24


@pytest.mark.parametrize(
    "kwargs, fix",
    [
        ({"min_rank": 9}, "--min-rank"),
        ({"max_rank": 7}, "--max-rank"),
    ],
)
def test_infeasible_clamps_raise(kwargs, fix):
    with pytest.raises(AdaRankError) as info:
        allocate_ranks(ALL_SCORES, 8, groups=ALL_TYPES, **kwargs)
    msg = str(info.value)
    assert "\n" not in msg
    assert fix in msg and "96" in msg and "group" in msg


def test_infeasible_clamps_raise_in_params_unit():
    with pytest.raises(AdaRankError, match="--min-rank"):
        allocate_ranks([1, 2], 1, unit="params", costs=[10, 30], min_rank=2)
    with pytest.raises(AdaRankError, match="--max-rank"):
        allocate_ranks([1, 2], 8, unit="params", costs=[10, 30], max_rank=7)


def test_clamp_equal_to_rank_gives_uniform():
    assert allocate_ranks(ALL_SCORES, 8, min_rank=8).ranks == [8] * 48
    assert allocate_ranks(ALL_SCORES, 8, max_rank=8, rule="exact").ranks == [8] * 48


# --------------------------------------------------------------------------------------------------
# rank 0, uniform fallback, order
# --------------------------------------------------------------------------------------------------


def test_zero_score_gets_rank_zero_under_floor():
    alloc = allocate_ranks([0.0, 1.0, 3.0], 4)
    assert alloc.ranks[0] == 0
    assert alloc.ranks == [0, 3, 9]


def test_min_rank_one_gives_every_module_an_adapter():
    for rule in ("floor", "exact"):
        alloc = allocate_ranks([0.0, 0.001, 1.0, 5.0] + ALL_SCORES, 8, rule=rule, min_rank=1)
        assert min(alloc.ranks) >= 1
        assert alloc.used <= alloc.total


def test_all_zero_scores_are_uniform():
    assert allocate_ranks([0.0] * 5, 4).ranks == [4] * 5
    alloc = allocate_ranks([0, 0, 0, 1, 2], 3, groups=["a", "a", "a", "b", "b"], rule="exact")
    assert alloc.ranks[:3] == [3, 3, 3]
    assert sum(alloc.ranks[3:]) == 6


def test_order_preserved_on_oracle():
    for rule in ("floor", "exact"):
        ranks = allocate_ranks(ALL_SCORES, 8, rule=rule).ranks
        for i, si in enumerate(ALL_SCORES):
            for j, sj in enumerate(ALL_SCORES):
                if si > sj:
                    assert ranks[i] >= ranks[j]


# --------------------------------------------------------------------------------------------------
# params unit
# --------------------------------------------------------------------------------------------------

MIXED_COSTS = [1536] * 12 + [1536] * 12 + [4608] * 12 + [3840] * 12


def test_params_unit_mixed_costs_floor_and_exact():
    total = 8 * sum(MIXED_COSTS)
    floor = allocate_ranks(ALL_SCORES, 8, unit="params", costs=MIXED_COSTS)
    exact = allocate_ranks(ALL_SCORES, 8, unit="params", costs=MIXED_COSTS, rule="exact")
    assert floor.total == exact.total == total
    assert floor.used == sum(r * c for r, c in zip(floor.ranks, MIXED_COSTS))
    assert exact.used == sum(r * c for r, c in zip(exact.ranks, MIXED_COSTS))
    assert floor.used <= total
    assert total - max(MIXED_COSTS) < exact.used <= total
    assert exact.used >= floor.used
    # the proportions are in rank space: the floor rule's ranks do not depend on the costs
    # beyond one common factor, so a module with a higher score still gets at least as much
    for rule_alloc in (floor, exact):
        r = rule_alloc.ranks
        for i, si in enumerate(ALL_SCORES):
            for j, sj in enumerate(ALL_SCORES):
                if si > sj:
                    assert r[i] >= r[j]


def test_params_unit_line():
    alloc = Allocation(ranks=[1, 2], total=1000.0, used=950)
    assert budget_line(alloc, "params") == "used 950 of 1000 parameters (95.0%)"


def test_params_exact_skips_module_that_would_overshoot():
    # budget 1 * (1 + 2 + 1) = 4; shares 4*s/(1*1 + 1*2 + 3*1) = 2/3, 2/3, 2 -> floors 0, 0, 2 (cost 2).
    # +1 to module 0 (cost 1) -> 3; module 1's +1 would cost 2 -> 5 > 4, skipped; module 2 fits -> 4.
    alloc = allocate_ranks([1.0, 1.0, 3.0], 1, unit="params", costs=[1, 2, 1], rule="exact")
    assert alloc.ranks == [1, 0, 3]
    assert alloc.used == 4 and alloc.total == 4
    assert allocate_ranks([1.0, 1.0, 3.0], 1, unit="params", costs=[1, 2, 1]).ranks == [0, 0, 2]


def test_params_exact_does_not_promote_lower_score_past_skipped_one():
    # budget 2 * (1 + 1 + 2) = 8; shares 8*s/(1 + 3 + 8) = 2/3, 2, 8/3 -> floors 0, 2, 2 (cost 6).
    # +1 to module 0 -> 7; module 2's +1 would cost 2 -> 9 > 8, skipped. Module 1 would fit, but it
    # sits at the same level as module 2 with a lower score: promoting it would rank 3 above 4.
    alloc = allocate_ranks([1.0, 3.0, 4.0], 2, unit="params", costs=[1, 1, 2], rule="exact")
    assert alloc.ranks == [1, 2, 2]
    assert alloc.used == 7 and alloc.total == 8
    assert alloc.total - alloc.used < 2  # still within max(cost)


# --------------------------------------------------------------------------------------------------
# input validation
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, kwargs, needle",
    [
        (([1.0, -1.0], 8), {}, "negative"),
        (([1.0, math.nan], 8), {}, "finite"),
        (([1.0, math.inf], 8), {}, "finite"),
        (([], 8), {}, "no scores"),
        (([1.0], 0), {}, "rank"),
        (([1.0], -2), {}, "rank"),
        (([1.0], math.inf), {}, "rank"),
        (([1.0], math.nan), {}, "rank"),
        (([1.0], 8), {"min_rank": -1}, "min_rank"),
        (([1.0], 8), {"max_rank": 0}, "max_rank"),
        (([1.0], 8), {"min_rank": 4, "max_rank": 3}, "max_rank"),
        (([1.0, 2.0], 8), {"groups": ["a"]}, "group labels"),
        (([1.0, 2.0], 8), {"unit": "params"}, "costs"),
        (([1.0, 2.0], 8), {"unit": "params", "costs": [1]}, "costs"),
        (([1.0, 2.0], 8), {"unit": "params", "costs": [1, 0]}, "positive"),
        (([1.0, 2.0], 8), {"unit": "params", "costs": [1, -3]}, "positive"),
        (([1.0], 8), {"rule": "round"}, "rule"),
        (([1.0], 8), {"unit": "bytes"}, "unit"),
    ],
)
def test_invalid_input_raises_one_line_error(args, kwargs, needle):
    with pytest.raises(AdaRankError) as info:
        allocate_ranks(*args, **kwargs)
    assert needle in str(info.value)
    assert "\n" not in str(info.value)


def test_uniform_ranks():
    assert uniform_ranks(4, 8) == [8, 8, 8, 8]
    assert uniform_ranks(0, 8) == []
    with pytest.raises(AdaRankError):
        uniform_ranks(3, 0)
    with pytest.raises(AdaRankError):
        uniform_ranks(-1, 8)


# --------------------------------------------------------------------------------------------------
# properties
# --------------------------------------------------------------------------------------------------

PROPS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# zeros, ties (a small pool of repeated values) and a wide dynamic range
score_value = st.one_of(
    st.just(0.0),
    st.sampled_from([0.25, 1.0, 3.0]),
    st.floats(min_value=1e-6, max_value=1e6, allow_nan=False, allow_infinity=False),
)
# dyadic average ranks (multiples of 1/4) keep rank * M exact, so the budget is known exactly
avg_rank = st.integers(min_value=1, max_value=96).map(lambda k: k / 4)


@st.composite
def problems(draw, distinct: bool = False):
    n = draw(st.integers(min_value=1, max_value=24))
    if distinct:
        values = st.floats(min_value=1e-6, max_value=1e6, allow_nan=False, allow_infinity=False)
        scores = draw(st.lists(values, min_size=n, max_size=n, unique=True))
    else:
        scores = draw(st.lists(score_value, min_size=n, max_size=n))
    labels = draw(st.lists(st.integers(0, 2), min_size=n, max_size=n))
    rank = draw(avg_rank)
    lo = draw(st.integers(0, 4))
    hi = draw(st.one_of(st.none(), st.integers(max(1, lo), lo + 24)))
    return scores, labels, rank, lo, hi


def _feasible(rank, lo, hi):
    return lo <= rank and (hi is None or rank <= hi)


def _check_clamps(ranks, lo, hi):
    assert all(r >= lo for r in ranks)
    if hi is not None:
        assert all(r <= hi for r in ranks)


def _check_order(scores, ranks, labels):
    for i in range(len(scores)):
        for j in range(len(scores)):
            if labels[i] == labels[j] and scores[i] > scores[j]:
                assert ranks[i] >= ranks[j], (i, j)


@PROPS
@given(problems())
def test_prop_exact_meets_budget_or_raises(problem):
    scores, labels, rank, lo, hi = problem
    if not _feasible(rank, lo, hi):
        with pytest.raises(AdaRankError):
            allocate_ranks(scores, rank, rule="exact", groups=labels, min_rank=lo, max_rank=hi)
        return
    alloc = allocate_ranks(scores, rank, rule="exact", groups=labels, min_rank=lo, max_rank=hi)
    for g, ranks in _by_group(alloc.ranks, labels).items():
        assert sum(ranks) == math.floor(rank * len(ranks)), g
    _check_clamps(alloc.ranks, lo, hi)
    _check_order(scores, alloc.ranks, labels)
    assert alloc.used == sum(alloc.ranks)


@PROPS
@given(problems())
def test_prop_floor_within_budget(problem):
    scores, labels, rank, lo, hi = problem
    assume(_feasible(rank, lo, hi))
    alloc = allocate_ranks(scores, rank, groups=labels, min_rank=lo, max_rank=hi)
    for g, ranks in _by_group(alloc.ranks, labels).items():
        assert sum(ranks) <= rank * len(ranks), g
        # floor loses less than one unit per module
        assert sum(ranks) > rank * len(ranks) - len(ranks)
    _check_clamps(alloc.ranks, lo, hi)
    _check_order(scores, alloc.ranks, labels)
    assert alloc.used <= alloc.total


@PROPS
@given(problems(), st.integers(min_value=-30, max_value=30), st.sampled_from(["floor", "exact"]))
def test_prop_invariant_to_power_of_two_scaling(problem, k, rule):
    # Powers of two are exact in binary floating point: s * 2**k is the same mantissa, so every
    # ratio s_i / sum(s) is bit-identical. A general constant would round each product, which can
    # flip a floor when a share sits exactly on an integer boundary.
    scores, labels, rank, lo, hi = problem
    assume(_feasible(rank, lo, hi))
    scaled = [s * 2.0**k for s in scores]
    kw = dict(rule=rule, groups=labels, min_rank=lo, max_rank=hi)
    assert allocate_ranks(scaled, rank, **kw) == allocate_ranks(scores, rank, **kw)


@PROPS
@given(st.data(), problems(distinct=True), st.sampled_from(["floor", "exact"]))
def test_prop_permutation_equivariant(data, problem, rule):
    scores, labels, rank, lo, hi = problem
    assume(_feasible(rank, lo, hi))
    perm = data.draw(st.permutations(range(len(scores))))
    kw = dict(rule=rule, min_rank=lo, max_rank=hi)
    base = allocate_ranks(scores, rank, groups=labels, **kw)
    moved = allocate_ranks(
        [scores[p] for p in perm], rank, groups=[labels[p] for p in perm], **kw
    )
    assert moved.ranks == [base.ranks[p] for p in perm]
    assert moved.used == base.used and moved.total == base.total


@PROPS
@given(
    problems(),
    st.lists(st.integers(1, 5000), min_size=24, max_size=24),
    st.sampled_from(["floor", "exact"]),
)
def test_prop_params_unit(problem, cost_pool, rule):
    scores, labels, rank, lo, hi = problem
    assume(_feasible(rank, lo, hi))
    costs = cost_pool[: len(scores)]
    alloc = allocate_ranks(
        scores, rank, rule=rule, unit="params", costs=costs, groups=labels, min_rank=lo, max_rank=hi
    )
    _check_clamps(alloc.ranks, lo, hi)
    _check_order(scores, alloc.ranks, labels)
    assert alloc.used == sum(r * c for r, c in zip(alloc.ranks, costs))
    groups = defaultdict(list)
    for i, g in enumerate(labels):
        groups[g].append(i)
    for g, idx in groups.items():
        budget = rank * sum(costs[i] for i in idx)  # exact: dyadic rank times integers
        spent = sum(alloc.ranks[i] * costs[i] for i in idx)
        assert spent <= budget, g
        if rule == "exact":
            assert budget - spent < max(costs[i] for i in idx), g


@PROPS
@given(problems(), st.integers(1, 5000), st.sampled_from(["floor", "exact"]))
def test_prop_params_equal_costs_equals_ranks_unit(problem, cost, rule):
    scores, labels, rank, lo, hi = problem
    assume(_feasible(rank, lo, hi))
    kw = dict(rule=rule, groups=labels, min_rank=lo, max_rank=hi)
    in_ranks = allocate_ranks(scores, rank, **kw)
    in_params = allocate_ranks(scores, rank, unit="params", costs=[cost] * len(scores), **kw)
    assert in_params.ranks == in_ranks.ranks
    assert in_params.used == in_ranks.used * cost


# --------------------------------------------------------------------------------------------------
# score transforms: power (tempered proportional) and rank-order
# --------------------------------------------------------------------------------------------------

TRANSFORMS = [("proportional", 1.0), ("power", 0.5), ("power", 2.0), ("power", 3.7), ("rank-order", 1.0)]


def test_power_one_is_proportional_on_the_oracle():
    for rule in ("floor", "exact"):
        plain = allocate_ranks(ALL_SCORES, 8, rule=rule, groups=ALL_TYPES)
        assert allocate_ranks(ALL_SCORES, 8, rule=rule, groups=ALL_TYPES, transform="power", power=1.0) == plain
        assert allocate_ranks(ALL_SCORES, 8, rule=rule, groups=ALL_TYPES, transform="power", power=1) == plain
    # the paper's lists are untouched by the new keyword's default
    alloc = allocate_ranks(ALL_SCORES, 8, groups=ALL_TYPES, transform="proportional")
    assert _by_group(alloc.ranks, ALL_TYPES) == PER_TYPE_R8


@pytest.mark.parametrize("t", TYPES)
@pytest.mark.parametrize("rule", ["floor", "exact"])
def test_power_two_concentrates_and_half_flattens_on_the_oracle(t, rule):
    scores = DISAGREEMENT[t]
    top, bottom = scores.index(max(scores)), scores.index(min(scores))
    ranks = {p: allocate_ranks(scores, 8, rule=rule, transform="power", power=p).ranks for p in (0.5, 1.0, 2.0)}
    assert ranks[2.0][top] >= ranks[1.0][top] >= ranks[0.5][top]
    assert ranks[2.0][bottom] <= ranks[1.0][bottom] <= ranks[0.5][bottom]
    spread = {p: max(r) - min(r) for p, r in ranks.items()}
    assert spread[2.0] >= spread[1.0] >= spread[0.5]
    assert spread[2.0] > spread[0.5]


def test_power_two_is_proportional_to_squared_scores():
    # an integer power of the normalised scores is an exact power-of-two rescaling of s ** 2
    squared = [s * s for s in ALL_SCORES]
    for rule in ("floor", "exact"):
        kw = dict(rule=rule, groups=ALL_TYPES)
        assert allocate_ranks(ALL_SCORES, 8, transform="power", power=2.0, **kw) == allocate_ranks(squared, 8, **kw)


def test_huge_power_gives_the_budget_to_the_top_module():
    alloc = allocate_ranks([0.5, 0.49, 0.1], 4, rule="exact", transform="power", power=5000.0)
    assert alloc.ranks == [12, 0, 0]
    # the largest power's underflow guard: 0.5 ** 5000 is 0, yet the top module is still on top
    alloc = allocate_ranks([1.0, 2.0], 2, rule="exact", transform="power", power=1e6)
    assert alloc.ranks == [0, 4]


def test_rank_order_uses_positions_with_averaged_ties():
    kw = dict(rule="exact")
    assert allocate_ranks([0.1, 50.0, 3.0], 4, transform="rank-order", **kw) == allocate_ranks([1, 3, 2], 4, **kw)
    assert allocate_ranks([7.0, 7.0, 9.0], 4, transform="rank-order", **kw) == allocate_ranks([1.5, 1.5, 3], 4, **kw)
    # a zero score has position 1, so it still gets a share; ties get equal ranks
    alloc = allocate_ranks([0.0, 0.0, 1.0, 2.0, 2.0], 4, transform="rank-order", **kw)
    assert alloc.ranks == [2, 2, 4, 6, 6] and alloc.used == 20


def test_rank_order_positions_are_per_group():
    scores = [1.0, 100.0, 1000.0, 0.001, 0.002, 0.003]
    labels = ["a", "a", "a", "b", "b", "b"]
    alloc = allocate_ranks(scores, 4, rule="exact", groups=labels, transform="rank-order")
    assert alloc.ranks[:3] == alloc.ranks[3:] == [2, 4, 6]


@pytest.mark.parametrize("transform, power", TRANSFORMS)
def test_all_zero_group_stays_uniform_under_every_transform(transform, power):
    alloc = allocate_ranks([0.0] * 4, 3, rule="exact", transform=transform, power=power)
    assert alloc.ranks == [3, 3, 3, 3]


@pytest.mark.parametrize("transform, power", TRANSFORMS)
def test_transforms_respect_clamps_on_the_oracle(transform, power):
    kw = dict(rule="exact", groups=ALL_TYPES, min_rank=2, max_rank=11, transform=transform, power=power)
    alloc = allocate_ranks(ALL_SCORES, 6, **kw)
    assert all(2 <= r <= 11 for r in alloc.ranks)
    for ranks in _by_group(alloc.ranks, ALL_TYPES).values():
        assert sum(ranks) == 6 * 12


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        ({"transform": "log"}, "transform"),
        ({"transform": "power", "power": 0}, "power"),
        ({"transform": "power", "power": -2.0}, "power"),
        ({"transform": "power", "power": math.nan}, "power"),
        ({"transform": "power", "power": math.inf}, "power"),
        ({"transform": "power", "power": "two"}, "power"),
        ({"transform": "power", "power": True}, "power"),
        ({"power": 2.0}, "transform power"),
        ({"transform": "rank-order", "power": 0.5}, "transform power"),
    ],
)
def test_invalid_transform_raises_one_line_error(kwargs, needle):
    with pytest.raises(AdaRankError) as info:
        allocate_ranks([1.0, 2.0], 8, **kwargs)
    assert needle in str(info.value)
    assert "\n" not in str(info.value)


transform_choice = st.sampled_from(TRANSFORMS + [("power", 0.1), ("power", 30.0)])


@PROPS
@given(problems(), transform_choice, st.sampled_from(["floor", "exact"]))
def test_prop_power_one_equals_proportional(problem, _, rule):
    scores, labels, rank, lo, hi = problem
    assume(_feasible(rank, lo, hi))
    kw = dict(rule=rule, groups=labels, min_rank=lo, max_rank=hi)
    assert allocate_ranks(scores, rank, transform="power", power=1.0, **kw) == allocate_ranks(scores, rank, **kw)


@PROPS
@given(problems(), transform_choice)
def test_prop_transforms_meet_the_exact_budget_or_raise(problem, choice):
    scores, labels, rank, lo, hi = problem
    transform, power = choice
    kw = dict(rule="exact", groups=labels, min_rank=lo, max_rank=hi, transform=transform, power=power)
    if not _feasible(rank, lo, hi):
        with pytest.raises(AdaRankError):
            allocate_ranks(scores, rank, **kw)
        return
    alloc = allocate_ranks(scores, rank, **kw)
    for g, ranks in _by_group(alloc.ranks, labels).items():
        assert sum(ranks) == math.floor(rank * len(ranks)), g
    _check_clamps(alloc.ranks, lo, hi)
    _check_order(scores, alloc.ranks, labels)  # order of the raw scores, even where a transform ties them
    assert alloc.used == sum(alloc.ranks)


@PROPS
@given(problems(), transform_choice)
def test_prop_transforms_floor_within_budget(problem, choice):
    scores, labels, rank, lo, hi = problem
    assume(_feasible(rank, lo, hi))
    transform, power = choice
    alloc = allocate_ranks(scores, rank, groups=labels, min_rank=lo, max_rank=hi, transform=transform, power=power)
    for g, ranks in _by_group(alloc.ranks, labels).items():
        assert rank * len(ranks) - len(ranks) < sum(ranks) <= rank * len(ranks), g
    _check_clamps(alloc.ranks, lo, hi)
    _check_order(scores, alloc.ranks, labels)


@PROPS
@given(problems(), st.lists(st.integers(1, 5000), min_size=24, max_size=24), transform_choice,
       st.sampled_from(["floor", "exact"]))
def test_prop_transforms_in_params_unit(problem, cost_pool, choice, rule):
    scores, labels, rank, lo, hi = problem
    assume(_feasible(rank, lo, hi))
    transform, power = choice
    costs = cost_pool[: len(scores)]
    alloc = allocate_ranks(scores, rank, rule=rule, unit="params", costs=costs, groups=labels, min_rank=lo,
                           max_rank=hi, transform=transform, power=power)
    _check_clamps(alloc.ranks, lo, hi)
    _check_order(scores, alloc.ranks, labels)
    for g in set(labels):
        idx = [i for i, label in enumerate(labels) if label == g]
        budget = rank * sum(costs[i] for i in idx)
        spent = sum(alloc.ranks[i] * costs[i] for i in idx)
        assert spent <= budget, g
        if rule == "exact":
            assert budget - spent < max(costs[i] for i in idx), g


@PROPS
@given(st.data(), problems(distinct=True), transform_choice, st.sampled_from(["floor", "exact"]))
def test_prop_transforms_permutation_equivariant_and_scale_free(data, problem, choice, rule):
    scores, labels, rank, lo, hi = problem
    assume(_feasible(rank, lo, hi))
    transform, power = choice
    kw = dict(rule=rule, min_rank=lo, max_rank=hi, transform=transform, power=power)
    base = allocate_ranks(scores, rank, groups=labels, **kw)
    perm = data.draw(st.permutations(range(len(scores))))
    moved = allocate_ranks([scores[p] for p in perm], rank, groups=[labels[p] for p in perm], **kw)
    assert moved.ranks == [base.ranks[p] for p in perm]
    k = data.draw(st.integers(-30, 30))
    assert allocate_ranks([s * 2.0**k for s in scores], rank, groups=labels, **kw) == base


# strictly increasing maps of [0, 10] that keep distinct inputs distinct in float64
INCREASING = {
    "exp": math.exp,
    "cube": lambda x: x**3,
    "affine": lambda x: 3.0 * x + 7.0,
    "sqrt": math.sqrt,
    "log1p": math.log1p,
}


@PROPS
@given(
    st.lists(st.integers(0, 1000).map(lambda k: k / 100), min_size=1, max_size=24),
    st.data(),
    st.sampled_from(sorted(INCREASING)),
    st.sampled_from(["floor", "exact"]),
    st.sampled_from(["ranks", "params"]),
)
def test_prop_rank_order_is_invariant_to_increasing_maps(scores, data, name, rule, unit):
    n = len(scores)
    labels = data.draw(st.lists(st.integers(0, 2), min_size=n, max_size=n))
    rank = data.draw(avg_rank)
    lo = data.draw(st.integers(0, 4))
    hi = data.draw(st.one_of(st.none(), st.integers(max(1, lo), lo + 24)))
    assume(_feasible(rank, lo, hi))
    costs = data.draw(st.lists(st.integers(1, 5000), min_size=n, max_size=n))
    f = INCREASING[name]
    kw = dict(rule=rule, unit=unit, costs=costs, groups=labels, min_rank=lo, max_rank=hi, transform="rank-order")
    assert allocate_ranks([f(s) for s in scores], rank, **kw) == allocate_ranks(scores, rank, **kw)


def test_transform_ties_are_broken_by_the_raw_score():
    # sqrt maps these two neighbouring floats to the same value; the higher raw score still wins the +1
    a, b = 1.0, math.nextafter(1.0, 2.0)
    assert math.sqrt(a) == math.sqrt(b)
    kw = dict(rule="exact", transform="power", power=0.5)
    assert allocate_ranks([a, b], 1.5, **kw).ranks == [1, 2]
    assert allocate_ranks([b, a], 1.5, **kw).ranks == [2, 1]


def test_power_transform_with_scores_beyond_float_range_still_spends_the_budget():
    """Found by hypothesis: 1e-5 vs 181131 raised to the 30th power differ by ~300 decades, so hi / s
    overflowed and the water-filling lost track of the smaller module (3.75 of 99.75 units unspent)."""
    scores = [0.0] * 12 + [181131.0, 1e-05] + [0.0] * 6
    costs = [1] * 13 + [2] + [1] * 6
    for rule in ("floor", "exact"):
        alloc = allocate_ranks(scores, 4.75, rule=rule, unit="params", costs=costs, min_rank=3, max_rank=16,
                               transform="power", power=30.0)
        spent = sum(r * c for r, c in zip(alloc.ranks, costs))
        assert alloc.ranks[12] == 16 and alloc.ranks[13] >= max(alloc.ranks[:12] + alloc.ranks[14:])
        assert spent <= 99.75 and (rule == "floor" or 99.75 - spent < 2)
    # the same on a rank-unit budget: the small module takes what the saturated top one cannot
    alloc = allocate_ranks(scores, 4.75, rule="exact", min_rank=3, max_rank=16, transform="power", power=30.0)
    assert sum(alloc.ranks) == math.floor(4.75 * 20) and alloc.ranks[12] == 16 and alloc.ranks[13] == 16
