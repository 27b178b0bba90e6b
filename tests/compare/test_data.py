"""Tests for adarank.compare.data: the real NLTK corpora, local files, Hugging Face conversion and every error."""

from __future__ import annotations

import json
import zipfile
from collections import Counter
from pathlib import Path

import pytest

from adarank.compare.data import (
    TextClassificationData,
    from_hf_dataset_dict,
    load_dataset_spec,
    stratified_split,
    stratified_subsample,
)
from adarank.errors import AdaRankError

from conftest import nltk_corpora  # noqa: E402

FX = nltk_corpora  # the synthetic corpora's sizes and known lines


@pytest.fixture(scope="module")
def nltk_dir(data_dir) -> Path:
    return data_dir


def raises(match_words: list[str], fn, *args, **kwargs) -> str:
    """Call ``fn``, expect AdaRankError, check its message is one line holding every word; return it."""
    with pytest.raises(AdaRankError) as info:
        fn(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message, message
    for word in match_words:
        assert word.lower() in message.lower(), f"{word!r} not in {message!r}"
    return message


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


# --------------------------------------------------------------------------------------------------
# Built-in corpora (the synthetic ones of tests/fixtures/nltk_corpora.py, in the real layouts)
# --------------------------------------------------------------------------------------------------


def _trec_raw(split: str) -> list[tuple[str, str]]:
    """(label, question) pairs read from the fixture's lines, independently of the loader."""
    return [tuple(line.split(None, 1)) for line in FX.trec_lines(split)]


def test_trec_coarse_official_split(nltk_dir):
    data = load_dataset_spec("trec-coarse", data_dir=nltk_dir)
    train_raw, test_raw = _trec_raw("train"), _trec_raw("test")
    assert isinstance(data, TextClassificationData)
    assert data.name == "trec-coarse"
    assert len(data.train_texts) == len(data.train_labels) == len(train_raw)
    assert len(data.test_texts) == len(data.test_labels) == len(test_raw)
    assert data.num_labels == 6
    assert data.label_names == ["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]
    assert data.split == {"kind": "official"}
    assert data.test_texts[0] == FX.TREC_FIRST_TEST.split(None, 1)[1]
    assert data.label_names[data.test_labels[0]] == "NUM"
    assert Counter(data.label_names[i] for i in data.test_labels) == Counter(lab.split(":")[0] for lab, _ in test_raw)
    assert data.test_texts == [q for _, q in test_raw]
    # The Latin-1 byte in train.txt decodes instead of failing.
    assert FX.TREC_LATIN1 in data.train_texts
    assert all(t == t.strip() and t for t in data.train_texts + data.test_texts)


def test_trec_aliases_match(nltk_dir):
    base = load_dataset_spec("trec-coarse", data_dir=nltk_dir)
    for alias in ("trec", "TREC", "qc", "nltk:trec"):
        other = load_dataset_spec(alias, data_dir=nltk_dir)
        assert other.train_texts == base.train_texts and other.train_labels == base.train_labels
        assert other.name == "trec-coarse"


def test_trec_fine(nltk_dir):
    data = load_dataset_spec("trec-fine", data_dir=nltk_dir)
    assert len(data.train_texts) == len(_trec_raw("train")) and len(data.test_texts) == len(_trec_raw("test"))
    assert data.label_names == sorted(f"{c}:{f}" for c, fines in FX.TREC_FINE.items() for f in fines)
    assert data.label_names[data.test_labels[0]] == "NUM:dist"
    assert set(data.test_labels) <= set(data.train_labels)


def test_mr_stratified_split(nltk_dir):
    data = load_dataset_spec("mr", data_dir=nltk_dir)
    total = 2 * FX.SENTENCES_PER_CLASS
    assert len(data.train_texts) + len(data.test_texts) == total
    assert data.label_names == ["neg", "pos"]
    assert data.split == {"kind": "stratified", "test_fraction": 0.1, "seed": 0}
    assert len(data.test_texts) == round(0.1 * total)
    test_counts = Counter(data.test_labels)
    train_counts = Counter(data.train_labels)
    assert abs(test_counts[0] - test_counts[1]) <= 1
    assert abs(train_counts[0] - train_counts[1]) <= 1
    assert Counter(data.train_texts + data.test_texts) == Counter(_all_mr_texts(nltk_dir))
    by_label = {t: data.label_names[y] for t, y in zip(data.train_texts + data.test_texts,
                                                        data.train_labels + data.test_labels)}
    assert all(by_label[t] == "neg" for t in FX.sentence_lines("neg"))

    again = load_dataset_spec("mr", data_dir=nltk_dir)
    assert again.test_texts == data.test_texts and again.train_labels == data.train_labels
    other = load_dataset_spec("mr", data_dir=nltk_dir, split_seed=1)
    assert other.split["seed"] == 1
    assert other.test_texts != data.test_texts
    assert len(other.test_texts) == len(data.test_texts)


def _all_mr_texts(nltk_dir: Path) -> list[str]:
    with zipfile.ZipFile(nltk_dir / "corpora" / "sentence_polarity.zip") as zf:
        out = []
        for member in ("sentence_polarity/rt-polarity.neg", "sentence_polarity/rt-polarity.pos"):
            out += [line.strip() for line in zf.read(member).decode("utf-8").splitlines() if line.strip()]
    return out


def test_subj_and_fraction(nltk_dir):
    data = load_dataset_spec("subj", data_dir=nltk_dir, test_fraction=0.2, split_seed=3)
    per = FX.SENTENCES_PER_CLASS
    assert len(data.train_texts) + len(data.test_texts) == 2 * per
    assert data.label_names == ["objective", "subjective"]
    assert Counter(data.test_labels) == {0: round(0.2 * per), 1: round(0.2 * per)}
    assert data.split == {"kind": "stratified", "test_fraction": 0.2, "seed": 3}
    objective = [t for t, y in zip(data.train_texts + data.test_texts, data.train_labels + data.test_labels) if y == 0]
    assert sorted(objective) == sorted(FX.sentence_lines("objective"))


def test_max_train_subsample(nltk_dir):
    n_train = len(_trec_raw("train"))
    data = load_dataset_spec("trec", data_dir=nltk_dir, max_train=48, split_seed=5)
    assert len(data.train_texts) == 48 and len(data.test_texts) == len(_trec_raw("test"))
    assert set(data.train_labels) == set(range(6))
    assert data.split == {"kind": "official", "max_train": 48, "subsample_seed": 5}
    full = Counter(load_dataset_spec("trec", data_dir=nltk_dir).train_labels)
    sub = Counter(data.train_labels)
    for label, n in full.items():
        assert abs(sub[label] - n * 48 / n_train) <= 1.5
    assert load_dataset_spec("trec", data_dir=nltk_dir, max_train=48, split_seed=5).train_texts == data.train_texts
    assert load_dataset_spec("trec", data_dir=nltk_dir, max_train=48, split_seed=6).train_texts != data.train_texts
    big = load_dataset_spec("mr", data_dir=nltk_dir, max_train=10**6)
    assert len(big.train_texts) == 2 * FX.SENTENCES_PER_CLASS - round(0.1 * 2 * FX.SENTENCES_PER_CLASS)
    assert big.split["max_train"] == 10**6


def test_nltk_data_env_and_unzipped_folder(nltk_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("NLTK_DATA", f"{tmp_path / 'nothing'}:{nltk_dir}")
    assert len(load_dataset_spec("subj").train_texts) == 2 * FX.SENTENCES_PER_CLASS - round(0.1 * 2 * FX.SENTENCES_PER_CLASS)
    unzipped = tmp_path / "mine" / "corpora"
    unzipped.mkdir(parents=True)
    with zipfile.ZipFile(nltk_dir / "corpora" / "qc.zip") as zf:
        zf.extractall(unzipped)
    data = load_dataset_spec("trec", data_dir=tmp_path / "mine")
    assert data.train_texts == load_dataset_spec("trec", data_dir=nltk_dir).train_texts
    assert len(data.test_texts) == len(_trec_raw("test"))


def test_nltk_errors(tmp_path, monkeypatch):
    msg = raises(["not found", "qc.zip", str(tmp_path), "python -m nltk.downloader qc sentence_polarity subjectivity"],
                 load_dataset_spec, "trec", data_dir=tmp_path)
    assert "data_dir" in msg
    monkeypatch.setenv("NLTK_DATA", str(tmp_path / "env"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    raises(["sentence_polarity", str(tmp_path / "env"), str(tmp_path / "home" / "nltk_data"), "nltk.downloader"],
           load_dataset_spec, "mr")
    raises(["unknown NLTK corpus", "'imdb'", "trec-coarse", "mr", "subj"], load_dataset_spec, "nltk:imdb")
    raises(["did you mean 'subj'"], load_dataset_spec, "nltk:subjj")
    corpora = tmp_path / "corpora"
    corpora.mkdir()
    (corpora / "subjectivity.zip").write_bytes(b"this is not a zip")
    raises(["subjectivity.zip", "zip", "nltk.downloader"], load_dataset_spec, "subj", data_dir=tmp_path)
    with zipfile.ZipFile(corpora / "qc.zip", "w") as zf:
        zf.writestr("qc/train.txt", "HUM:ind Who wrote Hamlet ?\n")
    raises(["qc.zip", "test.txt", "nltk.downloader"], load_dataset_spec, "trec", data_dir=tmp_path)
    with zipfile.ZipFile(corpora / "qc.zip", "w") as zf:
        zf.writestr("qc/train.txt", "HUM:ind Who wrote Hamlet ?\nno label here\n")
        zf.writestr("qc/test.txt", "HUM:ind Who wrote Hamlet ?\n")
    raises(["qc/train.txt line 2", "COARSE:fine"], load_dataset_spec, "trec", data_dir=tmp_path)
    raises(["test_file", "built-in corpus"], load_dataset_spec, "trec", data_dir=tmp_path, test_file="x.csv")


def test_small_trec_zip_with_unseen_test_label(tmp_path):
    corpora = tmp_path / "corpora"
    corpora.mkdir()
    with zipfile.ZipFile(corpora / "qc.zip", "w") as zf:
        zf.writestr("qc/train.txt", "HUM:ind Who wrote Hamlet ?\n\nLOC:city Where is Rome ?\n")
        zf.writestr("qc/test.txt", "NUM:count How many legs has a spider ?\n")
    raises(["test labels not seen in training", "'NUM'"], load_dataset_spec, "trec", data_dir=tmp_path)


# --------------------------------------------------------------------------------------------------
# Stratified split helper
# --------------------------------------------------------------------------------------------------


def test_stratified_split_properties():
    labels = ["a"] * 50 + ["b"] * 30 + ["c"] * 2 + ["d"] * 1 + ["e"] * 17
    train, test = stratified_split(labels, 0.2, 7)
    assert sorted(train + test) == list(range(len(labels)))
    assert train == sorted(train) and test == sorted(test)
    assert len(test) == 20
    test_counts = Counter(labels[i] for i in test)
    train_counts = Counter(labels[i] for i in train)
    for c in "abce":
        assert test_counts[c] >= 1 and train_counts[c] >= 1
    assert test_counts["d"] == 0 and train_counts["d"] == 1
    assert abs(test_counts["a"] - 10) <= 1 and abs(test_counts["b"] - 6) <= 1
    assert stratified_split(labels, 0.2, 7) == (train, test)
    assert stratified_split(labels, 0.2, 8) != (train, test)


def test_stratified_split_exact_balance_and_ints():
    labels = [0, 1] * 500
    train, test = stratified_split(labels, 0.1, 0)
    assert Counter(labels[i] for i in test) == {0: 50, 1: 50}
    tiny_train, tiny_test = stratified_split([1, 1, 2, 2], 0.1, 0)
    assert len(tiny_test) == 2 and len(tiny_train) == 2
    assert {1, 2} == {[1, 1, 2, 2][i] for i in tiny_test}


def test_stratified_split_errors():
    raises(["test_fraction", "between 0 and 1"], stratified_split, [0, 1], 1.0, 0)
    raises(["test_fraction", "between 0 and 1"], stratified_split, [0, 1], 0, 0)
    raises(["test_fraction", "number"], stratified_split, [0, 1], "lots", 0)
    raises(["split_seed", "integer"], stratified_split, [0, 1], 0.5, 1.5)
    raises(["no class has 2 or more examples"], stratified_split, ["a", "b", "c"], 0.5, 0)


def test_stratified_subsample():
    labels = ["x"] * 90 + ["y"] * 9 + ["z"]
    keep = stratified_subsample(labels, 10, 0)
    assert len(keep) == 10 and keep == sorted(keep)
    assert {labels[i] for i in keep} == {"x", "y", "z"}
    assert stratified_subsample(labels, 10, 0) == keep
    raises(["max_train=2", "3 classes"], stratified_subsample, labels, 2, 0)
    raises(["max_train", "positive integer"], stratified_subsample, labels, 0, 0)


# --------------------------------------------------------------------------------------------------
# Local files
# --------------------------------------------------------------------------------------------------


def test_csv_string_labels_and_quoting(tmp_path):
    rows = [("sentence", "sentiment")]
    rows += [(f"good movie {i}", "positive") for i in range(10)]
    rows += [(f"bad, \"awful\" movie {i}", "negative") for i in range(10)]
    rows += [("  spaced text  ", " neutral "), ("", "neutral"), ("multi\nline", "neutral")]
    rows += [(f"meh {i}", "neutral") for i in range(8)]
    import csv

    path = tmp_path / "reviews.csv"
    with path.open("w", newline="", encoding="utf-8-sig") as fh:
        csv.writer(fh).writerows(rows)
    data = load_dataset_spec(str(path), text_column="sentence", label_column="sentiment", test_fraction=0.2)
    assert data.name == str(path)
    assert data.label_names == ["negative", "neutral", "positive"]
    assert len(data.train_texts) + len(data.test_texts) == 30
    all_texts = data.train_texts + data.test_texts
    assert "spaced text" in all_texts and "multi\nline" in all_texts and 'bad, "awful" movie 3' in all_texts
    assert Counter(data.test_labels) == {0: 2, 1: 2, 2: 2}
    assert data.split == {"kind": "stratified", "test_fraction": 0.2, "seed": 0}


def test_tsv_int_labels_sorted_numerically(tmp_path):
    lines = ["label\ttext"] + [f"{lab}\t\"quoted start {lab} {i}" for lab in (10, 2, 1) for i in range(5)]
    path = write(tmp_path / "data.tsv", "\n".join(lines) + "\n\n")
    data = load_dataset_spec(str(path), test_fraction=0.2, split_seed=1)
    assert data.label_names == ["1", "2", "10"]
    assert '"quoted start 10 0' in data.train_texts + data.test_texts
    texts = data.train_texts + data.test_texts
    labels = data.train_labels + data.test_labels
    assert all(data.label_names[y] == t.split()[2] for t, y in zip(texts, labels))


def test_jsonl_and_json_with_test_file(tmp_path):
    train = [{"text": f"sample {i}", "label": i % 3, "extra": None} for i in range(12)]
    train.append({"text": "   ", "label": 1})
    test = [{"text": "held out", "label": 2}, {"text": "another", "label": 0}]
    train_path = write(tmp_path / "train.jsonl", "\n".join(json.dumps(r) for r in train) + "\n\n")
    test_path = write(tmp_path / "test.json", json.dumps(test))
    data = load_dataset_spec(str(train_path), test_file=str(test_path))
    assert data.label_names == ["0", "1", "2"]
    assert len(data.train_texts) == 12 and data.train_texts[:2] == ["sample 0", "sample 1"]
    assert data.train_labels[:4] == [0, 1, 2, 0]
    assert data.test_texts == ["held out", "another"] and data.test_labels == [2, 0]
    assert data.split == {"kind": "official", "test_file": str(test_path)}
    lines_json = write(tmp_path / "lines.json", "\n".join(json.dumps(r) for r in train))
    assert load_dataset_spec(str(lines_json)).label_names == ["0", "1", "2"]
    sub = load_dataset_spec(str(train_path), test_file=str(test_path), max_train=6, split_seed=2)
    assert len(sub.train_texts) == 6 and Counter(sub.train_labels) == {0: 2, 1: 2, 2: 2}


def test_file_errors(tmp_path):
    good = write(tmp_path / "good.csv", "text,label\n" + "".join(f"t{i},{'ab'[i % 2]}\n" for i in range(10)))
    raises(["no text column 'sentence'", "'text'", "'label'"], load_dataset_spec, str(good), text_column="sentence")
    raises(["no label column 'y'", "'text', 'label'"], load_dataset_spec, str(good), label_column="y")
    one = write(tmp_path / "one.csv", "text,label\na,x\nb,x\nc,x\n")
    raises(["single class", "'x'"], load_dataset_spec, str(one))
    raises(["empty"], load_dataset_spec, str(write(tmp_path / "empty.csv", "  \n\n")))
    raises(["no data rows"], load_dataset_spec, str(write(tmp_path / "header.csv", "text,label\n")))
    raises(["no examples with non-empty text"], load_dataset_spec,
           str(write(tmp_path / "blank.jsonl", '{"text": "", "label": 1}\n')))
    binary = tmp_path / "model.csv"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    raises(["binary"], load_dataset_spec, str(binary))
    latin = tmp_path / "latin.csv"
    latin.write_bytes("text,label\ncaf\xe9,a\nthé,b\n".encode("latin-1"))
    raises(["not UTF-8", "0xe9", "line 2", "re-save"], load_dataset_spec, str(latin))
    raises(["unsupported file type", "'.txt'", ".csv"], load_dataset_spec, str(write(tmp_path / "d.txt", "x")))
    raises(["unsupported file type", "'.parquet'"], load_dataset_spec, str(tmp_path / "missing.parquet"))
    raises(["no such file", "missing.csv"], load_dataset_spec, str(tmp_path / "missing.csv"))
    raises(["no such test file"], load_dataset_spec, str(good), test_file=str(tmp_path / "nope.csv"))
    unseen = write(tmp_path / "unseen.csv", "text,label\nq,a\nr,c\n")
    raises(["test labels not seen in training", "'c'"], load_dataset_spec, str(good), test_file=str(unseen))
    bad_json = write(tmp_path / "bad.jsonl", '{"text": "a", "label": 1}\n{"text": oops}\n')
    raises(["bad.jsonl line 2", "not valid JSON"], load_dataset_spec, str(bad_json))
    not_obj = write(tmp_path / "list.jsonl", '["a", 1]\n')
    raises(["line 1", "not an object"], load_dataset_spec, str(not_obj))
    no_label = write(tmp_path / "nolabel.csv", "text,label\na,x\nb,\nc,y\n")
    raises(["line 3", "no value in label column 'label'"], load_dataset_spec, str(no_label))
    raises(["test_fraction"], load_dataset_spec, str(good), test_fraction=1.5)
    raises(["max_train=1", "2 classes"], load_dataset_spec, str(good), max_train=1)
    raises(["max_train", "positive integer"], load_dataset_spec, str(good), max_train=-3)


def test_utf16_file_is_read(tmp_path):
    path = write(tmp_path / "excel.tsv", "text\tlabel\nün\ta\nzwei\tb\ndrei\ta\nvier\tb\n", encoding="utf-16")
    data = load_dataset_spec(str(path), test_fraction=0.5)
    assert sorted(data.train_texts + data.test_texts) == ["drei", "vier", "zwei", "ün"]


# --------------------------------------------------------------------------------------------------
# Hugging Face datasets
# --------------------------------------------------------------------------------------------------


def _hf():
    return pytest.importorskip("datasets")


def test_from_hf_dataset_dict_classlabel_train_test():
    datasets = _hf()
    features = datasets.Features({"sentence": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["World", "Sports", "Business"])})
    train = datasets.Dataset.from_dict({"sentence": ["a", "b", "c", "d", "", "f"], "label": [0, 1, 2, 0, 1, 1]},
                                       features=features)
    test = datasets.Dataset.from_dict({"sentence": ["x", "y"], "label": [2, 1]}, features=features)
    dd = datasets.DatasetDict({"train": train, "test": test})
    data = from_hf_dataset_dict(dd, "ag-like", "sentence")
    assert data.name == "ag-like"
    assert data.label_names == ["Business", "Sports", "World"]
    assert data.train_texts == ["a", "b", "c", "d", "f"]
    assert [data.label_names[i] for i in data.train_labels] == ["World", "Sports", "Business", "World", "Sports"]
    assert [data.label_names[i] for i in data.test_labels] == ["Business", "Sports"]
    assert data.split == {"kind": "official", "test_split": "test"}


def test_from_hf_dataset_dict_unlabelled_test_and_no_test():
    datasets = _hf()
    train = datasets.Dataset.from_dict({"text": [f"t{i}" for i in range(20)], "label": [i % 2 for i in range(20)]})
    unlabelled = datasets.Dataset.from_dict({"text": ["u1", "u2"], "label": [-1, -1]}).cast_column(
        "label", datasets.ClassLabel(names=["neg", "pos"]))
    valid = datasets.Dataset.from_dict({"text": ["v1", "v2"], "label": [1, 0]})
    data = from_hf_dataset_dict(datasets.DatasetDict({"train": train, "test": unlabelled, "validation": valid}), "g")
    assert data.split == {"kind": "official", "test_split": "validation"}
    assert data.test_texts == ["v1", "v2"] and data.test_labels == [1, 0]
    assert data.label_names == ["0", "1"]
    alone = from_hf_dataset_dict(datasets.DatasetDict({"train": train}), "g", test_fraction=0.2, split_seed=4)
    assert alone.split == {"kind": "stratified", "test_fraction": 0.2, "seed": 4}
    assert Counter(alone.test_labels) == {0: 2, 1: 2} and len(alone.train_texts) == 16
    strings = datasets.Dataset.from_dict({"text": ["p", "q", "r", "s"], "label": ["b", "a", "b", "a"]})
    data = from_hf_dataset_dict({"train": strings}, "s", test_fraction=0.5)
    assert data.label_names == ["a", "b"] and len(data.test_texts) == 2


def test_from_hf_dataset_dict_errors():
    datasets = _hf()
    train = datasets.Dataset.from_dict({"content": ["a", "b"], "label": [0, 1]})
    raises(["no text column 'text'", "'content'", "'label'"], from_hf_dataset_dict,
           datasets.DatasetDict({"train": train}), "x")
    raises(["no 'train' split", "'test'"], from_hf_dataset_dict, datasets.DatasetDict({"test": train}), "x", "content")
    single = datasets.Dataset.from_dict({"text": ["a", "b"], "label": [1, 1]})
    raises(["single class"], from_hf_dataset_dict, {"train": single}, "x")
    test = datasets.Dataset.from_dict({"content": ["c"], "label": [5]})
    raises(["not seen in training", "'5'"], from_hf_dataset_dict, {"train": train, "test": test}, "x", "content")


def test_load_dataset_spec_hf_path(monkeypatch):
    datasets = _hf()
    calls = []
    dd = datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({"sentence": ["a", "b", "c", "d"], "label": [0, 1, 0, 1]}),
        "validation": datasets.Dataset.from_dict({"sentence": ["e", "f"], "label": [1, 0]}),
    })

    def fake_load(*args):
        calls.append(args)
        return dd

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    data = load_dataset_spec("glue:sst2", text_column="sentence")
    assert calls == [("glue", "sst2")]
    assert data.name == "glue:sst2" and data.test_texts == ["e", "f"]
    load_dataset_spec("hf:trec", text_column="sentence")
    load_dataset_spec("someone/reviews", text_column="sentence")
    assert calls[1:] == [("trec",), ("someone/reviews",)]

    def failing_load(*args):
        raise ConnectionError("Couldn't reach 'trec-corse' on the Hub\n(offline)")

    monkeypatch.setattr(datasets, "load_dataset", failing_load)
    raises(["could not load 'trec-corse'", "ConnectionError", "offline", "did you mean 'trec-coarse'", ".csv"],
           load_dataset_spec, "trec-corse")
    raises(["test_file", "Hugging Face"], load_dataset_spec, "someone/reviews", test_file="t.csv")
    raises(["empty dataset spec"], load_dataset_spec, "  ")



def test_hold_out_validation_moves_a_stratified_share_of_training_into_the_evaluation_slot():
    from adarank.compare.data import TextClassificationData, hold_out_validation

    texts = [f"t{i}" for i in range(100)]
    labels = [0] * 80 + [1] * 20
    data = TextClassificationData("toy", texts, labels, ["x", "y"], [0, 1], ["a", "b"], {"kind": "official"})
    val = hold_out_validation(data, 0.1, 0)
    assert len(val.test_texts) == 10 and sorted(val.test_labels) == [0] * 8 + [1] * 2  # stratified
    assert set(val.test_texts).isdisjoint(val.train_texts) and len(val.train_texts) == 90
    assert "x" not in val.test_texts  # the test split takes no part
    assert val.split == {"kind": "official", "evaluated_on": "validation", "validation_fraction": 0.1,
                         "validation_seed": 0}
    assert hold_out_validation(data, 0.1, 0).test_texts == val.test_texts  # seeded
    assert hold_out_validation(data, 0.1, 1).test_texts != val.test_texts
    assert data.test_texts == ["x", "y"] and len(data.train_texts) == 100  # the input is not modified
