import json

import pytest

from adarank.errors import AdaRankError
from adarank.plan import SCHEMA_VERSION, Budget, ModuleEntry, RankPlan


def make_plan(scores=(1.0, 2.0, 3.0, 6.0), rank=4, **budget) -> RankPlan:
    modules = [ModuleEntry(name=f"encoder.layer.{i}.attention.self.value", type="attention.self.value", block=i,
                           shape=[32, 32], scores=[s, s], score_mean=s, score_std=0.0, rank=0)
               for i, s in enumerate(scores)]
    return RankPlan.allocate("tiny", {"trials": 2}, modules, Budget(rank=rank, **budget))


def test_allocate_fills_ranks_and_budget():
    plan = make_plan(rule="exact")
    assert [m.rank for m in plan.modules] == [1, 3, 4, 8]
    assert plan.budget.total == 16 and plan.budget.used == 16
    assert "used 16 of 16" in plan.budget_summary()


def test_save_load_round_trip(tmp_path):
    plan = make_plan()
    path = plan.save(tmp_path / "plan.json")
    again = RankPlan.load(path)
    assert again == plan
    assert RankPlan.load(tmp_path) == plan  # a folder holding plan.json works too
    data = json.loads(path.read_text())
    for key in ("schema_version", "model", "settings", "modules", "budget", "versions"):
        assert key in data
    assert {"adarank", "torch", "transformers", "peft"} <= set(data["versions"])
    assert set(data["modules"][0]) >= {"name", "type", "block", "shape", "scores", "score_mean", "score_std", "rank"}
    assert set(data["budget"]) >= {"rank", "unit", "rule", "groups", "total", "used"}


def test_reallocate_needs_no_scoring():
    plan = make_plan(rule="floor")
    bigger = plan.reallocate(rank=8, rule="exact")
    assert sum(m.rank for m in bigger.modules) == 32
    assert [m.score_mean for m in bigger.modules] == [m.score_mean for m in plan.modules]
    assert plan.budget.rank == 4  # the original is untouched
    with pytest.raises(AdaRankError, match="cannot change"):
        plan.reallocate(used=3)


def test_impossible_budget_is_refused():
    with pytest.raises(AdaRankError, match="min"):
        make_plan(rank=2, min_rank=3)


def test_truncated_and_foreign_plans_are_refused(tmp_path):
    path = make_plan().save(tmp_path / "plan.json")
    text = path.read_text()
    (tmp_path / "cut.json").write_text(text[: len(text) // 2])
    with pytest.raises(AdaRankError, match="not valid JSON"):
        RankPlan.load(tmp_path / "cut.json")
    data = json.loads(text)
    data["schema_version"] = SCHEMA_VERSION + 1
    (tmp_path / "future.json").write_text(json.dumps(data))
    with pytest.raises(AdaRankError, match="schema_version"):
        RankPlan.load(tmp_path / "future.json")
    with pytest.raises(AdaRankError, match="does not exist"):
        RankPlan.load(tmp_path / "missing.json")
    del data["modules"]
    data["schema_version"] = SCHEMA_VERSION
    (tmp_path / "broken.json").write_text(json.dumps(data))
    with pytest.raises(AdaRankError, match="not a valid rank plan"):
        RankPlan.load(tmp_path / "broken.json")


def test_old_plan_json_without_transform_fields_loads(tmp_path):
    plan = make_plan(rule="exact")
    data = plan.to_dict()
    assert data["budget"]["transform"] == "proportional" and data["budget"]["power"] == 1.0
    del data["budget"]["transform"], data["budget"]["power"]
    (tmp_path / "old.json").write_text(json.dumps(data))
    old = RankPlan.load(tmp_path / "old.json")
    assert old.budget.transform == "proportional" and old.budget.power == 1.0
    assert old == plan
    assert old.reallocate().ranks == plan.ranks
    assert Budget(**{"rank": 4, "unit": "ranks", "rule": "floor", "groups": "type", "min_rank": 0,
                     "max_rank": None, "total": 0.0, "used": 0.0}).transform == "proportional"


def test_transform_is_stored_and_passed_through(tmp_path):
    plan = make_plan(scores=(1.0, 2.0, 3.0, 6.0), rule="exact", transform="power", power=2.0)
    assert [m.rank for m in plan.modules] == [0, 1, 3, 12]  # 16 * s**2 / 50 = 0.32, 1.28, 2.88, 11.52
    assert "scores ** 2" in plan.budget_summary()
    again = RankPlan.load(plan.save(tmp_path / "plan.json"))
    assert again == plan and again.budget.power == 2.0
    ranked = plan.reallocate(transform="rank-order")
    assert ranked.budget.power == 1.0  # reset: only transform 'power' takes an exponent
    assert [m.rank for m in ranked.modules] == [2, 3, 5, 6]
    assert "rank-order" in ranked.budget_summary()
    assert plan.reallocate(power=0.5).budget.transform == "power"
    with pytest.raises(AdaRankError, match="transform"):
        plan.reallocate(transform="log")
