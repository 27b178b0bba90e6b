"""The registries of score transforms and rounding rules: what is registered is what the CLI offers
and what allocate_ranks accepts, with nothing else to change."""

from __future__ import annotations

import math

import numpy as np
import pytest

from adarank.allocation import allocate_ranks
from adarank.cli import build_parser
from adarank.errors import AdaRankError
from adarank.transforms import RULES, TRANSFORMS, RoundingRule, ScoreTransform, register_rule, register_transform

SCORES = [0.107, 0.267, 0.511, 0.650, 0.660, 0.621, 0.591, 0.613, 0.602, 0.726, 0.723, 0.570]


@pytest.fixture(autouse=True)
def wide_help(monkeypatch):
    monkeypatch.setenv("COLUMNS", "1000")  # no wrapped help line, so a choice is never split at its hyphen


def _help(command: str) -> str:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return sub.choices[command].format_help()


def _nearest(ranks, remainder, key, weights, hi, budget, rank_units):
    """Round half up; allocate_ranks then takes back, least-deserving first, what overshoots the budget."""
    up = remainder >= 0.5
    if hi is not None:
        up &= ranks < hi
    ranks += up.astype(ranks.dtype)


@pytest.fixture
def squared():
    entry = register_transform(ScoreTransform("squared", "the scores squared", lambda raw, s, power: s * s))
    try:
        yield entry
    finally:
        del TRANSFORMS["squared"]


@pytest.fixture
def nearest():
    entry = register_rule(RoundingRule("nearest", "round half up, then trim to the budget", _nearest))
    try:
        yield entry
    finally:
        del RULES["nearest"]


def test_a_registered_transform_is_a_choice_and_allocates(squared):
    for command in ("predict", "allocate"):
        assert "squared" in _help(command).split("--transform {", 1)[1].split("}", 1)[0].split(",")
    mine = allocate_ranks(SCORES, 8, rule="exact", transform="squared")
    assert mine.ranks == allocate_ranks(SCORES, 8, rule="exact", transform="power", power=2.0).ranks
    assert sum(mine.ranks) == 8 * len(SCORES)
    with pytest.raises(AdaRankError, match="only applies to transform 'power', not 'squared'"):
        allocate_ranks(SCORES, 8, transform="squared", power=3.0)  # it does not take --power


def test_a_registered_rule_is_a_choice_and_rounds(nearest):
    assert "nearest" in _help("predict").split("--rule {", 1)[1].split("}", 1)[0].split(",")
    alloc = allocate_ranks(SCORES, 8, rule="nearest")
    shares = [8 * len(SCORES) * s / math.fsum(SCORES) for s in SCORES]
    assert alloc.used <= alloc.total == 8 * len(SCORES)
    assert all(abs(r - x) <= 1 for r, x in zip(alloc.ranks, shares))
    # where the budget allows it, a share with a fractional part of at least one half is rounded up
    floor = allocate_ranks(SCORES, 8, rule="floor").ranks
    assert any(r == f + 1 for r, f in zip(alloc.ranks, floor))
    assert all(r in (f, f + 1) for r, f in zip(alloc.ranks, floor))


def test_unknown_names_list_what_is_registered(nearest):
    with pytest.raises(AdaRankError, match="unknown rounding rule 'ceil'; use one of floor, exact, nearest"):
        allocate_ranks(SCORES, 8, rule="ceil")
    with pytest.raises(AdaRankError, match="unknown score transform 'log'; use one of proportional, power, rank-order"):
        allocate_ranks(SCORES, 8, transform="log")


def test_a_name_cannot_be_registered_twice():
    with pytest.raises(ValueError, match="registered twice"):
        register_rule(RoundingRule("floor", "again"))
    with pytest.raises(ValueError, match="registered twice"):
        register_transform(ScoreTransform("power", "again", lambda raw, s, p: np.asarray(s)))
