"""--current parsing in its three forms, and the arms: cost order and parameter counts."""

from __future__ import annotations

import json

import pytest

from adarank.errors import AdaRankError
from adarank.pilot.arms import (
    build_arms,
    current_modules,
    halvings,
    model_modules,
    parse_current,
)


def test_pairs_form_with_comma_targets():
    cur = parse_current("r=16,alpha=32,targets=q_proj,v_proj,lr=2e-4")
    assert (cur.r, cur.lora_alpha, cur.targets, cur.lr) == (16, 32.0, ["q_proj", "v_proj"], 2e-4)
    assert cur.ratio == 2.0
    assert parse_current("r=8,targets=all-linear").targets == "all-linear"


def test_peft_adapter_config(tmp_path):
    path = tmp_path / "adapter_config.json"
    path.write_text(json.dumps({"r": 8, "lora_alpha": 16, "target_modules": ["query", "value"],
                                "rank_pattern": {"encoder.layer.0.attention.self.query": 4},
                                "alpha_pattern": {"encoder.layer.0.attention.self.query": 8}}))
    cur = parse_current(str(path), lr=1e-3)
    assert cur.r == 8 and cur.lora_alpha == 16 and cur.targets == ["query", "value"] and cur.lr == 1e-3
    assert cur.rank_pattern == {"encoder.layer.0.attention.self.query": 4}


def test_axolotl_yaml(tmp_path):
    path = tmp_path / "lora.yaml"
    path.write_text("lora_r: 32\nlora_alpha: 16\nlora_target_modules:\n  - q_proj\n  - k_proj\nlearning_rate: 0.0003\n")
    cur = parse_current(str(path))
    assert (cur.r, cur.lora_alpha, cur.targets, cur.lr) == (32, 16.0, ["q_proj", "k_proj"], 3e-4)
    path.write_text("lora_r: 4\nlora_target_linear: true\n")
    assert parse_current(str(path)).targets == "all-linear"


@pytest.mark.parametrize("text", ["r=0,targets=query", "alpha=3", "r=4,bogus=1", "r=4,lr=-1", "missing.json"])
def test_bad_current_is_one_error(text):
    with pytest.raises(AdaRankError):
        parse_current(text)


def test_halvings():
    assert halvings(16) == [8, 4, 2, 1] and halvings(6) == [3, 1] and halvings(1) == []


def test_arms_ordered_by_cost_and_counted(tiny_bert):
    cur = parse_current("r=8,alpha=16,targets=query,value")
    mods = current_modules(tiny_bert, cur)
    arms = build_arms(cur, model_modules(tiny_bert), mods, None)
    shapes = {m.name: m.shape for m in model_modules(tiny_bert)}
    for arm in arms:  # parameters are sum r_i (d_in + d_out)
        assert arm.trainable_params == sum(r * (shapes[n][0] + shapes[n][1]) for n, r in arm.ranks.items())
        assert arm.trainable_params <= arms[0].trainable_params
    ladder = arms[2:]
    keys = [(a.trainable_params, a.max_rank) for a in ladder]
    assert keys == sorted(keys, reverse=True)
    names = {a.name for a in arms}
    assert {"current", "current-tuned", "uniform-r4", "uniform-r1"} <= names
    assert any(n.endswith("-attention") for n in names) and any(n.endswith("-mlp") for n in names)


def test_targets_that_miss_the_model_are_refused(tiny_bert):
    with pytest.raises(AdaRankError, match="do not match"):
        current_modules(tiny_bert, parse_current("r=8,targets=query,q_proj"))
