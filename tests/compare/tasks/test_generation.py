"""The generation task end to end on a tiny random Llama and Gemma3: every method trains and is scored by decoding."""

from __future__ import annotations

import math
import random

import pytest
import torch

from adarank.compare.datasets.base import GenerationData
from adarank.compare.tasks.generation import TestPrompts, TrainingPairs, greedy_decode, special_prefix
from adarank.compare.train import TrainConfig, run_one
from adarank.errors import AdaRankError


def _tiny_causal_folder(tmp_path, minilm_path, arch: str) -> str:
    """A tiny random causal LM saved with the packaged MiniLM tokenizer (BERT word pieces; [SEP] as EOS)."""
    import transformers
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(minilm_path)
    tok.eos_token, tok.bos_token = "[SEP]", "[CLS]"
    common = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, vocab_size=len(tok), max_position_embeddings=128,
                  bos_token_id=tok.cls_token_id, eos_token_id=tok.sep_token_id, pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    if arch == "llama":
        model = transformers.LlamaForCausalLM(transformers.LlamaConfig(**common))
    else:
        config = transformers.Gemma3TextConfig(head_dim=8, sliding_window=16, **common)
        model = transformers.Gemma3ForCausalLM(config)
    folder = tmp_path / arch
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return str(folder)


def _toy_data(n_train: int = 48, n_test: int = 12) -> GenerationData:
    rng = random.Random(0)
    words = ["red", "blue", "green", "black", "white", "brown"]
    rows = []
    for _ in range(n_train + n_test):
        w = rng.choice(words)
        rows.append((f"Colour: {w}\nDark:", " yes" if w in ("black", "brown", "blue") else " no"))
    train, test = rows[:n_train], rows[n_train:]
    return GenerationData(name="toy", train_prompts=[p for p, _ in train], train_completions=[c for _, c in train],
                          test_prompts=[p for p, _ in test], test_completions=[c for _, c in test],
                          metric="exact_match", max_new_tokens=3, split={"kind": "toy"})


@pytest.fixture(scope="module")
def llama_folder(tmp_path_factory, minilm_path):
    return _tiny_causal_folder(tmp_path_factory.mktemp("gen"), minilm_path, "llama")


_PLANS: dict[str, object] = {}


def _plan(folder: str):
    """An AdaRank plan of every linear module (one trial, a few probes: the ranks only need to differ)."""
    if folder not in _PLANS:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from adarank import ScoreConfig, predict_ranks

        model = AutoModelForCausalLM.from_pretrained(folder)
        _PLANS[folder] = predict_ranks(model, AutoTokenizer.from_pretrained(folder), rank=4, targets="all-linear",
                                       groups="joint", unit="params", progress=False,
                                       probes=["the cat sat on the mat", "a dark colour"],
                                       score_config=ScoreConfig(trials=1))
    return _PLANS[folder]


def test_training_pairs_mask_the_prompt_and_end_with_eos(llama_folder):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(llama_folder)
    pairs = TrainingPairs(tok, ["Colour: red\nDark:"], [" no"], max_length=32)
    batch = pairs.batch([0], torch.device("cpu"))
    ids, labels = batch["input_ids"][0].tolist(), batch["labels"][0].tolist()
    completion = tok(" no", add_special_tokens=False)["input_ids"] + [tok.sep_token_id]
    assert ids[:1] == special_prefix(tok) == [tok.cls_token_id]
    assert [x for x in labels if x != -100] == completion == ids[-len(completion):]
    assert labels[: len(ids) - len(completion)] == [-100] * (len(ids) - len(completion))


def test_over_long_prompts_lose_their_front_and_keep_the_cue(llama_folder):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(llama_folder)
    prompt = "word " * 40 + "\nDark:"
    pairs = TrainingPairs(tok, [prompt], [" no"], max_length=16)
    assert pairs.truncated == 1 and len(pairs.ids[0]) == 16
    assert pairs.ids[0][0] == tok.cls_token_id  # BOS kept
    cue = tok("\nDark:", add_special_tokens=False)["input_ids"]
    target = tok(" no", add_special_tokens=False)["input_ids"] + [tok.sep_token_id]
    assert pairs.ids[0][-len(target) - len(cue):-len(target)] == cue
    dropped = TrainingPairs(tok, ["x"], [" no " * 30], max_length=16)
    assert dropped.dropped == 1 and len(dropped) == 0


def test_batched_left_padded_decoding_equals_one_by_one(llama_folder):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(llama_folder)
    model = AutoModelForCausalLM.from_pretrained(llama_folder).eval()
    prompts = ["Colour: red\nDark:", "a much longer prompt with many more words in it\nDark:", "b"]
    test = TestPrompts(tok, prompts, max_length=64, max_new_tokens=5)
    cpu = dict(device_type="cpu", enabled=False)
    together = greedy_decode(model, tok, test, 5, batch_size=3, device=torch.device("cpu"), autocast=cpu)
    alone = [greedy_decode(model, tok, TestPrompts(tok, [p], 64, 5), 5, 1, torch.device("cpu"), cpu)[0] for p in prompts]
    assert together == alone


@pytest.mark.parametrize("method", ["uniform", "adarank-floor", "eva", "eva-ranks", "adalora", "base-model", "full-ft"])
def test_every_method_trains_a_tiny_llama_on_generation(llama_folder, method):
    from adarank.compare.methods import plan_for_method

    scored = _plan(llama_folder)
    plan = plan_for_method(method, scored, 4, seed=0)
    config = TrainConfig(lr=1e-3, epochs=1, max_steps=6, batch_size=8, max_length=32, bf16=False)
    record = run_one(llama_folder, _toy_data(), method=method, plan=plan, targets=[m.name for m in scored.modules],
                     rank=4, config=config, seed=0, device="cpu")
    assert record["task"] == "generation" and record["metric"] == "exact_match"
    assert 0.0 <= record["test_score"] <= 1.0
    assert record["steps"] == (0 if method == "base-model" else 6)
    # trained by TRL's SFTTrainer (its fused LM head's loss), clipped at the default norm
    assert record["trainer"] == (None if method == "base-model" else "trl.SFTTrainer")
    assert record["loss_logits"] == (None if method == "base-model" else "trl-fused-lm-head")
    assert record["max_grad_norm"] == 1.0 and record["loss_check"] is None
    types = {name.rsplit(".", 1)[-1] for name in record["ranks"]}
    assert types == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    if method in ("base-model", "full-ft"):
        assert record["lora_params"] == 0 and set(record["ranks"].values()) == {0}
        assert (record["trainable_params"] > 0) == (method == "full-ft")
    else:
        assert record["lora_params"] > 0 and record["max_rank"] == max(record["ranks"].values())
    if method == "uniform":
        assert set(record["ranks"].values()) == {4}
    assert record["examples"][0]["reference"] in (" yes", " no")


def test_eva_ranks_arm_takes_evas_ranks_with_plain_init(llama_folder):
    scored = _plan(llama_folder)
    config = TrainConfig(lr=1e-3, epochs=1, max_steps=2, batch_size=8, max_length=32, bf16=False, eva_rho=2.0)
    targets = [m.name for m in scored.modules]
    eva = run_one(llama_folder, _toy_data(), method="eva", plan=None, targets=targets, rank=4, config=config, seed=0,
                  device="cpu")
    plain = run_one(llama_folder, _toy_data(), method="eva-ranks", plan=None, targets=targets, rank=4, config=config,
                    seed=0, device="cpu")
    assert eva["ranks"] == plain["ranks"] and eva["lora_params"] == plain["lora_params"]
    assert len(set(eva["ranks"].values())) > 1  # EVA redistributed: the arms share a non-trivial allocation


def test_a_tiny_gemma3_trains_and_decodes(tmp_path, minilm_path):
    folder = _tiny_causal_folder(tmp_path, minilm_path, "gemma3")
    scored = _plan(folder)
    from adarank.compare.methods import plan_for_method

    plan = plan_for_method("adarank-exact", scored, 4, seed=1)
    record = run_one(folder, _toy_data(), method="adarank-exact", plan=plan, targets=[m.name for m in scored.modules],
                     rank=4, config=TrainConfig(epochs=1, max_steps=3, batch_size=8, max_length=32, bf16=False),
                     seed=1, device="cpu")
    assert record["steps"] == 3 and 0.0 <= record["test_score"] <= 1.0
    assert record["trainer"] == "trl.SFTTrainer" and record["loss_logits"] == "trl-fused-lm-head"
    assert sum(record["ranks"].values()) > 0


def _sft_losses(monkeypatch) -> list[float]:
    """Every training loss SFTTrainer computes in the runs that follow."""
    from trl import SFTTrainer

    losses: list[float] = []
    real = SFTTrainer.compute_loss

    def spy(self, model, inputs, *args, **kwargs):
        # the prompt is outside the loss: labels are -100 wherever the completion mask is 0
        assert "completion_mask" not in inputs and bool((inputs["labels"][:, 0] == -100).all())
        loss = real(self, model, inputs, *args, **kwargs)
        losses.append(float(loss.detach()))
        return loss

    monkeypatch.setattr(SFTTrainer, "compute_loss", spy)
    return losses


@pytest.mark.parametrize("arch", ["llama", "gemma3"])
def test_the_same_seed_gives_the_same_sft_run(tmp_path, minilm_path, monkeypatch, arch):
    folder = _tiny_causal_folder(tmp_path, minilm_path, arch)
    scored = _plan(folder)
    from adarank.compare.methods import plan_for_method

    plan = plan_for_method("adarank-exact", scored, 4, seed=2)
    losses = _sft_losses(monkeypatch)
    config = TrainConfig(lr=1e-2, epochs=1, max_steps=3, batch_size=8, max_length=32, bf16=False)
    runs = [run_one(folder, _toy_data(), method="adarank-exact", plan=plan, targets=[m.name for m in scored.modules],
                    rank=4, config=config, seed=2, device="cpu") for _ in range(2)]
    assert len(losses) == 6 and all(math.isfinite(x) for x in losses)
    assert losses[:3] == losses[3:]
    assert runs[0]["test_score"] == runs[1]["test_score"]
    assert [e["prediction"] for e in runs[0]["examples"]] == [e["prediction"] for e in runs[1]["examples"]]
    assert runs[0]["ranks"] == plan.ranks


def test_a_huge_learning_rate_ends_the_sft_run_as_diverged(llama_folder):
    from adarank.compare.methods import plan_for_method
    from adarank.compare.train import DIVERGED_MESSAGE

    scored = _plan(llama_folder)
    config = TrainConfig(lr=1e30, epochs=1, max_steps=3, batch_size=8, max_length=32, bf16=False)
    with pytest.raises(AdaRankError, match=f"^{DIVERGED_MESSAGE}"):
        run_one(llama_folder, _toy_data(), method="uniform", plan=plan_for_method("uniform", scored, 4, seed=0),
                targets=[m.name for m in scored.modules], rank=4, config=config, seed=0, device="cpu")


def test_the_decoding_budget_fits_the_longest_reference_in_this_tokenizers_tokens(llama_folder):
    from dataclasses import replace

    from transformers import AutoTokenizer

    from adarank.compare.tasks.generation import Generation

    tok = AutoTokenizer.from_pretrained(llama_folder)
    data = replace(_toy_data(), test_completions=[" yes"] * 11 + [" unbelievably long answer " * 3], max_new_tokens=3)
    longest = len(tok(data.test_completions[-1], add_special_tokens=False)["input_ids"])
    config = TrainConfig()
    assert Generation.max_new_tokens(data, config, tok) == longest + 2 > 3
    assert Generation.max_new_tokens(data, TrainConfig(max_new_tokens=4), tok) == 4


def test_evaluation_prompts_cut_to_fit_the_decoding_budget_are_an_error_not_a_score(llama_folder):
    from transformers import AutoTokenizer

    from adarank.compare.tasks.generation import Generation
    from adarank.errors import AdaRankError

    tok = AutoTokenizer.from_pretrained(llama_folder)
    prompts = [f"Words: {'a b c d ' * 6}\nTags:"] * 10
    data = GenerationData(name="long", train_prompts=["x"], train_completions=[" y"], test_prompts=prompts,
                          test_completions=[" B-NP"] * 10, metric="exact_match", max_new_tokens=8)
    task = Generation()
    # 64 tokens with 8 for decoding: every prompt fits
    assert task.encode(tok, data, TrainConfig(max_length=64, max_new_tokens=8), "test").truncated == 0
    # a budget as large as max_length left each prompt its BOS and one token: what an early CoNLL sweep scored
    with pytest.raises(AdaRankError, match=r"10 of 10 evaluation prompts of 'long'.*raise max_length"):
        task.encode(tok, data, TrainConfig(max_length=16, max_new_tokens=16), "test")
