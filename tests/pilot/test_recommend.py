"""The recommended-config export: PEFT loads it and gives each module its rank and scale; axolotl keys; vLLM."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from adarank.errors import AdaRankError
from adarank.peft_export import pattern_key, target_regex
from adarank.pilot.recommend import (
    VLLM_MAX_LORA_RANKS,
    AdapterChoice,
    max_lora_rank,
    write_recommended,
)


def tiny_llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    return LlamaForCausalLM(config)


def lora_modules(model) -> dict[str, object]:
    from peft.tuners.lora import LoraLayer

    return {name.removeprefix("base_model.model."): m for name, m in model.named_modules() if isinstance(m, LoraLayer)}


PLANNED = {  # full module name -> rank, as AdaRank's plan export names them
    "model.layers.0.self_attn.q_proj": 8, "model.layers.1.self_attn.q_proj": 2,
    "model.layers.0.self_attn.v_proj": 4, "model.layers.1.self_attn.v_proj": 4,
    "model.layers.0.mlp.down_proj": 1, "model.layers.1.mlp.down_proj": 6,
}


def planned_choice(name: str = "adarank-r4", **changes) -> AdapterChoice:
    base = {"name": name, "r": 4, "lora_alpha": 8.0, "target_modules": [target_regex(list(PLANNED))],
                "rank_pattern": {pattern_key(n): r for n, r in PLANNED.items()},
                "alpha_pattern": {pattern_key(n): 8.0 * r / 4 for n, r in PLANNED.items()},
                "lr": 3e-4, "task_type": "CAUSAL_LM"}
    base.update(changes)
    return AdapterChoice(**base)


def uniform_choice() -> AdapterChoice:
    return AdapterChoice(name="uniform-r16", r=16, lora_alpha=32, target_modules=["q_proj", "v_proj"],
                         rank_pattern={}, alpha_pattern={}, lr=1e-4, task_type="CAUSAL_LM")


def test_planned_config_loads_in_peft_and_gives_every_module_its_rank_and_scale(tmp_path) -> None:
    from peft import LoraConfig, get_peft_model

    summary = write_recommended(tmp_path, planned_choice())
    loaded = LoraConfig.from_pretrained(str(tmp_path))
    assert loaded.r == 4 and loaded.lora_alpha == 8
    assert json.loads((tmp_path / "adapter_config.json").read_text())["peft_type"] == "LORA"
    model = get_peft_model(tiny_llama(), loaded)
    layers = lora_modules(model)
    assert set(layers) == set(PLANNED)  # exactly the planned modules are adapted
    for name, rank in PLANNED.items():
        layer = layers[name]
        assert layer.lora_A["default"].weight.shape[0] == rank, name
        assert layer.scaling["default"] == pytest.approx(2.0), name  # alpha_i / r_i = 8 / 4 everywhere
    assert summary["max_rank"] == 8 and summary["max_lora_rank"] == 8
    assert summary["best"] is None and summary["lr"] == pytest.approx(3e-4)
    serving = (tmp_path / "serving.md").read_text()
    assert "--max-lora-rank 8" in serving and "largest rank of any module: **8**" in serving


def test_uniform_config_and_best_folder(tmp_path) -> None:
    from peft import LoraConfig, get_peft_model

    summary = write_recommended(tmp_path, planned_choice(), best=uniform_choice())
    best = tmp_path / "best"
    loaded = LoraConfig.from_pretrained(str(best))
    layers = lora_modules(get_peft_model(tiny_llama(), loaded))
    assert sorted(layers) == sorted(f"model.layers.{i}.self_attn.{p}" for i in (0, 1) for p in ("q_proj", "v_proj"))
    assert all(m.lora_A["default"].weight.shape[0] == 16 and m.scaling["default"] == 2.0 for m in layers.values())
    assert summary["best"]["max_lora_rank"] == 16 and summary["best"]["folder"] == str(best)
    # the same arm as best writes no second folder, and removes a stale one
    again = write_recommended(tmp_path, planned_choice(), best=planned_choice())
    assert again["best"] is None and not best.exists()


def test_axolotl_yaml_round_trips(tmp_path) -> None:
    write_recommended(tmp_path, planned_choice(), best=uniform_choice())
    data = yaml.safe_load((tmp_path / "axolotl.yaml").read_text())
    assert data["adapter"] == "lora" and data["lora_r"] == 4 and data["lora_alpha"] == 8
    assert data["lora_target_modules"] == target_regex(list(PLANNED))
    assert data["lora_rank_pattern"] == {pattern_key(n): r for n, r in PLANNED.items()}
    assert data["lora_alpha_pattern"] == {pattern_key(n): 2 * r for n, r in PLANNED.items()}
    assert data["learning_rate"] == pytest.approx(3e-4)
    uniform = yaml.safe_load((tmp_path / "best" / "axolotl.yaml").read_text())
    assert uniform["lora_target_modules"] == ["q_proj", "v_proj"] and uniform["lora_r"] == 16
    assert "lora_rank_pattern" not in uniform and "lora_alpha_pattern" not in uniform


def test_a_broken_alpha_ratio_is_refused_and_nothing_written(tmp_path) -> None:
    key = pattern_key("model.layers.0.mlp.down_proj")
    bad = planned_choice(alpha_pattern={**planned_choice().alpha_pattern, key: 8.0})  # rank 1 at alpha 8: scale 8
    with pytest.raises(AdaRankError, match=r"down_proj.*scale"):
        write_recommended(tmp_path / "a", bad)
    assert not (tmp_path / "a").exists()
    with pytest.raises(AdaRankError, match="scale"):  # a refused best leaves the cheapest unwritten too
        write_recommended(tmp_path / "b", uniform_choice(), best=bad)
    assert not (tmp_path / "b" / "adapter_config.json").exists()
    # a rank key without an alpha key gets lora_alpha at a different rank: also a broken ratio
    with pytest.raises(AdaRankError, match="scale"):
        write_recommended(tmp_path / "c", planned_choice(alpha_pattern={}))


@pytest.mark.parametrize("changes, fragment", [
    ({"r": 0}, "r must"), ({"lora_alpha": float("nan")}, "lora_alpha"), ({"lr": -1.0}, "learning rate"),
    ({"target_modules": []}, "target_modules"), ({"rank_pattern": {"x": 0}, "alpha_pattern": {}}, "rank_pattern"),
])
def test_bad_choices_are_refused(tmp_path, changes, fragment) -> None:
    with pytest.raises(AdaRankError, match=fragment):
        write_recommended(tmp_path, planned_choice(**changes))


def test_max_lora_rank_is_the_smallest_accepted_value_covering_the_rank() -> None:
    for rank in range(1, 601):
        if rank > VLLM_MAX_LORA_RANKS[-1]:
            with pytest.raises(AdaRankError, match="512"):
                max_lora_rank(rank)
            continue
        value = max_lora_rank(rank)
        assert value in VLLM_MAX_LORA_RANKS and value >= rank
        assert all(v < rank for v in VLLM_MAX_LORA_RANKS if v < value)
    assert [max_lora_rank(r) for r in (1, 8, 9, 256, 257, 320, 321)] == [8, 8, 16, 256, 320, 320, 512]
    with pytest.raises(AdaRankError):
        max_lora_rank(0)
