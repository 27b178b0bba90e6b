"""run_one on a tiny random BERT and a tiny synthetic dataset: result record, LoRA layout, guard,
determinism, EVA and AdaLoRA."""

from __future__ import annotations

import json
import math
import random
from dataclasses import replace

import numpy as np
import peft
import pytest
import torch

from adarank.compare.methods import plan_for_method
from adarank.compare.train import (RESULT_KEYS, TrainConfig, _adalora_schedule, _lora_layers, check_lora_layout,
                                 macro_f1, run_one)
from adarank.errors import AdaRankError

RANK = 4
SMOKE = dict(max_steps=5, batch_size=16, eval_batch_size=16, max_length=16, lr=1e-3)


def toy_data():
    from adarank.compare.data import TextClassificationData

    rng = random.Random(0)
    pos, neg, filler = ["good", "great", "fine"], ["bad", "awful", "poor"], ["movie", "film", "plot", "the", "was"]

    def make(n):
        texts, labels = [], []
        for i in range(n):
            label = i % 2
            words = [rng.choice(neg if label else pos)] + [rng.choice(filler) for _ in range(rng.randint(1, 8))]
            rng.shuffle(words)
            texts.append(" ".join(words))
            labels.append(label)
        return texts, labels

    train_texts, train_labels = make(64)
    test_texts, test_labels = make(32)
    return TextClassificationData("toy", train_texts, train_labels, test_texts, test_labels, ["pos", "neg"],
                                  {"source": "synthetic", "seed": 0})


@pytest.fixture(scope="module")
def data():
    return toy_data()


@pytest.fixture(scope="module")
def scored(tiny_bert_dir):
    from transformers import AutoModel, AutoTokenizer

    from adarank.predict import predict_ranks
    from adarank.scoring import ScoreConfig

    model = AutoModel.from_pretrained(tiny_bert_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    return predict_ranks(model, tokenizer, rank=RANK, targets=["value"], score_config=ScoreConfig(trials=2),
                         progress=False)


@pytest.fixture
def captured(monkeypatch):
    """Every model handed to peft.get_peft_model during a run, with its head weights at that moment."""
    seen: list[dict] = []
    real = peft.get_peft_model

    def spy(model, config, *args, **kwargs):
        head = model.classifier.weight.detach().clone()
        wrapped = real(model, config, *args, **kwargs)
        seen.append({"model": wrapped, "head": head})
        return wrapped

    monkeypatch.setattr(peft, "get_peft_model", spy)
    return seen


def run(tiny_bert_dir, data, scored, method, seed=0, **overrides):
    plan = plan_for_method(method, scored, RANK, seed)
    targets = [m.name for m in scored.modules]
    return run_one(str(tiny_bert_dir), data, method=method, plan=plan, targets=targets, rank=RANK,
                   config=TrainConfig(**{**SMOKE, **overrides}), seed=seed, device="cpu")


def lora_ranks(peft_model) -> dict[str, int]:
    from peft.tuners.lora import LoraLayer

    inner = peft_model.base_model.model
    return {name: m.lora_A["default"].weight.shape[0] for name, m in inner.named_modules() if isinstance(m, LoraLayer)}


@pytest.mark.parametrize("method", ["uniform", "adarank-exact"])
def test_run_one_returns_the_record_and_trains_the_planned_layout(tiny_bert_dir, data, scored, captured, method):
    result = run_one(str(tiny_bert_dir), data, method=method, plan=plan_for_method(method, scored, RANK, 0),
                     targets=[m.name for m in scored.modules], rank=RANK, config=TrainConfig(**SMOKE), seed=0,
                     device="cpu", extra={"commit": "abc123"})
    assert set(result) == set(RESULT_KEYS) | {"commit", "test_accuracy", "test_macro_f1"}
    assert result["test_score"] == result["test_accuracy"] and result["metric"] == "accuracy"
    json.dumps(result)  # JSON-serialisable as it is
    plan = plan_for_method(method, scored, RANK, 0)
    assert result["method"] == method and result["rank"] == RANK and result["seed"] == 0
    assert result["dataset"] == "toy" and result["split"] == data.split
    assert result["model"] == tiny_bert_dir.name and result["device"] == "cpu"
    assert result["targets"] == [m.name for m in scored.modules]
    assert result["ranks"] == plan.ranks
    assert result["steps"] == 5 and result["loss_logits"] == "full" and result["loss_check"] is None
    assert result["trainer"] == "transformers.Trainer" and result["max_grad_norm"] == 1.0
    assert 0.0 <= result["test_accuracy"] <= 1.0 and 0.0 <= result["test_macro_f1"] <= 1.0
    assert result["lora_params"] == result["lora_params_train"] == sum(m.rank * m.cost for m in plan.modules)
    assert result["head_params"] == 32 * 2 + 2
    assert result["hparams"]["max_steps"] == 5 and result["commit"] == "abc123"
    assert result["train_seconds"] <= result["wall_seconds"]
    if method == "uniform":
        assert set(result["ranks"].values()) == {RANK}

    # the trained model carries exactly the plan: A has r_i rows, rank-0 modules have no LoRA layer
    (seen,) = captured
    expected = {"bert." + m.name: m.rank for m in plan.modules if m.rank > 0}
    assert lora_ranks(seen["model"]) == expected
    trainable = {n for n, p in seen["model"].named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or "classifier" in n for n in trainable)


def test_adarank_plan_with_rank_zero_modules_leaves_them_plain(tiny_bert_dir, data, scored, captured):
    # a plan that starves block 0: scores 0 there, so exact allocation gives it rank 0
    modules = [replace(m, score_mean=0.0 if m.block == 0 else 1.0) for m in scored.modules]
    starved = replace(scored, modules=modules)
    plan = plan_for_method("adarank-exact", starved, RANK, 0)
    assert plan.modules[0].rank == 0
    result = run_one(str(tiny_bert_dir), data, method="adarank-exact", plan=plan,
                     targets=[m.name for m in plan.modules], rank=RANK, config=TrainConfig(**SMOKE), seed=0,
                     device="cpu")
    assert result["ranks"] == plan.ranks
    layer0 = captured[0]["model"].base_model.model.get_submodule("bert." + plan.modules[0].name)
    assert type(layer0) is torch.nn.Linear


def test_same_seed_gives_identical_runs_and_heads_match_across_methods(tiny_bert_dir, data, scored, captured):
    a = run(tiny_bert_dir, data, scored, "uniform", seed=3, max_steps=3)
    b = run(tiny_bert_dir, data, scored, "uniform", seed=3, max_steps=3)
    c = run(tiny_bert_dir, data, scored, "adarank-exact", seed=3, max_steps=1)
    d = run(tiny_bert_dir, data, scored, "uniform", seed=4, max_steps=1)
    assert a["test_accuracy"] == b["test_accuracy"] and a["test_macro_f1"] == b["test_macro_f1"]
    state_a = {n: p for n, p in captured[0]["model"].named_parameters() if p.requires_grad}
    state_b = {n: p for n, p in captured[1]["model"].named_parameters() if p.requires_grad}
    assert state_a.keys() == state_b.keys()
    assert all(torch.equal(state_a[n], state_b[n]) for n in state_a)
    # the new head starts the same for every method of a seed, and differently for another seed
    assert torch.equal(captured[0]["head"], captured[2]["head"])
    assert not torch.equal(captured[0]["head"], captured[3]["head"])
    assert c["method"] == "adarank-exact" and d["seed"] == 4


def test_plan_names_missing_from_the_model_abort(tiny_bert_dir, data, scored):
    bogus = replace(scored, modules=[replace(m, name=m.name.replace("value", "valu")) for m in scored.modules])
    with pytest.raises(AdaRankError):
        run_one(str(tiny_bert_dir), data, method="adarank-exact", plan=plan_for_method("adarank-exact", bogus, RANK, 0),
                targets=[m.name for m in bogus.modules], rank=RANK, config=TrainConfig(**SMOKE), seed=0,
                device="cpu")


def test_patterns_that_match_nothing_abort_before_training(tiny_bert_dir, data, scored, monkeypatch):
    """A config whose rank_pattern keys miss the modules (built for the bare backbone's names, applied
    to the task model) would train uniform LoRA; the layout guard must stop the run."""
    from adarank import plan as plan_module
    from adarank.peft_export import lora_config_from_plan

    def suffix_matching_config(self, model=None, **kw):
        # What a hand-made config looks like: plain module names in target_modules (PEFT suffix-matches
        # them on the task model) but rank keys anchored to the backbone's names (they match nothing).
        config = lora_config_from_plan(self, None, **kw)
        config.target_modules = {m.name for m in self.modules if m.rank > 0}
        config.rank_pattern = {"^" + k: v for k, v in config.rank_pattern.items()}
        config.alpha_pattern = {"^" + k: v for k, v in config.alpha_pattern.items()}
        return config

    monkeypatch.setattr(plan_module.RankPlan, "to_lora_config", suffix_matching_config)
    plan = plan_for_method("linear-depth", scored, RANK, 0)
    assert len(set(plan.ranks.values())) > 1
    steps = []
    monkeypatch.setattr(torch.optim.AdamW, "step", lambda *a, **k: steps.append(1))
    with pytest.raises(AdaRankError, match="does not match the plan"):
        run_one(str(tiny_bert_dir), data, method="linear-depth", plan=plan, targets=[m.name for m in plan.modules],
                rank=RANK, config=TrainConfig(**SMOKE), seed=0, device="cpu")
    assert steps == []


def test_layout_check_catches_rank_scale_and_extra_layers(tiny_bert_dir):
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir, num_labels=2)
    names = [f"bert.encoder.layer.{i}.attention.self.value" for i in range(3)]
    config = peft.LoraConfig(r=4, lora_alpha=8, target_modules=names[:2] + ["bert.encoder.layer.0.attention.self.query"])
    wrapped = peft.get_peft_model(model, config)
    check_lora_layout(wrapped, {names[0]: 4, names[1]: 4, names[2]: 0,
                                "bert.encoder.layer.0.attention.self.query": 4}, scale=2.0)
    with pytest.raises(AdaRankError, match="lora_A has 4 rows"):
        check_lora_layout(wrapped, {names[0]: 3, names[1]: 4, "bert.encoder.layer.0.attention.self.query": 4})
    with pytest.raises(AdaRankError, match="not in the plan"):
        check_lora_layout(wrapped, {names[0]: 4, names[1]: 4})
    with pytest.raises(AdaRankError, match="planned rank 0"):
        check_lora_layout(wrapped, {names[0]: 0, names[1]: 4, "bert.encoder.layer.0.attention.self.query": 4})
    with pytest.raises(AdaRankError, match="no LoRA layer"):
        check_lora_layout(wrapped, {n: 4 for n in names} | {"bert.encoder.layer.0.attention.self.query": 4})
    with pytest.raises(AdaRankError, match="scale"):
        check_lora_layout(wrapped, {names[0]: 4, names[1]: 4, "bert.encoder.layer.0.attention.self.query": 4},
                          scale=1.0)


def test_adalora_prunes_to_the_target_budget(tiny_bert_dir, data, scored, captured):
    result = run(tiny_bert_dir, data, scored, "adalora", max_steps=8)
    m = len(scored.modules)
    init_r = max(RANK + 1, round(1.5 * RANK))
    ranks = result["ranks"]
    assert set(ranks) == {mod.name for mod in scored.modules}
    assert all(0 <= r <= init_r for r in ranks.values())
    assert sum(ranks.values()) <= RANK * m < init_r * m  # update_and_allocate ran and pruned
    cost = 32 + 32
    assert result["lora_params"] == sum(ranks.values()) * cost
    assert result["lora_params_train"] == init_r * (cost + 1) * m
    assert result["steps"] == 8
    # the masks are real: pruned triplets of E are zero in the trained model
    model = captured[0]["model"]
    for mod in scored.modules:
        e = model.base_model.model.get_submodule("bert." + mod.name).lora_E["default"]
        assert int((e != 0).sum()) <= ranks[mod.name]


def test_eva_chooses_ranks_within_the_budget(tiny_bert_dir, data, scored, monkeypatch):
    from peft.tuners.lora import eva as peft_eva

    real_svd, real_init = peft_eva.get_eva_state_dict, peft.initialize_lora_eva_weights
    after: list[dict] = []

    def svd_spy(model, dataloader, **kwargs):
        first = next(iter(dataloader))
        assert "labels" not in first and "attention_mask" in first
        return real_svd(model, dataloader, **kwargs)

    def init_spy(model, **kwargs):
        assert kwargs.get("eva_state_dict")  # the SVD is computed once, and handed over
        real_init(model, **kwargs)
        after.append({name: (layer.lora_A["default"].weight.detach().clone(), layer.scaling["default"])
                      for name, layer in _lora_layers(model).items()})

    monkeypatch.setattr(peft_eva, "get_eva_state_dict", svd_spy)
    monkeypatch.setattr(peft, "initialize_lora_eva_weights", init_spy)
    result = run(tiny_bert_dir, data, scored, "eva")
    # EVA really initialised A: its rows are orthonormal singular vectors, at scale alpha_i/r_i = ratio
    (layers,) = after
    assert layers
    for weight, scale in layers.values():
        gram = weight @ weight.T
        assert torch.allclose(gram, torch.eye(len(gram)), atol=1e-4)
        assert scale == pytest.approx(2.0)
    assert {name.removeprefix("bert."): w.shape[0] for name, (w, _) in layers.items()} == \
        {n: r for n, r in result["ranks"].items() if r > 0}
    m = len(scored.modules)
    ranks = result["ranks"]
    assert set(ranks) == {mod.name for mod in scored.modules}
    assert sum(ranks.values()) == RANK * m
    assert max(ranks.values()) <= round(2.0 * RANK)
    assert result["lora_params"] == result["lora_params_train"] == sum(ranks.values()) * 64
    assert 0.0 <= result["test_accuracy"] <= 1.0


def test_diverging_training_is_a_user_error(tiny_bert_dir, data, scored):
    from adarank.compare.train import DIVERGED_MESSAGE

    with pytest.raises(AdaRankError, match=f"^{DIVERGED_MESSAGE}"):
        run(tiny_bert_dir, data, scored, "uniform", lr=1e30)


@pytest.fixture
def trainers(monkeypatch):
    """Every transformers Trainer that trains in the runs that follow, with its optimiser's groups at the
    start and the loss of each step."""
    from transformers import Trainer

    seen: list[dict] = []
    real_train, real_loss = Trainer.train, Trainer.compute_loss

    def train_spy(self, *args, **kwargs):
        groups = [{"lr": g["initial_lr"], "params": list(g["params"])} for g in self.optimizer.param_groups]
        seen.append({"trainer": self, "groups": groups, "losses": []})
        return real_train(self, *args, **kwargs)

    def loss_spy(self, *args, **kwargs):
        loss = real_loss(self, *args, **kwargs)
        seen[-1]["losses"].append(float(loss.detach()))
        return loss

    monkeypatch.setattr(Trainer, "train", train_spy)
    monkeypatch.setattr(Trainer, "compute_loss", loss_spy)
    return seen


def test_the_head_trains_at_head_lr_and_lora_at_lr(tiny_bert_dir, data, scored, trainers):
    result = run(tiny_bert_dir, data, scored, "uniform", max_steps=2, lr=1e-3, head_lr=5e-2, max_grad_norm=0.5)
    assert result["hparams"]["head_lr"] == 5e-2 and result["max_grad_norm"] == 0.5
    (seen,) = trainers
    trainer = seen["trainer"]
    assert trainer.args.max_grad_norm == 0.5 and trainer.args.save_strategy == "no" and not trainer.args.bf16
    names = {id(p): n for n, p in trainer.model.named_parameters()}
    lora, head = seen["groups"]
    assert lora["lr"] == 1e-3 and head["lr"] == 5e-2
    assert lora["params"] and all("lora_" in names[id(p)] for p in lora["params"])
    assert head["params"] and all("classifier" in names[id(p)] and "lora_" not in names[id(p)] for p in head["params"])
    assert len(seen["losses"]) == 2 and all(math.isfinite(x) for x in seen["losses"])


def test_the_same_seed_gives_the_same_losses_and_another_seed_other_batches(tiny_bert_dir, data, scored, trainers):
    a = run(tiny_bert_dir, data, scored, "uniform", seed=5, max_steps=3)
    b = run(tiny_bert_dir, data, scored, "uniform", seed=5, max_steps=3)
    c = run(tiny_bert_dir, data, scored, "uniform", seed=6, max_steps=3)
    losses = [t["losses"] for t in trainers]
    assert len(losses[0]) == 3 and losses[0] == losses[1] and losses[0] != losses[2]
    assert a["test_score"] == b["test_score"] and a["test_macro_f1"] == b["test_macro_f1"]
    assert c["seed"] == 6 and all(t["trainer"].args.data_seed == s for t, s in zip(trainers, (5, 5, 6)))


@pytest.mark.slow
def test_the_packaged_minilm_trains_with_the_planned_ranks(minilm_path, data, captured, trainers):
    from transformers import AutoModel, AutoTokenizer

    from adarank.predict import predict_ranks
    from adarank.scoring import ScoreConfig

    model = AutoModel.from_pretrained(minilm_path).eval()
    scored_minilm = predict_ranks(model, AutoTokenizer.from_pretrained(minilm_path), rank=RANK, targets=["value"],
                                  score_config=ScoreConfig(trials=1), progress=False)
    plan = plan_for_method("adarank-exact", scored_minilm, RANK, 0)
    result = run_one(minilm_path, data, method="adarank-exact", plan=plan, targets=[m.name for m in plan.modules],
                     rank=RANK, config=TrainConfig(**{**SMOKE, "max_steps": 2}), seed=0, device="cpu")
    assert result["trainer"] == "transformers.Trainer" and result["steps"] == 2 and result["ranks"] == plan.ranks
    assert result["model"] == "sentence-transformers/all-MiniLM-L6-v2"
    (seen,) = trainers
    assert seen["trainer"].model is captured[0]["model"]
    assert lora_ranks(captured[0]["model"]) == {"bert." + m.name: m.rank for m in plan.modules if m.rank > 0}
    assert len(seen["losses"]) == 2 and all(math.isfinite(x) for x in seen["losses"])


def test_argument_errors_are_user_errors(tiny_bert_dir, data, scored):
    targets = [m.name for m in scored.modules]
    cfg = TrainConfig(**SMOKE)
    with pytest.raises(AdaRankError, match="needs a plan"):
        run_one(str(tiny_bert_dir), data, method="uniform", plan=None, targets=targets, rank=RANK, config=cfg, seed=0)
    with pytest.raises(AdaRankError, match="plan=None"):
        run_one(str(tiny_bert_dir), data, method="eva", plan=scored, targets=targets, rank=RANK, config=cfg, seed=0)
    with pytest.raises(AdaRankError, match="unknown method"):
        run_one(str(tiny_bert_dir), data, method="lora", plan=None, targets=targets, rank=RANK, config=cfg, seed=0)
    with pytest.raises(AdaRankError, match="differ from targets"):
        run_one(str(tiny_bert_dir), data, method="uniform", plan=plan_for_method("uniform", scored, RANK, 0),
                targets=targets[:1], rank=RANK, config=cfg, seed=0)
    with pytest.raises(AdaRankError, match="overwrite"):
        run_one(str(tiny_bert_dir), data, method="uniform", plan=plan_for_method("uniform", scored, RANK, 0),
                targets=targets, rank=RANK, config=cfg, seed=0, extra={"rank": 3})


@pytest.mark.parametrize("field_name, value", [
    ("lr", 0.0), ("lr", float("nan")), ("head_lr", -1.0), ("epochs", 0), ("max_steps", 0), ("batch_size", 2.5),
    ("eval_batch_size", 0), ("max_length", 1), ("warmup_ratio", 1.0), ("weight_decay", -0.1),
    ("lora_alpha_ratio", 0), ("lora_dropout", 1.0), ("bf16", "yes"), ("completion_logits", 1), ("eva_rho", 0.5),
    ("adalora_init_ratio", 1.0), ("max_grad_norm", 0.0), ("max_grad_norm", float("inf")),
])
def test_train_config_rejects_bad_values(field_name, value):
    with pytest.raises(AdaRankError, match=field_name):
        TrainConfig(**{field_name: value})


def test_train_config_fields_have_help():
    assert all(text for text in TrainConfig.field_help().values())
    assert TrainConfig().head_learning_rate == TrainConfig().lr
    assert TrainConfig(head_lr=1e-2).head_learning_rate == 1e-2


@pytest.mark.parametrize("total", list(range(1, 40)) + [100, 1000, 12345])
def test_adalora_schedule_is_always_valid(total):
    from peft import AdaLoraConfig

    tinit, tfinal, delta = _adalora_schedule(total)
    assert 0 <= tinit < total - tfinal and tfinal >= 0 and delta >= 1
    AdaLoraConfig(init_r=6, target_r=4, tinit=tinit, tfinal=tfinal, deltaT=delta, total_step=total,
                  target_modules=["value"])
    if total >= 10:
        assert tfinal >= 1 and abs(tinit - 0.1 * total) <= 1 and abs(tfinal - 0.2 * total) <= 1


def test_macro_f1_by_hand():
    assert macro_f1([0, 1, 1, 0], [0, 1, 1, 0]) == 1.0
    # class 0: tp 1 fp 1 fn 1 -> 0.5; class 1: tp 1 fp 1 fn 1 -> 0.5
    assert macro_f1([0, 0, 1, 1], [0, 1, 0, 1]) == pytest.approx(0.5)
    # class 0: tp 2, fp 1, fn 0 -> 0.8; class 1: tp 0, fp 0, fn 1 -> 0; class 2 is absent everywhere
    assert macro_f1([0, 0, 1], [0, 0, 0]) == pytest.approx(0.4)
    y = np.random.default_rng(0).integers(0, 4, 200)
    p = np.where(np.random.default_rng(1).random(200) < 0.7, y, (y + 1) % 4)
    per_class = []
    for c in range(4):
        tp, fp, fn = np.sum((y == c) & (p == c)), np.sum((y != c) & (p == c)), np.sum((y == c) & (p != c))
        per_class.append(2 * tp / (2 * tp + fp + fn))
    assert macro_f1(y, p) == pytest.approx(float(np.mean(per_class)))
    assert not math.isnan(macro_f1([1, 1], [0, 0]))


def test_adalora_with_too_few_steps_is_refused_in_one_line(tmp_path, minilm_path):
    """PEFT's AdaLoRA raises a bare KeyError when its schedule has no room to score importance."""
    from adarank.compare.data import TextClassificationData
    from adarank.compare.train import ADALORA_MIN_STEPS

    data = TextClassificationData("t", ["a b", "c d"] * 4, [0, 1] * 4, ["a b", "c d"], [0, 1], ["x", "y"], {})
    with pytest.raises(AdaRankError, match=f"at least {ADALORA_MIN_STEPS} optimiser steps"):
        run_one(minilm_path, data, method="adalora", plan=None, targets=["encoder.layer.0.attention.self.value"],
                rank=2, config=TrainConfig(max_steps=2, batch_size=4), seed=0, device="cpu")
