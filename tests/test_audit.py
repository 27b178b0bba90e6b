"""The audit trail: adarank_plan.json beside the adapter, and `adarank show` checking the real shapes."""

import json

import pytest
from peft import get_peft_model

from adarank.audit import PLAN_BESIDE_ADAPTER, save_adapter
from adarank.cli import main
from adarank.errors import AdaRankError
from adarank.predict import predict_ranks
from adarank.scoring import ScoreConfig

from conftest import random_probes, tiny_bert_model


@pytest.fixture
def plan(tiny_bert):
    return predict_ranks(tiny_bert, rank=4, targets=["query", "value"], probes=random_probes(30522, token_types=True),
                         rule="exact", groups="joint", score_config=ScoreConfig(trials=2), progress=False)


def test_saved_adapter_carries_its_plan_and_show_confirms_shapes(plan, tmp_path, capsys):
    model = tiny_bert_model("BertForSequenceClassification", num_labels=2)
    peft_model = get_peft_model(model, plan.to_lora_config(model, task_type="SEQ_CLS"))
    folder = save_adapter(peft_model, plan, tmp_path / "adapter")
    assert (folder / "adapter_config.json").is_file() and (folder / PLAN_BESIDE_ADAPTER).is_file()
    assert main(["show", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "adapter shapes: match the plan" in out and "score ± std" in out


def test_show_reports_an_adapter_that_does_not_follow_its_plan(plan, tmp_path, capsys):
    model = tiny_bert_model("BertForSequenceClassification", num_labels=2)
    other = plan.reallocate(rank=2)  # a different plan builds the adapter...
    peft_model = get_peft_model(model, other.to_lora_config(model, task_type="SEQ_CLS"))
    folder = save_adapter(peft_model, other, tmp_path / "adapter")
    plan.save(folder / PLAN_BESIDE_ADAPTER)  # ...but the folder claims this one
    assert main(["show", str(folder)]) == 2  # CI gates rely on the exit code
    captured = capsys.readouterr()
    assert "MISMATCH" in captured.out
    errors = [line for line in captured.err.splitlines() if line.startswith("adarank: error:")]
    assert len(errors) == 1 and "does not follow its plan" in errors[0] and "Traceback" not in captured.err


def test_save_adapter_refuses_a_model_built_from_another_plan(plan, tmp_path):
    model = tiny_bert_model("BertForSequenceClassification", num_labels=2)
    peft_model = get_peft_model(model, plan.reallocate(rank=2).to_lora_config(model, task_type="SEQ_CLS"))
    with pytest.raises(AdaRankError, match="does not follow the plan"):
        save_adapter(peft_model, plan, tmp_path / "adapter")
    assert not (tmp_path / "adapter" / PLAN_BESIDE_ADAPTER).exists()
    assert list(tmp_path.iterdir()) == []  # no adapter files and no staging folder either


def test_show_on_a_truncated_adapter_is_a_clean_error(plan, tmp_path, capsys):
    model = tiny_bert_model("BertForSequenceClassification", num_labels=2)
    folder = save_adapter(get_peft_model(model, plan.to_lora_config(model, task_type="SEQ_CLS")), plan,
                          tmp_path / "adapter")
    weights = folder / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    assert main(["show", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.count("adarank: error:") == 1 and "Traceback" not in err
    assert "adapter_model.safetensors" in err and "truncated" in err


def test_show_on_an_adapter_without_plan(tmp_path, capsys):
    (tmp_path / "adapter_config.json").write_text(json.dumps({"r": 8}))
    assert main(["show", str(tmp_path)]) == 2
    assert "not built through adarank" in capsys.readouterr().err
