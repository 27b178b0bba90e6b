import json
from dataclasses import replace

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


def _edited(tmp_path, edit):
    data = make_plan(rule="exact").to_dict()
    edit(data)
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(data))
    return path


def _set_rank(value):
    return lambda d: d["modules"][1].__setitem__("rank", value)


@pytest.mark.parametrize("edit, words", [
    (_set_rank(-3), ["negative rank -3"]),
    (_set_rank(2.5), ["rank 2.5", "whole number"]),
    (_set_rank(2.0), ["rank 2.0", "whole number"]),
    (_set_rank(True), ["rank True", "whole number"]),
    (_set_rank("8"), ["rank '8'", "whole number"]),
    (_set_rank(10**9), ["rank 1000000000", "width", "32"]),
    (_set_rank(None), ["rank None"]),
    (lambda d: d["modules"].append(dict(d["modules"][0])), ["appears twice", "encoder.layer.0"]),
    (lambda d: d["modules"][2]["aliases"].append(d["modules"][0]["name"]), ["appears twice"]),
    (lambda d: d["modules"][0].pop("shape"), ["lacks shape"]),
    (lambda d: d["modules"][0].__setitem__("shape", [32]), ["'shape'", "two positive integers"]),
    (lambda d: d["modules"][0].__setitem__("shape", "32x32"), ["'shape'"]),
    (lambda d: d["modules"][0].__setitem__("scores", [1.0, "x"]), ["'scores'"]),
    (lambda d: d["modules"][0].__setitem__("score_mean", -1), ["'score_mean'"]),
    (lambda d: d["modules"][0].__setitem__("name", 7), ["'name'"]),
    (lambda d: d["modules"][0].__setitem__("block", "3"), ["'block'"]),
    (lambda d: d["modules"][0].__setitem__("extra", 1), ["unknown field", "extra"]),
    (lambda d: d["modules"].__setitem__(0, [1, 2]), ["module entry 0", "JSON object"]),
    (lambda d: d.__setitem__("modules", {"a": 1}), ["'modules'", "array"]),
    (lambda d: d.pop("budget"), ["no 'budget' field"]),
    (lambda d: d["budget"].__setitem__("rank", "4"), ["budget rank"]),
    (lambda d: d["budget"].__setitem__("rule", "round"), ["budget rule", "floor, exact"]),
    (lambda d: d["budget"].__setitem__("max_rank", 2.5), ["budget max_rank"]),
    (lambda d: d["budget"].__setitem__("surprise", 1), ["unknown field", "surprise"]),
    (lambda d: d.__setitem__("settings", []), ["'settings'", "object"]),
])
def test_hand_edited_plans_are_refused_with_one_clear_message(tmp_path, edit, words):
    path = _edited(tmp_path, edit)
    with pytest.raises(AdaRankError) as info:
        RankPlan.load(path)
    message = str(info.value)
    assert "\n" not in message and ("re-run" in message or "remove" in message)
    for word in words:
        assert word in message, message


def test_programmatic_plan_with_duplicated_names_is_the_inputs_fault():
    plan = make_plan(rule="exact")
    plan.modules[1] = replace(plan.modules[1], name=plan.modules[0].name)
    with pytest.raises(AdaRankError, match="appears twice") as info:
        plan.to_lora_config()
    assert "bug in adarank" not in str(info.value)


def test_deeply_nested_json_is_a_clean_error(tmp_path):
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(AdaRankError, match="nests JSON too deeply"):
        RankPlan.load(tmp_path / "deep.json")


def test_ranks_are_capped_at_the_module_width_and_the_rest_redistributed(tmp_path):
    # one module scores far above the rest: its proportional share (8 * 4 * 100/106 = 30.2) exceeds 16
    modules = [ModuleEntry(name=f"m{i}", type="t", block=i, shape=[16, 64], scores=[s], score_mean=s,
                           score_std=0.0, rank=0) for i, s in enumerate((100.0, 2.0, 2.0, 2.0))]
    plan = RankPlan.allocate("tiny", {}, modules, Budget(rank=8, rule="exact"))
    assert [m.rank for m in plan.modules] == [16, 6, 5, 5]  # min(d_out, d_in), then 16 more units over 3
    assert plan.budget.capped == {"m0": 30}
    assert plan.budget.used == plan.budget.total == 32
    assert "capped" in plan.budget_summary()
    from adarank.plan_notes import plan_warnings

    assert [n for n in plan_warnings(plan) if "m0 was given rank 30" in n and "width min(d_out, d_in) = 16" in n]
    assert RankPlan.load(plan.save(tmp_path / "plan.json")) == plan
    floor = plan.reallocate(rule="floor")
    assert [m.rank for m in floor.modules] == [16, 5, 5, 5]
    uncapped = plan.reallocate(rank=2)
    assert uncapped.budget.capped == {}


def test_width_caps_hold_and_exact_spends_the_budget_on_random_inputs():
    import numpy as np

    from adarank.allocation import allocate_ranks, allocate_within_widths, check_width_budget

    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(2, 12))
        scores = (rng.pareto(1.0, n) * (rng.random(n) < 0.9)).tolist()
        widths = rng.integers(1, 20, n).tolist()
        groups = rng.integers(0, 2, n).tolist()
        rank = float(rng.uniform(0.5, 6))
        try:
            check_width_budget(rank, widths, names=[f"m{i}" for i in range(n)], groups=groups)
        except AdaRankError:
            continue  # an r̄ some group cannot hold: refused before allocation, as the plan does
        alloc, wanted = allocate_within_widths(scores, rank, widths=widths, rule="exact", groups=groups)
        assert all(r <= w for r, w in zip(alloc.ranks, widths))
        for g in set(groups):
            idx = [i for i in range(n) if groups[i] == g]
            assert sum(alloc.ranks[i] for i in idx) == int(np.floor(rank * len(idx) + 1e-9))
        if not wanted:
            assert alloc == allocate_ranks(scores, rank, rule="exact", groups=groups)
        assert all(widths[i] < r for i, r in wanted.items())


@pytest.mark.parametrize("rank", [64, 10**9])
def test_average_rank_above_every_width_is_refused(rank):
    with pytest.raises(AdaRankError, match=r"does not fit.*at most 32.*lower --rank to 32"):
        make_plan(rank=rank)


def test_min_rank_above_a_width_is_refused():
    with pytest.raises(AdaRankError, match="min_rank 33 exceeds the width"):
        make_plan(rank=33, min_rank=33)
