"""Serving cost: a plan's largest rank, next to uniform's, stored, printed, shown, and capped by --max-rank."""

from __future__ import annotations

import json

import pytest

from adarank.cli import main
from adarank.plan import Budget, ModuleEntry, RankPlan

# A decoder's all-linear shapes (Gemma 3 270M: q 640->1024, k/v 640->256, MLP 640<->2048), one block.
SHAPES = {"self_attn.q_proj": [1024, 640], "self_attn.k_proj": [256, 640], "self_attn.v_proj": [256, 640],
          "self_attn.o_proj": [640, 1024], "mlp.gate_proj": [2048, 640], "mlp.up_proj": [2048, 640],
          "mlp.down_proj": [640, 2048]}


def decoder_plan(scores, rank=8, **budget) -> RankPlan:
    modules = [ModuleEntry(name=f"model.layers.0.{t}", type=t, block=0, shape=shape, scores=[s], score_mean=s,
                           score_std=0.0, rank=0)
               for (t, shape), s in zip(SHAPES.items(), scores)]
    return RankPlan.allocate("tiny-decoder", {"trials": 1}, modules, Budget(rank=rank, groups="joint", **budget))


PEAKED = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 12.0]


def test_plan_stores_its_largest_rank_and_says_what_it_costs(tmp_path):
    plan = decoder_plan(PEAKED, rule="exact")
    largest = max(m.rank for m in plan.modules)
    assert largest > 8
    assert plan.budget.max_rank_used == largest
    data = json.loads(plan.save(tmp_path / "plan.json").read_text())
    assert data["budget"]["max_rank_used"] == largest
    line = plan.serving_line()
    assert line.startswith(f"largest rank {largest} (uniform: 8) at model.layers.0.mlp.down_proj —")
    assert "vLLM" in line and "max_lora_rank" in line and "--max-rank" in line


def test_a_flat_plan_needs_no_warning():
    plan = decoder_plan([3.0] * 7, rule="exact")
    assert plan.budget.max_rank_used == 8 and plan.serving_line() == "largest rank 8 (uniform: 8)"


@pytest.mark.parametrize("rule", ["floor", "exact"])
def test_max_rank_caps_a_parameter_budget(rule):
    """--max-rank with --unit params: no module above the cap, and the parameter budget is still the
    uniform one, spent exactly by the exact rule and not exceeded by the floor rule."""
    free = decoder_plan(PEAKED, unit="params", rule=rule)
    assert free.budget.max_rank_used > 10
    capped = free.reallocate(max_rank=10)
    assert capped.budget.max_rank_used == max(m.rank for m in capped.modules) == 10
    spent = sum(m.rank * m.cost for m in capped.modules)
    assert capped.budget.total == free.budget.total == 8 * sum(m.cost for m in capped.modules)
    assert capped.budget.used == spent
    assert spent == capped.budget.total if rule == "exact" else spent <= capped.budget.total
    assert capped.serving_line().startswith("largest rank 10 (uniform: 8)")


def test_cannot_set_the_derived_field():
    from adarank.errors import AdaRankError

    with pytest.raises(AdaRankError, match="max_rank_used"):
        decoder_plan(PEAKED).reallocate(max_rank_used=3)


def test_plan_written_before_the_field_loads_with_it_filled(tmp_path):
    plan = decoder_plan(PEAKED, rule="exact")
    data = plan.to_dict()
    del data["budget"]["max_rank_used"]
    (tmp_path / "plan.json").write_text(json.dumps(data))
    assert RankPlan.load(tmp_path / "plan.json").budget.max_rank_used == max(m.rank for m in plan.modules)


def test_predict_allocate_and_show_print_it(tiny_bert_dir, tmp_path, capsys):
    out = tmp_path / "plan"
    assert main(["predict", str(tiny_bert_dir), "--rank", "4", "--trials", "2", "--quiet", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    largest = json.loads((out / "plan.json").read_text())["budget"]["max_rank_used"]
    assert f"serving: largest rank {largest} (uniform: 4)" in printed

    capped = tmp_path / "capped"
    assert main(["allocate", str(out), "--rank", "4", "--unit", "params", "--max-rank", "5", "--out", str(capped)]) == 0
    printed = capsys.readouterr().out
    stored = json.loads((capped / "plan.json").read_text())
    assert stored["budget"]["max_rank_used"] <= 5 and max(m["rank"] for m in stored["modules"]) <= 5
    assert f"serving: largest rank {stored['budget']['max_rank_used']} (uniform: 4)" in printed

    assert main(["show", str(capped)]) == 0
    assert f"serving: largest rank {stored['budget']['max_rank_used']} (uniform: 4)" in capsys.readouterr().out
