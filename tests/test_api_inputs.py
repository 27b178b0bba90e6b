"""The Python API's inputs: seed as a keyword, every score setting stored, probe limits, text-only models,
and alpha_pattern's scale under rsLoRA."""

import logging
import math
from dataclasses import fields

import pytest
from peft import get_peft_model

from adarank.errors import AdaRankError
from adarank.predict import predict_ranks
from adarank.probes import MAX_PROBE_TEXTS, ProbeSet, check_takes_text, probes_from_texts, tokenize_probes
from adarank.scoring import ScoreConfig

from conftest import random_probes, tiny_bert_model


def _plan(model, **kwargs):
    kwargs.setdefault("score_config", None)
    return predict_ranks(model, rank=4, targets=["value"], probes=random_probes(30522, token_types=True),
                         progress=False, **kwargs)


def test_seed_is_a_keyword_and_means_the_score_config_seed(tiny_bert):
    by_keyword = _plan(tiny_bert, seed=3, score_config=ScoreConfig(trials=2))
    by_config = _plan(tiny_bert, score_config=ScoreConfig(trials=2, seed=3))
    default = _plan(tiny_bert, score_config=ScoreConfig(trials=2))
    assert by_keyword.settings["seed"] == 3
    assert [m.scores for m in by_keyword.modules] == [m.scores for m in by_config.modules]
    assert [m.scores for m in by_keyword.modules] != [m.scores for m in default.modules]
    with pytest.raises(AdaRankError, match="disagree"):
        _plan(tiny_bert, seed=3, score_config=ScoreConfig(trials=2, seed=4))


def test_settings_given_as_keywords_equal_the_same_settings_given_as_objects(tiny_bert):
    from adarank.plan import Budget

    by_keyword = _plan(tiny_bert, trials=2, rule="exact", groups="joint", noise_scale=0.5, max_batch=5)
    by_object = _plan(tiny_bert, score_config=ScoreConfig(trials=2, noise_scale=0.5, max_batch=5),
                      budget=Budget(rank=4, rule="exact", groups="joint"))
    assert by_keyword.ranks == by_object.ranks and by_keyword.budget == by_object.budget
    assert [m.scores for m in by_keyword.modules] == [m.scores for m in by_object.modules]
    assert by_keyword.settings["trials"] == 2 and by_keyword.settings["noise_scale"] == 0.5


def test_an_unknown_keyword_names_the_valid_settings(tiny_bert):
    with pytest.raises(AdaRankError) as err:
        _plan(tiny_bert, trails=2)
    for name in ("trails", *(f.name for f in fields(ScoreConfig)), "rule", "min_rank"):
        assert name in str(err.value)
    with pytest.raises(AdaRankError, match="disagree"):  # one setting given two ways, differently
        _plan(tiny_bert, trials=3, score_config=ScoreConfig(trials=2))


def test_every_score_config_field_is_stored_in_the_plan(tiny_bert):
    config = ScoreConfig(trials=2, max_batch=7, prefix_replay=False, distance="cosine")
    plan = _plan(tiny_bert, score_config=config)
    for f in fields(ScoreConfig):
        assert f.name in plan.settings, f.name
        if f.name != "output":  # stored resolved: 'auto' becomes what was compared
            assert plan.settings[f.name] == getattr(config, f.name), f.name
    assert plan.settings["output"] == "mean"


def test_zero_scores_are_logged_by_name(tiny_bert, caplog):
    with caplog.at_level(logging.WARNING, logger="adarank"):
        _plan(tiny_bert, score_config=ScoreConfig(trials=1, noise_scale=1e-30))
    text = caplog.text
    assert "3 of 3 modules scored 0" in text and "encoder.layer.2.attention.self.value" in text
    assert "scored the same" in text


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_max_length_below_one_token_is_refused(minilm_path, bad):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(minilm_path)
    with pytest.raises(AdaRankError, match="max_length"):
        tokenize_probes(tokenizer, probes_from_texts(["a short text"]), max_length=bad)


def test_probe_count_is_capped():
    with pytest.raises(AdaRankError, match=f"more than the {MAX_PROBE_TEXTS}"):
        ProbeSet(tuple(f"text {i}" for i in range(MAX_PROBE_TEXTS + 1)), "python list")


def test_models_that_take_no_token_ids_are_refused():
    import transformers

    vit = transformers.ViTModel(transformers.ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                                       intermediate_size=64, image_size=16, patch_size=8))
    with pytest.raises(AdaRankError, match="pixel_values"):
        predict_ranks(vit, rank=2, probes=random_probes(100), progress=False)
    check_takes_text(tiny_bert_model())  # text models pass


@pytest.mark.parametrize("rslora", [False, True])
def test_alpha_pattern_keeps_the_uniform_scale(tiny_bert, rslora):
    plan = predict_ranks(tiny_bert, rank=4, targets=["query", "value"], probes=random_probes(30522, token_types=True),
                         rule="exact", groups="joint", score_config=ScoreConfig(trials=2), progress=False)
    assert len({m.rank for m in plan.modules}) > 1  # otherwise the test shows nothing
    model = tiny_bert_model()
    peft_model = get_peft_model(model, plan.to_lora_config(model, lora_alpha=8, use_rslora=rslora))
    uniform = 8 / (math.sqrt(4) if rslora else 4)
    scales = [m.scaling["default"] for _, m in peft_model.named_modules() if hasattr(m, "lora_A") and "default" in m.scaling]
    assert len(scales) == sum(m.rank > 0 for m in plan.modules)
    assert scales == pytest.approx([uniform] * len(scales), rel=1e-12)


@pytest.mark.parametrize("bad", [None, ["a", "b"], 3])
def test_probe_lists_hold_strings_only(tiny_bert, bad):
    with pytest.raises(AdaRankError, match="not a string"):
        probes_from_texts(["fine", bad])
