import pytest
import torch
from torch import nn

from adarank.errors import AdaRankError
from adarank.targets import describe_targets, find_block_stack, select_targets


def test_all_linear_on_bert_has_six_types_per_block(tiny_bert):
    targets = select_targets(tiny_bert)
    types = {t.type for t in targets}
    assert types == {"attention.self.query", "attention.self.key", "attention.self.value",
                     "attention.output.dense", "intermediate.dense", "output.dense"}
    assert sorted({t.block for t in targets}) == [0, 1, 2]
    assert len(targets) == 18
    assert all(not t.name.startswith("pooler") for t in targets)
    inter = next(t for t in targets if t.type == "intermediate.dense")
    assert inter.shape == (64, 32) and inter.cost == 96


def test_gpt2_conv1d_shapes_are_out_by_in(tiny_gpt2):
    targets = select_targets(tiny_gpt2)
    c_attn = next(t for t in targets if t.type == "attn.c_attn")
    assert c_attn.kind == "conv1d" and c_attn.shape == (96, 32)
    assert all(t.name != "lm_head" for t in targets)
    assert find_block_stack(tiny_gpt2)[0] == "transformer.h"


def test_llama_stack_and_types(tiny_llama):
    targets = select_targets(tiny_llama, ["q_proj", "down_proj"])
    assert [t.type for t in targets[:2]] == ["self_attn.q_proj", "mlp.down_proj"]
    assert find_block_stack(tiny_llama)[0] == "model.layers"


def test_suffix_list_and_regex(tiny_bert):
    by_list = select_targets(tiny_bert, ["value"])
    by_regex = select_targets(tiny_bert, r".*\.value")
    assert [t.name for t in by_list] == [t.name for t in by_regex]
    assert len(by_list) == 3
    # a full name matches exactly that module, not layer 1 inside "layer.11"-like names
    one = select_targets(tiny_bert, ["encoder.layer.1.attention.self.value"])
    assert [t.block for t in one] == [1]


def test_unknown_pattern_lists_closest_names(tiny_bert):
    with pytest.raises(AdaRankError, match="matches no module.*value"):
        select_targets(tiny_bert, ["valu"])
    with pytest.raises(AdaRankError, match="regex"):
        select_targets(tiny_bert, "nothing.*here")


def test_non_linear_only_pattern_is_refused(tiny_bert):
    with pytest.raises(AdaRankError, match="only non-linear"):
        select_targets(tiny_bert, ["LayerNorm"])


def test_shared_module_is_scored_once():
    lin = nn.Linear(4, 4)

    class Shared(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = lin
            self.b = lin

    targets = select_targets(Shared(), ["a", "b"])
    assert len(targets) == 1 and targets[0].aliases == ("b",)


def test_integer_weights_are_refused():
    model = nn.Sequential(nn.Linear(4, 4))
    model[0].weight = nn.Parameter(torch.zeros(4, 4, dtype=torch.int8), requires_grad=False)
    with pytest.raises(AdaRankError, match="quantized or integer"):
        select_targets(model, ["0"])


def test_describe_groups_by_type_and_block(tiny_bert):
    text = describe_targets(select_targets(tiny_bert))
    assert "attention.self.value" in text and "0-2" in text
    assert "18 modules in 6 types over 3 blocks" in text


def _tiny_t5(cls_name: str):
    import transformers

    config = transformers.T5Config(d_model=32, d_ff=64, d_kv=16, num_layers=2, num_heads=2, vocab_size=128,
                                   decoder_start_token_id=0, pad_token_id=0)
    torch.manual_seed(0)
    return getattr(transformers, cls_name)(config).eval()


@pytest.mark.parametrize("cls_name", ["T5Model", "T5ForConditionalGeneration"])
def test_encoder_decoder_is_refused_with_the_reason(cls_name):
    """Not a raw transformers ValueError at scoring time, and not a silent decoder-only target list."""
    with pytest.raises(AdaRankError, match="encoder-decoder model.*decoder inputs.*T5EncoderModel"):
        select_targets(_tiny_t5(cls_name))


@pytest.mark.parametrize("command", ["inspect", "predict"])
def test_encoder_decoder_folder_is_one_line_and_exit_2(command, tmp_path, capsys):
    from adarank.cli import main

    _tiny_t5("T5ForConditionalGeneration").save_pretrained(tmp_path / "t5")
    argv = [command, str(tmp_path / "t5")] + (["--out", str(tmp_path / "plan")] if command == "predict" else [])
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("adarank: error:")]
    assert len(lines) == 1 and "Traceback" not in err
    assert lines[0].startswith("adarank: error: T5") and "encoder-decoder" in lines[0]
    assert not (tmp_path / "plan" / "plan.json").exists()


def test_t5_encoder_alone_is_scored():
    """What the refusal suggests works: T5's encoder has one block stack and needs no decoder inputs."""
    from adarank.predict import predict_ranks
    from adarank.scoring import ScoreConfig
    from conftest import random_probes

    model = _tiny_t5("T5EncoderModel")
    plan = predict_ranks(model, probes=random_probes(128, n=3), rank=2, score_config=ScoreConfig(trials=1),
                         progress=False)
    assert {m.type for m in plan.modules} == {"layer.0.SelfAttention.q", "layer.0.SelfAttention.k",
                                               "layer.0.SelfAttention.v", "layer.0.SelfAttention.o",
                                               "layer.1.DenseReluDense.wi", "layer.1.DenseReluDense.wo"}
    assert sorted({m.block for m in plan.modules}) == [0, 1]
