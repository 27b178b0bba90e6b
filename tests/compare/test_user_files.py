"""The comparison harness on a user's own data file: no NLTK data folder, flat run keys, sweep then reuse."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path


from adarank.compare import grid, report
from adarank.compare.data import dataset_slug, is_builtin_corpus
from adarank.compare.grid import RunSpec

WORDS = {"pos": ["good", "great", "lovely", "fine", "bright"], "neg": ["bad", "awful", "dull", "poor", "grim"]}


def _write_csv(path: Path, rows_per_label: int = 24) -> None:
    """Two separable classes of short sentences, distinct texts, written with the csv module."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label"])
        for i in range(rows_per_label):
            for label, words in WORDS.items():
                writer.writerow([f"a {words[i % 5]} film, number {i}", label])


def test_dataset_slugs_are_flat_stable_and_keep_builtin_names(tmp_path, monkeypatch):
    for name in ("trec-coarse", "mr", "subj", "trec-fine"):
        assert dataset_slug(name) == name and is_builtin_corpus(name)
    monkeypatch.chdir(tmp_path)
    one, two = tmp_path / "a" / "train.csv", tmp_path / "b" / "train.csv"
    for path in (one, two):
        _write_csv(path, 1)
    slugs = {dataset_slug("a/train.csv"), dataset_slug(str(one)), dataset_slug("./a/../a/train.csv")}
    assert len(slugs) == 1  # one file, one name, however it is spelled
    assert dataset_slug("b/train.csv") not in slugs  # same file name, another folder: another key
    for spec in ("a/train.csv", "user/dataset:config", "x__y.jsonl", "../up/data.tsv"):
        slug = dataset_slug(spec)
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", slug) and "__" not in slug, slug
        key = RunSpec(spec, "value", 2, "uniform", 0, 1e-3).key
        assert "/" not in key and key.split("__")[0] == slug and len(key.split("__")) == 6
    assert not is_builtin_corpus("a/train.csv")


def test_a_csv_in_a_subfolder_runs_through_sweep_and_lr_from_sweep_without_data_dir(tmp_path, monkeypatch,
                                                                                        capsys):
    """Tiny random BERT, 48 CSV rows, 2 steps: a uniform lr sweep, then the grid at the swept lr."""
    import torch
    import transformers
    from transformers import AutoTokenizer

    from adarank.loading import default_model_path

    monkeypatch.delenv("NLTK_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    _write_csv(tmp_path / "my" / "data" / "train.csv")
    model_dir = tmp_path / "tiny-bert"
    torch.manual_seed(0)
    transformers.BertModel(transformers.BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                                   intermediate_size=64)).save_pretrained(model_dir)
    AutoTokenizer.from_pretrained(default_model_path()).save_pretrained(model_dir)

    common = ["--model", str(model_dir), "--datasets", "my/data/train.csv", "--target-sets", "value",
              "--ranks", "2", "--seeds", "0", "--workers", "0", "--max-steps", "2", "--device", "cpu",
              "--results", "res"]
    assert grid.main([*common, "--methods", "uniform", "--lr-sweep", "1e-3,3e-3"]) == 0
    assert "2 runs: 2 done, 0 skipped (already done), 0 failed" in capsys.readouterr().out
    slug = dataset_slug("my/data/train.csv")
    sweep_runs = tmp_path / "res" / "lr-sweep-validation" / "runs"
    assert sorted(p.name for p in sweep_runs.iterdir()) == [f"{slug}__value__r2__uniform__lr{lr}__s0.json"
                                                            for lr in ("0.001", "0.003")]  # flat, no subfolder
    chosen = grid.swept_learning_rates(sweep_runs.parent)
    assert set(chosen) == {(slug, "value", 2, "uniform")}

    assert grid.main([*common, "--methods", "uniform,adarank-exact", "--lr-from-sweep", "--lr-choice", "shared"]) == 0
    assert "2 runs: 2 done, 0 skipped (already done), 0 failed" in capsys.readouterr().out
    runs = tmp_path / "res" / "runs"
    assert sorted(p.name for p in runs.iterdir()) == [f"{slug}__value__r2__{m}__s0.json"
                                                      for m in ("adarank-exact", "uniform")]
    for path in runs.iterdir():
        rec = json.loads(path.read_text(encoding="utf-8"))
        assert rec["lr_source"] == "sweep" and rec["hparams"]["lr"] == chosen[(slug, "value", 2, "uniform")]
        assert rec["dataset"] == "my/data/train.csv" and rec["key"] == path.stem
    assert not (tmp_path / "res" / "errors.jsonl").exists()

    assert report.main(["--results", "res", "--out", "section.md"]) == 0
    text = (tmp_path / "section.md").read_text(encoding="utf-8")
    assert "### my/data/train.csv · value · r̄=2" in text
    assert (tmp_path / "res" / "plots" / f"acc__{slug}__value__r2.png").stat().st_size > 0


def test_builtin_corpora_still_need_a_data_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("NLTK_DATA", raising=False)
    assert grid.main(["--model", str(tmp_path), "--results", str(tmp_path / "r"), "--datasets",
                      "my.csv,mr"]) == 2
    err = capsys.readouterr().err
    assert "no data directory for the built-in corpora mr" in err and len(err.strip().splitlines()) == 1
