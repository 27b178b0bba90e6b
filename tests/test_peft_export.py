import json
import re
from dataclasses import replace

import pytest
import torch
from peft import PeftModel, get_peft_model

from adarank.errors import AdaRankError
from adarank.peft_export import config_to_json_dict, peft_pattern_matches, resolve_module_names, yaml_snippet
from adarank.predict import predict_ranks
from adarank.scoring import ScoreConfig

from conftest import random_probes, tiny_bert_model


@pytest.fixture
def bert_plan(tiny_bert):
    return predict_ranks(tiny_bert, rank=4, targets=["query", "value", "intermediate.dense"],
                         probes=random_probes(30522, token_types=True), rule="exact", groups="joint",
                         score_config=ScoreConfig(trials=2), progress=False)


def lora_ranks(peft_model) -> dict[str, int]:
    out = {}
    for name, module in peft_model.named_modules():
        if hasattr(module, "lora_A") and "default" in module.lora_A:
            out[name.removeprefix("base_model.model.")] = module.lora_A["default"].weight.shape[0]
    return out


def test_peft_round_trip_on_another_wrapper(bert_plan, tmp_path):
    """Scored on BertModel, trained as BertForSequenceClassification ('bert.' prefix)."""
    plan = bert_plan.reallocate(rank=4, rule="floor", groups="joint")
    if all(m.rank > 0 for m in plan.modules):  # make sure rank-0 handling is exercised
        plan.modules[0].rank = 0
    model = tiny_bert_model("BertForSequenceClassification", num_labels=3)
    config = plan.to_lora_config(model, lora_alpha=8, task_type="SEQ_CLS", modules_to_save=["classifier"])
    peft_model = get_peft_model(model, config)
    expected = {"bert." + m.name: m.rank for m in plan.modules if m.rank > 0}
    assert lora_ranks(peft_model) == expected
    # alpha/r is the uniform baseline's 8/4 everywhere
    scalings = [m.scaling["default"] for m in peft_model.modules()
                if isinstance(getattr(m, "scaling", None), dict) and "default" in m.scaling]
    assert len(scalings) == len(expected)
    assert scalings == pytest.approx([2.0] * len(expected))
    # one training step moves the LoRA weights
    opt = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=1e-2)
    batch = random_probes(30522, token_types=True).inputs
    out = peft_model(**batch, labels=torch.tensor([0, 1, 2, 0, 1, 2]))
    out.loss.backward()
    opt.step()
    peft_model.save_pretrained(tmp_path / "adapter")
    saved = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert saved["rank_pattern"] == config.rank_pattern
    reloaded = PeftModel.from_pretrained(tiny_bert_model("BertForSequenceClassification", num_labels=3),
                                         tmp_path / "adapter")
    assert lora_ranks(reloaded) == expected


def test_keys_select_the_full_name_alone_or_under_a_prefix(bert_plan):
    """A key is the whole planned name: it survives a wrapper's prefix but never hits a neighbour."""
    config = bert_plan.to_lora_config()
    key_l1 = next(k for k in config.rank_pattern if "layer\\.1\\.attention\\.self\\.value" in k)
    assert peft_pattern_matches(key_l1, "encoder.layer.1.attention.self.value")
    assert peft_pattern_matches(key_l1, "bert.encoder.layer.1.attention.self.value")
    assert not peft_pattern_matches(key_l1, "encoder.layer.11.attention.self.value")
    assert not peft_pattern_matches(key_l1, "xencoder.layer.1.attention.self.value")  # only after a "."
    assert not peft_pattern_matches(key_l1, "encoder.layer.1.attention.self.value.extra")
    regex = re.compile(config.target_modules)
    assert regex.fullmatch("bert.encoder.layer.1.attention.self.value")
    assert not regex.fullmatch("encoder.layer.1.attention.self.key")
    assert not regex.fullmatch("bert_encoder.layer.1.attention.self.value")
    assert config.r == 4 and config.lora_alpha == 8
    for key, r in config.rank_pattern.items():
        assert config.alpha_pattern[key] == pytest.approx(8 * r / 4)


def test_unresolved_config_gives_planned_ranks_on_a_prefixed_wrapper(bert_plan):
    """Without model=..., the config gives the planned ranks on the scored model and on a wrapper that
    adds a prefix (before, the wrapper trained every module at r̄), and is refused where the names are missing."""
    config = bert_plan.to_lora_config()
    planned = {m.name: m.rank for m in bert_plan.modules if m.rank > 0}
    assert len(set(planned.values())) > 1
    assert lora_ranks(get_peft_model(tiny_bert_model(), config)) == planned
    wrapper = get_peft_model(tiny_bert_model("BertForSequenceClassification", num_labels=3), bert_plan.to_lora_config())
    assert lora_ranks(wrapper) == {"bert." + n: r for n, r in planned.items()}
    renamed = replace(bert_plan, modules=[replace(m, name="bert." + m.name) for m in bert_plan.modules])
    with pytest.raises(ValueError, match="not found"):
        get_peft_model(tiny_bert_model(), renamed.to_lora_config())


def test_a_suffix_of_a_planned_name_keeps_its_own_rank():
    """Top-level `proj` and `blocks.0.proj` both planned: PEFT takes the first matching key, so the deeper
    name's key must come first or `blocks.0.proj` would get `proj`'s rank."""
    from torch import nn

    from adarank.plan import RankPlan

    class Nested(nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = nn.Linear(8, 8)
            self.blocks = nn.ModuleList(nn.ModuleDict({"proj": nn.Linear(8, 8)}) for _ in range(2))

    data = {"model": "nested", "settings": {}, "schema_version": 1,
            "budget": {"rank": 4, "unit": "ranks", "rule": "exact", "groups": "joint", "min_rank": 0,
                       "max_rank": None, "total": 12, "used": 12},
            "modules": [{"name": n, "type": n, "block": None, "shape": [8, 8], "scores": [1.0],
                         "score_mean": 1.0, "score_std": 0.0, "rank": r, "aliases": []}
                        for n, r in (("proj", 6), ("blocks.0.proj", 2), ("blocks.1.proj", 4))]}
    plan = RankPlan.from_dict(data)
    assert lora_ranks(get_peft_model(Nested(), plan.to_lora_config())) == {"proj": 6, "blocks.0.proj": 2,
                                                                           "blocks.1.proj": 4}
    plan.modules[1].rank = 0  # blocks.0.proj must not be adapted, but no pattern for `proj` can spare it
    with pytest.raises(AdaRankError, match="blocks.0.proj"):
        plan.to_lora_config(Nested())


def test_rank_zero_modules_are_left_out(bert_plan, tiny_bert):
    plan = bert_plan
    plan.modules[1].rank = 0
    config = plan.to_lora_config(tiny_bert)
    assert plan.modules[1].name not in config.target_modules
    assert all(plan.modules[1].name not in k.replace("\\", "") for k in config.rank_pattern)
    for m in plan.modules:
        m.rank = 0
    with pytest.raises(AdaRankError, match="rank 0"):
        plan.to_lora_config()


def test_missing_or_ambiguous_names_are_refused(bert_plan, tiny_gpt2):
    with pytest.raises(AdaRankError, match="missing"):
        bert_plan.to_lora_config(tiny_gpt2)
    with pytest.raises(AdaRankError, match="ambiguous"):
        resolve_module_names(["value"], tiny_bert_model())


def test_exports_are_plain_json_and_yaml(bert_plan):
    import yaml

    config = bert_plan.to_lora_config()
    data = config_to_json_dict(config)
    json.dumps(data)
    assert data["peft_type"] == "LORA" and data["rank_pattern"] == config.rank_pattern
    snippet = yaml.safe_load(yaml_snippet(config, bert_plan))
    assert snippet["lora_rank_pattern"] == config.rank_pattern
    assert snippet["lora_alpha_pattern"] == config.alpha_pattern
