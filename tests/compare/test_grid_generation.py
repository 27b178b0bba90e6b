"""`adarank compare --task generation` end to end on CPU: a tiny random Llama and Gemma3, a user's prompt/completion
file, per-method learning-rate sweeps on a held-out seed, then every method at its own rate, then the report."""

from __future__ import annotations

import json
import random

import pytest

from adarank import cli
from adarank.compare.datasets import DATASETS

from .tasks.test_generation import _tiny_causal_folder


def _write_pairs(path, n: int, seed: int) -> None:
    rng = random.Random(seed)
    words = ["red", "blue", "green", "black", "white", "brown"]
    with open(path, "w", encoding="utf-8") as fh:
        for _ in range(n):
            w = rng.choice(words)
            fh.write(json.dumps({"prompt": f"Colour: {w}\nDark:",
                                 "completion": " yes" if w in ("black", "brown", "blue") else " no"}) + "\n")


@pytest.mark.parametrize("arch", ["llama", "gemma3"])
def test_generation_grid_sweeps_each_method_then_runs_it_at_its_own_rate(tmp_path, minilm_path, monkeypatch, capsys, arch):
    monkeypatch.chdir(tmp_path)
    folder = _tiny_causal_folder(tmp_path, minilm_path, arch)
    (tmp_path / "my").mkdir()
    _write_pairs(tmp_path / "my" / "train.jsonl", 60, 0)
    _write_pairs(tmp_path / "my" / "test.jsonl", 12, 1)
    common = ["compare", "--model", folder, "--task", "generation", "--datasets", "my/train.jsonl",
              "--target-sets", "all-linear", "--ranks", "4", "--unit", "params", "--workers", "0", "--max-steps", "2",
              "--batch-size", "8", "--max-length", "32", "--device", "cpu", "--results", "res"]
    methods = "uniform,adarank-exact,eva-ranks"
    assert cli.main([*common, "--methods", methods, "--seeds", "100", "--lr-sweep", "1e-3,3e-3"]) == 0
    assert "6 runs: 6 done" in capsys.readouterr().out
    # the sweep seed may not be reused as an evaluation seed under per-method rates
    assert cli.main([*common, "--methods", methods, "--seeds", "0,100", "--lr-from-sweep"]) == 2
    assert "sweep seed" in capsys.readouterr().err
    assert cli.main([*common, "--methods", methods, "--seeds", "0", "--lr-from-sweep"]) == 0
    assert "3 runs: 3 done" in capsys.readouterr().out

    from adarank.compare.data import dataset_slug
    from adarank.compare.grid import swept_learning_rates
    chosen = swept_learning_rates(tmp_path / "res" / "lr-sweep-validation")
    records = [json.loads(p.read_text()) for p in (tmp_path / "res" / "runs").glob("*.json")]
    assert sorted(r["method"] for r in records) == sorted(methods.split(","))
    for rec in records:
        assert rec["task"] == "generation" and rec["metric"] == "exact_match" and rec["lr_choice"] == "per-method"
        assert rec["hparams"]["lr"] == chosen[(dataset_slug(rec["dataset"]), "all-linear", 4, rec["method"])]
        assert rec["lora_params"] > 0 and rec["dataset"] == "my/train.jsonl"
    plan = json.loads((tmp_path / "res" / "plans" / "all-linear.json").read_text())
    assert plan["budget"]["unit"] == "params" and len(plan["modules"]) == 14  # 2 blocks x 7 types

    assert cli.main(["report", "--results", "res", "--out", "section.md"]) == 0
    text = (tmp_path / "section.md").read_text()
    assert "eva-ranks" in text and "adarank-exact" in text


def test_every_builtin_generation_dataset_is_registered():
    assert {"trec-coarse", "trec-fine", "mr", "subj", "conll2000", "ppattach", "rte"} <= set(DATASETS)


def test_the_grids_task_choices_are_the_task_registry():
    """grid.py imports only the standard library at module level (spawned workers load it first), so it
    names the tasks itself; this keeps that list equal to the registry's."""
    from adarank.compare.grid import TASK_NAMES
    from adarank.compare.tasks import TASKS

    assert TASK_NAMES == tuple(TASKS)


def test_the_attention_projections_of_a_decoder_run_with_every_study_method(tmp_path, minilm_path, monkeypatch,
                                                                             capsys):
    """The decoder study's attention-only set (`--target-sets attention-proj`): every method of the decoder study trains
    LoRA on q/k/v/o alone, and its ranks name those modules and no other."""
    monkeypatch.chdir(tmp_path)
    folder = _tiny_causal_folder(tmp_path, minilm_path, "gemma3")
    (tmp_path / "my").mkdir()
    _write_pairs(tmp_path / "my" / "train.jsonl", 60, 0)
    _write_pairs(tmp_path / "my" / "test.jsonl", 12, 1)
    methods = "uniform,adarank-floor,adarank-exact,linear-depth,adarank-fisher,eva,eva-ranks,adalora"
    assert cli.main(["compare", "--model", folder, "--task", "generation", "--datasets", "my/train.jsonl",
                     "--target-sets", "attention-proj", "--ranks", "4", "--unit", "params", "--workers", "0",
                     "--max-steps", "4", "--batch-size", "8", "--max-length", "32", "--device", "cpu",
                     "--results", "res", "--methods", methods, "--seeds", "0", "--lr", "1e-3"]) == 0
    assert "8 runs: 8 done" in capsys.readouterr().out
    records = {r["method"]: r for r in (json.loads(p.read_text()) for p in (tmp_path / "res" / "runs").glob("*.json"))}
    assert set(records) == set(methods.split(","))
    for method, rec in records.items():
        assert rec["target_set"] == "attention-proj" and rec["lora_params"] > 0, method
        modules = set(rec["ranks"])
        assert modules and all(m.rsplit(".", 1)[-1] in {"q_proj", "k_proj", "v_proj", "o_proj"} for m in modules), \
            (method, sorted(modules))
    assert len(records["uniform"]["ranks"]) == 8  # 2 blocks x q/k/v/o
