"""The files `adarank predict` writes, applied by plain PEFT to other wrappers of the scored network.

A config that PEFT half-applies (the targets found, the rank keys not) trains every module at the
default rank: a uniform-LoRA run under an AdaRank label. Whatever wrapper the written config meets,
each planned module must get exactly its rank and scale, or PEFT must refuse the config.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import transformers
import yaml
from peft import LoraConfig, get_peft_model

from adarank.cli import main
from adarank.targets import matches_key

from conftest import tiny_bert_model

WRAPPERS = {
    "bert": {"base": "BertModel", "seq-cls": "BertForSequenceClassification", "causal-lm": "BertLMHeadModel"},
    "llama": {"base": "LlamaModel", "seq-cls": "LlamaForSequenceClassification", "causal-lm": "LlamaForCausalLM"},
}


@pytest.fixture(scope="module")
def tiny_llama_dir(tmp_path_factory, minilm_path) -> Path:
    """A saved tiny random Llama with MiniLM's tokenizer (vocabulary sized to it, no token types)."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    folder = tmp_path_factory.mktemp("tiny-llama")
    config = LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, vocab_size=30522, max_position_embeddings=64,
                         bos_token_id=0, eos_token_id=0, pad_token_id=0)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(minilm_path)
    tokenizer.model_input_names = ["input_ids", "attention_mask"]
    tokenizer.save_pretrained(folder)
    return folder


def _predict(folder: Path, out: Path, apply_to: str, targets: str) -> dict[str, int]:
    code = main(["predict", str(folder), "--targets", targets, "--rank", "4", "--rule", "exact", "--trials", "2",
                 # joint: the tiny random Llama's two blocks score alike within a type, so per-type budgets round to uniform
                 "--groups", "joint" if "llama" in folder.name else "type", "--apply-to", apply_to, "--out", str(out), "--quiet"])
    assert code == 0
    plan = json.loads((out / "plan.json").read_text())
    ranks = {m["name"]: m["rank"] for m in plan["modules"]}
    assert len(set(ranks.values())) > 1, "the plan must not be uniform, or the test could not tell"
    return ranks


def _config_from_json(out: Path, tmp: Path) -> LoraConfig:
    """`lora_config.json` read the way PEFT reads an adapter's `adapter_config.json`."""
    folder = tmp / "as-adapter"
    folder.mkdir(exist_ok=True)
    shutil.copy(out / "lora_config.json", folder / "adapter_config.json")
    return LoraConfig.from_pretrained(folder)


def _config_from_yaml(out: Path, tmp: Path) -> LoraConfig:
    """`lora_patterns.yaml` passed through the way axolotl-style tools hand `lora_*` keys to PEFT."""
    data = yaml.safe_load((out / "lora_patterns.yaml").read_text())
    return LoraConfig(r=data["lora_r"], lora_alpha=data["lora_alpha"], target_modules=data["lora_target_modules"],
                      rank_pattern=data["lora_rank_pattern"], alpha_pattern=data["lora_alpha_pattern"])


def _wrapper(family: str, kind: str, folder: Path) -> torch.nn.Module:
    config = transformers.AutoConfig.from_pretrained(folder)
    if family == "bert" and kind == "causal-lm":
        config.is_decoder = True
    torch.manual_seed(0)
    return getattr(transformers, WRAPPERS[family][kind])(config)


def _lora_layers(peft_model) -> dict[str, tuple[int, float]]:
    out = {}
    for name, module in peft_model.named_modules():
        if hasattr(module, "lora_A") and "default" in module.lora_A:
            out[name.removeprefix("base_model.model.")] = (module.lora_A["default"].weight.shape[0],
                                                           module.scaling["default"])
    return out


def _linear_names(model: torch.nn.Module) -> list[str]:
    return [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)]


def _unique(names: list[str], plan_name: str) -> str:
    hits = [n for n in names if matches_key(n, plan_name)]
    assert len(hits) == 1, (plan_name, hits)
    return hits[0]


CASES = [("bert", "base", "query,value"), ("bert", "seq-cls", "query,value"),
         ("llama", "seq-cls", "all-linear"), ("llama", "causal-lm", "all-linear")]


@pytest.mark.parametrize("family,apply_to,targets", CASES)
@pytest.mark.parametrize("reader", [_config_from_json, _config_from_yaml], ids=["json", "yaml"])
def test_written_config_gives_planned_ranks_or_is_refused(family, apply_to, targets, reader, tmp_path,
                                                          tiny_bert_dir, tiny_llama_dir):
    folder = tiny_bert_dir if family == "bert" else tiny_llama_dir
    planned = _predict(folder, tmp_path / "plan", apply_to, targets)
    r_bar, alpha = 4, 8  # --rank 4, default lora_alpha 2·r̄: every module keeps the scale alpha/r̄
    # --apply-to names the modules as the wrapper of that class does (e.g. bert.encoder...).
    resolved = {_unique(_linear_names(_wrapper(family, apply_to, folder)), n): r for n, r in planned.items()}
    for kind in WRAPPERS[family]:
        model = _wrapper(family, kind, folder)
        names = _linear_names(model)
        expected = {}
        for name, rank in resolved.items():
            hits = [n for n in names if matches_key(n, name)]
            if len(hits) == 1 and rank > 0:
                expected[hits[0]] = rank
        if len(expected) < sum(r > 0 for r in planned.values()):
            # The planned names do not occur in this wrapper (a plan resolved for a prefixed wrapper, applied
            # to the bare backbone): PEFT must refuse, not adapt some other set of modules.
            with pytest.raises(ValueError):
                get_peft_model(model, reader(tmp_path / "plan", tmp_path))
            continue
        peft_model = get_peft_model(model, reader(tmp_path / "plan", tmp_path))
        layers = _lora_layers(peft_model)
        assert {n: r for n, (r, _) in layers.items()} == expected, f"{kind}: ranks differ from the plan"
        assert [s for _, s in layers.values()] == pytest.approx([alpha / r_bar] * len(layers))


def test_both_outcomes_occur(tiny_bert_dir, tmp_path):
    """Guard on the test above: a plan for the bare BERT gives its ranks on the classifier (prefix added),
    and a plan resolved for the classifier is refused by the bare BERT (names missing)."""
    base = _predict(tiny_bert_dir, tmp_path / "base", "base", "query,value")
    config = _config_from_json(tmp_path / "base", tmp_path)
    layers = _lora_layers(get_peft_model(tiny_bert_model("BertForSequenceClassification", num_labels=2), config))
    assert {n: r for n, (r, _) in layers.items()} == {"bert." + n: r for n, r in base.items()}
    _predict(tiny_bert_dir, tmp_path / "cls", "seq-cls", "query,value")
    with pytest.raises(ValueError, match="not found"):
        get_peft_model(tiny_bert_model(), _config_from_yaml(tmp_path / "cls", tmp_path))
