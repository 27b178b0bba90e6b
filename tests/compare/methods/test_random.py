"""random: seeded per (seed, rank), different across seeds."""

from __future__ import annotations

import pytest

from adarank.compare.methods import plan_for_method, random_scores

from method_plans import scored  # noqa: F401  (fixture)


def test_random_is_deterministic_per_seed_and_differs_across_seeds(scored):
    a = plan_for_method("random", scored, 8, seed=1)
    b = plan_for_method("random", scored, 8, seed=1)
    c = plan_for_method("random", scored, 8, seed=2)
    assert a.ranks == b.ranks
    assert a.ranks != c.ranks
    assert [m.score_mean for m in a.modules] == pytest.approx(random_scores(len(scored.modules), 1, 8).tolist())
    assert a.settings["method_seed"] == 1
    # the same seed at another rank draws other scores
    assert random_scores(24, 1, 4).tolist() != random_scores(24, 1, 8).tolist()
