"""Decoder LLMs end to end through the command line: tiny random Gemma 3 and Llama folders."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from adarank.cli import main
from adarank.probes import BUILTIN_SENTENCES

SEVEN_TYPES = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
               "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"}
LAYERS = 2


def word_tokenizer():
    """A word-level tokenizer over the built-in probe words: a real tokenizer with a vocabulary small
    enough that logits over it cost nothing."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = sorted({w for s in BUILTIN_SENTENCES for w in re.findall(r"\w+|[^\w\s]", s.lower())})
    vocab = {"<pad>": 0, "<unk>": 1, "<s>": 2, "</s>": 3, **{w: i + 4 for i, w in enumerate(words)}}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", pad_token="<pad>",
                                   bos_token="<s>", eos_token="</s>")


def tiny_decoder(kind: str, vocab_size: int):
    import transformers

    ids = dict(vocab_size=vocab_size, pad_token_id=0, bos_token_id=2, eos_token_id=3)
    torch.manual_seed(0)
    if kind == "gemma3":
        config = transformers.Gemma3TextConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=LAYERS,
                                               num_attention_heads=4, num_key_value_heads=2, head_dim=8,
                                               max_position_embeddings=128, sliding_window=16, **ids)
        return transformers.Gemma3ForCausalLM(config).eval()
    config = transformers.LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=LAYERS,
                                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128, **ids)
    return transformers.LlamaForCausalLM(config).eval()


@pytest.fixture(scope="module", params=["gemma3", "llama"])
def decoder_dir(request, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp(f"tiny-{request.param}")
    tokenizer = word_tokenizer()
    tiny_decoder(request.param, len(tokenizer)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_predict_scores_all_seven_types_on_the_logits(decoder_dir, tmp_path, capsys):
    out = tmp_path / "plan"
    assert main(["predict", str(decoder_dir), "--rank", "4", "--trials", "2", "--out", str(out), "--quiet"]) == 0
    plan = json.loads((out / "plan.json").read_text())
    assert plan["settings"]["output"] == "logits"  # the LM head is there: the paper's compared output
    for block in range(LAYERS):
        assert {m["type"] for m in plan["modules"] if m["block"] == block} == SEVEN_TYPES
    # names as PEFT sees them on the causal LM that will be fine-tuned
    assert all(m["name"].startswith(f"model.layers.{m['block']}.") for m in plan["modules"])
    assert (out / "ranks.png").stat().st_size > 1000
    config = json.loads((out / "lora_config.json").read_text())
    import re

    names = {m["name"] for m in plan["modules"]}
    selected = {n for n in names if re.fullmatch(config["target_modules"], n)}
    assert selected == {m["name"] for m in plan["modules"] if m["rank"] > 0}
    assert "serving: largest rank" in capsys.readouterr().out


def test_inspect_lists_the_seven_types_per_block(decoder_dir, capsys):
    assert main(["inspect", str(decoder_dir)]) == 0
    text = capsys.readouterr().out
    assert "block stack: model.layers (2 blocks)" in text
    for type_ in SEVEN_TYPES:
        assert re.search(rf"^{re.escape(type_)}\s+\d+ x \d+\s+0-1$", text, re.M), type_
    assert f"{7 * LAYERS} modules in 7 types over {LAYERS} blocks" in text


def test_an_encoder_folder_still_loads_headless(tiny_bert_dir):
    """Only checkpoints saved as causal LMs gain their head; a BERT folder stays an AutoModel."""
    from adarank.loading import load_model

    assert type(load_model(str(tiny_bert_dir))).__name__ == "BertModel"


DECODER_CONFIGS = {
    "Qwen2ForCausalLM": ("Qwen2Config", SEVEN_TYPES),
    "Qwen3ForCausalLM": ("Qwen3Config", SEVEN_TYPES),
    "MistralForCausalLM": ("MistralConfig", SEVEN_TYPES),
    "Gemma2ForCausalLM": ("Gemma2Config", SEVEN_TYPES),
    "GPT2LMHeadModel": ("GPT2Config", {"attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"}),
}


@pytest.mark.parametrize("cls_name", list(DECODER_CONFIGS))
def test_other_decoder_folders_load_with_their_lm_head(cls_name, tmp_path):
    import transformers

    from adarank.loading import load_model
    from adarank.targets import select_targets

    config_name, types = DECODER_CONFIGS[cls_name]
    if config_name == "GPT2Config":
        config = transformers.GPT2Config(n_layer=LAYERS, n_embd=32, n_head=2, vocab_size=64, n_positions=64)
    else:
        config = getattr(transformers, config_name)(hidden_size=32, intermediate_size=64, num_hidden_layers=LAYERS,
                                                    num_attention_heads=4, num_key_value_heads=2, head_dim=8,
                                                    vocab_size=64, max_position_embeddings=64)
    getattr(transformers, cls_name)(config).save_pretrained(tmp_path)
    model = load_model(str(tmp_path))
    assert type(model).__name__ == cls_name and model.get_output_embeddings() is not None
    targets = select_targets(model)
    assert {t.type for t in targets} == types and {t.block for t in targets} == set(range(LAYERS))
    assert all("lm_head" not in t.name for t in targets)  # the head is compared, not adapted
