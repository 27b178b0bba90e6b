"""User generation data: local prompt/completion and text/label files, hub datasets in memory, and every error."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from adarank.compare.datasets import from_hf_generation, load_generation_spec
from adarank.errors import AdaRankError


def raises(words: list[str], fn, *args, **kwargs) -> str:
    """Call ``fn``, expect AdaRankError with a one-line message holding every word; return the message."""
    with pytest.raises(AdaRankError) as info:
        fn(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message, message
    for word in words:
        assert word.lower() in message.lower(), f"{word!r} not in {message!r}"
    return message


def jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def qa_rows(n: int) -> list[dict]:
    return [{"prompt": f"Q{i}: what is {i} + 1?\nA:", "completion": f" {i + 1}"} for i in range(n)]


# --------------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------------


def test_jsonl_prompt_completion_is_kept_verbatim_and_split(tmp_path):
    rows = qa_rows(20) + [{"prompt": "Translate: chat\n", "completion": "cat \n", "extra": 1}]
    data = load_generation_spec(jsonl(tmp_path / "qa.jsonl", rows), seed=3)
    assert data.name == "qa" and data.metric == "exact_match" and data.strata is None
    assert len(data.train_prompts) + len(data.test_prompts) == 21 and len(data.test_prompts) == 2
    pairs = set(zip(data.train_prompts + data.test_prompts, data.train_completions + data.test_completions))
    assert pairs == {(r["prompt"], r["completion"]) for r in rows}  # whitespace untouched
    assert data.split == {"kind": "random", "test_fraction": 0.1, "seed": 3, "source": str(tmp_path / "qa.jsonl"),
                          "format": "prompt-completion", "chat_template": False}
    again = load_generation_spec(tmp_path / "qa.jsonl", seed=3)
    assert again.test_prompts == data.test_prompts
    assert load_generation_spec(tmp_path / "qa.jsonl", seed=4).test_prompts != data.test_prompts


def test_csv_text_label_becomes_a_stratified_label_task(tmp_path):
    lines = ["text,label"] + [f'"great film, number {i}",pos' for i in range(12)] + \
            [f"dull film {i},neg" for i in range(8)]
    path = tmp_path / "reviews.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    data = load_generation_spec(str(path), test_fraction=0.25)
    assert data.split["format"] == "text-label" and data.split["kind"] == "stratified"
    assert Counter(data.test_completions) == {" pos": 3, " neg": 2}
    assert data.strata == [c.strip() for c in data.train_completions]
    assert "great film, number 0\nLabel:" in data.train_prompts + data.test_prompts
    assert all(p.endswith("\nLabel:") for p in data.train_prompts)


def test_tsv_json_array_custom_columns_and_test_file(tmp_path):
    tsv = tmp_path / "train.tsv"
    tsv.write_text("question\tanswer\n" + "".join(f'"q{i}"\t a{i}\n' for i in range(5)), encoding="utf-8")
    test = tmp_path / "test.json"
    test.write_text(json.dumps([{"question": "q9", "answer": " a9"}]), encoding="utf-8")
    data = load_generation_spec(tsv, prompt_column="question", completion_column="answer", test_file=test,
                                max_test=1, chat_template=True)
    assert data.train_prompts == [f'"q{i}"' for i in range(5)]  # TSV is read without quote handling
    assert data.train_completions == [f" a{i}" for i in range(5)]
    assert data.test_prompts == ["q9"] and data.test_completions == [" a9"]
    assert data.split["kind"] == "test_file" and data.split["test_file"] == str(test)
    assert data.split["chat_template"] is True


def test_integer_labels_and_subsamples(tmp_path):
    rows = [{"text": f"t{i}", "label": i % 3} for i in range(30)]
    data = load_generation_spec(jsonl(tmp_path / "ints.jsonl", rows), max_train=6, max_test=3)
    assert Counter(data.strata) == {"0": 2, "1": 2, "2": 2}
    assert sorted(data.test_completions) == [" 0", " 1", " 2"]
    assert data.split["max_train"] == 6 and data.split["max_test"] == 3


# --------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------


def test_missing_column_names_the_columns_found(tmp_path):
    path = jsonl(tmp_path / "x.jsonl", [{"question": "a", "answer": "b"}])
    raises(["no 'prompt' or 'completion' column", "'question'", "'answer'", "prompt_column="],
           load_generation_spec, path)
    raises(["no 'reply' column", "'question'"], load_generation_spec, path, prompt_column="question",
           completion_column="reply")


def test_empty_completion_gives_the_line(tmp_path):
    rows = qa_rows(3)
    rows[1]["completion"] = "  "
    raises(["line 2", "completion", "'completion'", "empty"], load_generation_spec, jsonl(tmp_path / "e.jsonl", rows))
    csv_path = tmp_path / "e.csv"
    csv_path.write_text("prompt,completion\nhello,\" world\"\nbye,\n", encoding="utf-8")
    raises(["line 3", "completion", "empty"], load_generation_spec, csv_path)


def test_null_and_non_string_values_are_refused(tmp_path):
    rows = qa_rows(3)
    rows[2]["prompt"] = None
    msg = raises(["line 3", "prompt", "null"], load_generation_spec, jsonl(tmp_path / "n.jsonl", rows))
    assert "None" not in msg.split(":")[0]
    rows[2]["prompt"] = 7
    raises(["line 3", "int", "not a string"], load_generation_spec, jsonl(tmp_path / "i.jsonl", rows))
    raises(["line 1", "label", "bool"], load_generation_spec,
           jsonl(tmp_path / "b.jsonl", [{"text": "a", "label": True}, {"text": "b", "label": "x"}]))
    raises(["line 2", "label", "null"], load_generation_spec,
           jsonl(tmp_path / "l.jsonl", [{"text": "a", "label": "x"}, {"text": "b", "label": None}]))
    short = tmp_path / "short.csv"
    short.write_text("prompt,completion\nonly a prompt\n", encoding="utf-8")
    raises(["line 2", "completion", "missing"], load_generation_spec, short)


def test_empty_and_header_only_files(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n  \n", encoding="utf-8")
    raises(["empty"], load_generation_spec, empty)
    header = tmp_path / "header.csv"
    header.write_text("prompt,completion\n", encoding="utf-8")
    raises(["no data rows"], load_generation_spec, header)
    array = tmp_path / "arr.json"
    array.write_text("[]", encoding="utf-8")
    raises(["no data rows"], load_generation_spec, array)


def test_unsupported_files(tmp_path):
    parquet = tmp_path / "data.parquet"
    parquet.write_bytes(b"PAR1\x00\x00PAR1")
    raises(["'.parquet'", "not read directly", "read_parquet", "to_json", "lines=True"], load_generation_spec, parquet)
    txt = tmp_path / "notes.txt"
    txt.write_text("hello\n", encoding="utf-8")
    raises(["'.txt'", ".jsonl", "prompt and completion"], load_generation_spec, txt)
    raises(["no such file", "missing.jsonl"], load_generation_spec, tmp_path / "missing.jsonl")
    raises(["no such file"], load_generation_spec, tmp_path / "missing.parquet")


def test_split_errors(tmp_path):
    one = jsonl(tmp_path / "one.jsonl", qa_rows(1))
    raises(["1 example", "too few", "test_file="], load_generation_spec, one)
    labelled = jsonl(tmp_path / "lab.jsonl", [{"text": "a", "label": "x"}])
    raises(["text-label columns", "prompt-completion columns"], load_generation_spec, one, test_file=labelled)
    raises(["no such test file"], load_generation_spec, one, test_file=tmp_path / "nope.jsonl")
    raises(["test_fraction must be", "between 0 and 1"], load_generation_spec, one, test_fraction=1.5)
    raises(["chat_template must be True or False"], load_generation_spec, one, chat_template="yes")


def test_spec_errors(tmp_path):
    raises(["empty dataset spec", "trec-coarse", "hf:"], load_generation_spec, "  ")
    raises(["unknown dataset 'conll200'", "did you mean 'conll2000'", "hf:<id>"], load_generation_spec, "conll200")
    raises(["test_file", "built-in", "drop them"], load_generation_spec, "mr", test_file="x.jsonl")
    raises(["test_fraction", "prompt_column", "built-in"], load_generation_spec, "rte", test_fraction=0.2,
           prompt_column="q")
    raises(["test_file only works with a local training file", "hf:org/x"], load_generation_spec, "hf:org/x",
           test_file="t.jsonl")
    raises(["seed must be an integer"], load_generation_spec, "mr", seed="0")
    raises(["max_test must be a positive integer"], load_generation_spec, "mr", max_test=-1)


# --------------------------------------------------------------------------------------------------
# Hugging Face datasets, in memory
# --------------------------------------------------------------------------------------------------


def _hf():
    return pytest.importorskip("datasets")


def test_from_hf_prompt_completion_with_test_split():
    datasets = _hf()
    train = datasets.Dataset.from_dict({"prompt": ["a?", "b?", "c?"], "completion": [" 1", " 2", " 3"]})
    test = datasets.Dataset.from_dict({"prompt": ["d?"], "completion": [" 4"]})
    data = from_hf_generation(datasets.DatasetDict({"train": train, "test": test}), "toy")
    assert data.train_prompts == ["a?", "b?", "c?"] and data.test_completions == [" 4"]
    assert data.split["kind"] == "official" and data.split["test_split"] == "test"


def test_from_hf_classlabel_unlabelled_test_falls_back_to_validation():
    datasets = _hf()
    features = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])})
    train = datasets.Dataset.from_dict({"text": [f"t{i}" for i in range(10)], "label": [i % 2 for i in range(10)]},
                                       features=features)
    unlabelled = datasets.Dataset.from_dict({"text": ["u"], "label": [-1]}, features=features)
    valid = datasets.Dataset.from_dict({"text": ["v"], "label": [1]}, features=features)
    data = from_hf_generation({"train": train, "test": unlabelled, "validation": valid}, "glue-like")
    assert data.split["test_split"] == "validation"
    assert data.test_prompts == ["v\nLabel:"] and data.test_completions == [" pos"]
    assert data.strata[:2] == ["neg", "pos"]
    alone = from_hf_generation({"train": train}, "g", test_fraction=0.2, seed=1)
    assert alone.split["kind"] == "stratified" and Counter(alone.test_completions) == {" neg": 1, " pos": 1}


def test_from_hf_errors():
    datasets = _hf()
    train = datasets.Dataset.from_dict({"prompt": ["a"], "completion": [None]})
    raises(["split 'train' row 0", "completion", "null"], from_hf_generation, {"train": train}, "x")
    raises(["no 'train' split", "'test'"], from_hf_generation, {"test": train}, "x")
    good = datasets.Dataset.from_dict({"prompt": ["a", "b"], "completion": [" 1", " 2"]})
    other = datasets.Dataset.from_dict({"text": ["a"], "label": ["x"]})
    raises(["split 'test' has text-label columns", "prompt-completion"], from_hf_generation,
           {"train": good, "test": other}, "x")


def test_hf_spec_goes_through_load_dataset(monkeypatch):
    datasets = _hf()
    calls = []

    def fake_load(path, config=None):
        calls.append((path, config))
        if path == "org/missing":
            raise FileNotFoundError("Dataset 'org/missing' doesn't exist on the Hub")
        return datasets.DatasetDict({"train": datasets.Dataset.from_dict(
            {"prompt": [f"p{i}" for i in range(10)], "completion": [" c"] * 10})})

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    data = load_generation_spec("hf:org/qa:main", seed=2, chat_template=True)
    assert calls == [("org/qa", "main")]
    assert data.name == "org/qa:main" and len(data.test_prompts) == 1 and data.split["chat_template"] is True
    raises(["could not load hf:org/missing", "FileNotFoundError", "doesn't exist"], load_generation_spec,
           "hf:org/missing")
    raises(["hf: needs a dataset id"], load_generation_spec, "hf:")
