"""The built-in generation datasets on the corpora's layouts: sizes, label sets, prompt cues, splits, subsamples.

The corpora are the tiny synthetic ones of tests/fixtures/nltk_corpora.py, written in the real layouts; expected
counts are read from the raw corpus files here, independently of the loaders.
"""

from __future__ import annotations

import re
import zipfile
from collections import Counter
from pathlib import Path

import pytest

from adarank.compare.data import hold_out_validation as classification_hold_out
from adarank.compare.data import load_dataset_spec
from adarank.compare.datasets import DATASETS, GenerationData, hold_out_validation, load_generation_spec
from adarank.compare.metrics import METRICS, bracket_chunk_f1, bracket_tags, bracketed, chunk_f1, chunks, score
from adarank.errors import AdaRankError

from conftest import nltk_corpora as FX  # noqa: E402

CUES = {
    "trec-coarse": "\nAnswer type:", "trec-fine": "\nAnswer type:", "mr": "\nSentiment:",
    "subj": "\nSubjective or objective:", "ppattach": "\nAttaches to (verb or noun):",
    "conll2000": "\nChunk tags:", "conll2000-brackets": "\nChunks:", "rte": "\nEntailment (yes or no):",
}


CORPORA: Path | None = None  # set by the nltk_dir fixture


@pytest.fixture(scope="module")
def nltk_dir(data_dir) -> Path:
    global CORPORA
    CORPORA = data_dir / "corpora"
    return data_dir


_cache: dict[str, GenerationData] = {}


def loaded(name: str, nltk_dir: Path) -> GenerationData:
    """Each corpus is parsed once per test session (the machine is shared)."""
    if name not in _cache:
        _cache[name] = load_generation_spec(name, data_dir=nltk_dir)
    return _cache[name]


def raw_lines(package: str, member: str) -> list[str]:
    with zipfile.ZipFile(CORPORA / f"{package}.zip") as zf:
        return zf.read(f"{package}/{member}").decode("latin-1").splitlines()


@pytest.mark.parametrize("name", sorted(CUES))
def test_every_builtin_is_well_formed(name, nltk_dir):
    data = loaded(name, nltk_dir)
    assert data.name == name and data.metric in METRICS
    assert all(p.endswith(CUES[name]) for p in data.train_prompts + data.test_prompts)
    completions = data.train_completions + data.test_completions
    assert all(c.startswith(" ") and c.strip() and c == " " + c.strip() for c in completions)
    longest = max(len(c.split()) for c in completions)
    assert data.max_new_tokens >= 4 * longest  # the documented words-based cap covers every reference
    assert data.split["chat_template"] is False
    if data.strata is not None:
        assert data.strata == [c.strip() for c in data.train_completions]
    # A model that answers every reference exactly scores 1.
    assert score(data.metric, data.test_completions, data.test_completions)["score"] == 1.0


def test_registry_lists_every_builtin():
    assert set(CUES) <= set(DATASETS)
    for name in CUES:
        entry = DATASETS[name]
        assert entry.name == name and entry.help and "\n" not in entry.help
    assert {n for n in DATASETS if DATASETS[n].classification} >= {"trec-coarse", "trec-fine", "mr", "subj"}
    assert DATASETS["conll2000"].classification is None


def test_trec_coarse(nltk_dir):
    data = loaded("trec-coarse", nltk_dir)
    raw = {s: [line for line in raw_lines("qc", f"{s}.txt") if line.strip()] for s in ("train", "test")}
    assert (len(data.train_prompts), len(data.test_prompts)) == (len(raw["train"]), len(raw["test"]))
    assert data.split["kind"] == "official"
    assert data.test_prompts[0] == f"Question: {FX.TREC_FIRST_TEST.split(None, 1)[1]}\nAnswer type:"
    assert data.test_completions[0] == " NUM"
    raw_test = [line.split(":", 1)[0] for line in raw_lines("qc", "test.txt") if line.strip()]
    assert Counter(c.strip() for c in data.test_completions) == Counter(raw_test)
    assert set(data.strata) == {"ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"}


def test_trec_fine(nltk_dir):
    data = loaded("trec-fine", nltk_dir)
    assert data.test_completions[0] == " NUM:dist"
    raw_train = {line.split(None, 1)[0] for line in raw_lines("qc", "train.txt") if line.strip()}
    assert set(data.strata) == raw_train and len(raw_train) == sum(map(len, FX.TREC_FINE.values()))
    assert data.train_prompts == loaded("trec-coarse", nltk_dir).train_prompts


@pytest.mark.parametrize("name, words", [("mr", {"neg": "negative", "pos": "positive"}),
                                         ("subj", {"objective": "objective", "subjective": "subjective"})])
def test_sentence_corpora_use_the_classification_split(name, words, nltk_dir):
    data = loaded(name, nltk_dir)
    cls = load_dataset_spec(name, data_dir=nltk_dir)
    assert data.split["kind"] == "stratified" and data.split["test_fraction"] == 0.1 and data.split["seed"] == 0
    cue = CUES[name]
    prefix = "Review: " if name == "mr" else "Sentence: "
    assert [p[len(prefix):-len(cue)] for p in data.test_prompts] == cls.test_texts
    assert [c.strip() for c in data.test_completions] == [words[cls.label_names[i]] for i in cls.test_labels]
    assert [p[len(prefix):-len(cue)] for p in data.train_prompts] == cls.train_texts
    # Another seed moves the split in both forms alike.
    other = load_generation_spec(name, data_dir=nltk_dir, seed=3)
    other_cls = load_dataset_spec(name, data_dir=nltk_dir, split_seed=3)
    assert [p[len(prefix):-len(cue)] for p in other.test_prompts] == other_cls.test_texts != cls.test_texts


def test_mr_subsample_and_validation_match_the_classification_form(nltk_dir):
    gen = load_generation_spec("mr", data_dir=nltk_dir, max_train=30, seed=2)
    cls = load_dataset_spec("mr", data_dir=nltk_dir, max_train=30, split_seed=2)
    strip = lambda prompts: [p[len("Review: "):-len(CUES["mr"])] for p in prompts]  # noqa: E731
    assert strip(gen.train_prompts) == cls.train_texts
    assert gen.split["max_train"] == 30 and gen.split["subsample_seed"] == 2
    assert Counter(gen.strata) == {"negative": 15, "positive": 15}
    held, held_cls = hold_out_validation(gen, 0.2, seed=5), classification_hold_out(cls, 0.2, seed=5)
    assert strip(held.test_prompts) == held_cls.test_texts and strip(held.train_prompts) == held_cls.train_texts
    entry_cls = DATASETS["mr"].load_classification(nltk_dir, max_train=30, seed=2)
    assert entry_cls.train_texts == cls.train_texts and entry_cls.test_texts == cls.test_texts


def test_subj_sizes(nltk_dir):
    data = loaded("subj", nltk_dir)
    per = FX.SENTENCES_PER_CLASS
    assert (len(data.train_prompts), len(data.test_prompts)) == (2 * per - round(0.2 * per), round(0.2 * per))
    half = round(0.1 * per)
    assert Counter(c.strip() for c in data.test_completions) == {"objective": half, "subjective": half}


def test_ppattach(nltk_dir):
    data = loaded("ppattach", nltk_dir)
    train_raw = [line.split() for line in raw_lines("ppattach", "training") if line.strip()]
    test_raw = [line.split() for line in raw_lines("ppattach", "test") if line.strip()]
    assert (len(data.train_prompts), len(data.test_prompts)) == (len(train_raw), len(test_raw))
    assert (len(train_raw), len(test_raw)) == (FX.PP_TRAIN, FX.PP_TEST)
    _, verb, noun1, prep, noun2, _ = train_raw[1]
    assert data.train_prompts[1] == (f"Attach '{prep} {noun2}' in: {verb} {noun1} {prep} {noun2}\n"
                                     "Attaches to (verb or noun):")
    word = {"V": "verb", "N": "noun"}
    assert [c.strip() for c in data.test_completions] == [word[f[5]] for f in test_raw]
    assert data.split == {"kind": "official", "train": "ppattach/training", "test": "ppattach/test",
                          "chat_template": False}


def _conll_sentences(member: str) -> list[list[list[str]]]:
    sentences, current = [], []
    for line in raw_lines("conll2000", member):
        if line.strip():
            current.append(line.split())
        elif current:
            sentences.append(current)
            current = []
    return sentences + ([current] if current else [])


def test_conll2000(nltk_dir):
    data = loaded("conll2000", nltk_dir)
    train_raw, test_raw = _conll_sentences("train.txt"), _conll_sentences("test.txt")
    assert (len(data.train_prompts), len(data.test_prompts)) == (len(train_raw), len(test_raw))
    assert (len(train_raw), len(test_raw)) == (FX.CONLL_TRAIN, FX.CONLL_TEST)
    assert data.metric == "chunk_f1" and data.strata is None
    assert data.train_prompts[0] == "Words: " + " ".join(t[0] for t in train_raw[0]) + "\nChunk tags:"
    for prompt, completion, sentence in zip(data.test_prompts, data.test_completions, test_raw):
        assert prompt == "Words: " + " ".join(t[0] for t in sentence) + "\nChunk tags:"
        assert completion.split() == [t[2] for t in sentence]
    tags = {t for c in data.train_completions + data.test_completions for t in c.split()}
    types = {t[2:] for t in tags if t != "O"}
    assert types == {t[2][2:] for s in train_raw + test_raw for t in s if t[2] != "O"}
    assert types >= {"NP", "VP", "PP", "ADJP", "ADVP", "SBAR", "PRT"}
    assert all(t == "O" or t[:2] in ("B-", "I-") for t in tags)
    # Predicting O everywhere finds no chunk.
    assert chunk_f1([" O"] * len(data.test_completions), data.test_completions)["score"] == 0.0


def test_conll2000_brackets_is_the_same_corpus_with_the_words_in_the_completion(nltk_dir):
    data, tags = loaded("conll2000-brackets", nltk_dir), loaded("conll2000", nltk_dir)
    assert data.metric == "bracket_chunk_f1" and data.strata is None
    first = _conll_sentences("train.txt")[0]
    assert data.train_completions[0] == " " + bracketed([t[0] for t in first], [t[2] for t in first])
    assert data.train_completions[0].startswith(" [NP ")
    for split in ("train", "test"):
        for prompt, completion, tag_prompt, tag_completion in zip(
                getattr(data, f"{split}_prompts"), getattr(data, f"{split}_completions"),
                getattr(tags, f"{split}_prompts"), getattr(tags, f"{split}_completions")):
            assert prompt == tag_prompt.replace("\nChunk tags:", "\nChunks:")
            words, read = bracket_tags(completion)
            assert " ".join(words) == prompt[len("Words: "):-len("\nChunks:")]   # every word, in order
            assert chunks(read) == chunks(tag_completion.split())              # the same gold chunks
    # The same guesses score the same F1 in both forms: here, the gold tags with each sentence's last tag made O.
    guesses = [c.split()[:-1] + ["O"] for c in tags.test_completions]
    words = [bracket_tags(c)[0] for c in data.test_completions]
    as_tags = chunk_f1([" ".join(g) for g in guesses], tags.test_completions)
    as_brackets = bracket_chunk_f1([" " + bracketed(w, g) for w, g in zip(words, guesses)],
                                   data.test_completions)
    assert 0.5 < as_tags["score"] < 1.0 and as_brackets == as_tags
    assert bracket_chunk_f1([" O"] * len(data.test_completions), data.test_completions)["score"] == 0.0


def test_rte(nltk_dir):
    data = loaded("rte", nltk_dir)
    with zipfile.ZipFile(CORPORA / "rte.zip") as zf:
        def labels(member: str) -> list[str]:
            text = zf.read(f"rte/{member}").decode("utf-8")
            return re.findall(r'<pair[^>]*(?:entailment|value)="([A-Z]+)"', text)
        train_labels = sum((labels(f"rte{n}_{s}.xml") for n, s in
                            [(1, "dev"), (1, "test"), (2, "dev"), (2, "test"), (3, "dev")]), [])
        test_labels = labels("rte3_test.xml")
    yes = {"YES", "TRUE"}
    assert len(data.train_prompts) == len(train_labels) == 5 * FX.RTE_PAIRS
    assert len(data.test_prompts) == len(test_labels) == FX.RTE_PAIRS
    assert [c.strip() for c in data.test_completions] == ["yes" if v in yes else "no" for v in test_labels]
    assert Counter(data.strata) == Counter("yes" if v in yes else "no" for v in train_labels)
    assert all(p.startswith("Premise: ") and p.count("\n") == 2 and "\nHypothesis: " in p
               for p in data.train_prompts + data.test_prompts)
    assert "RTE3 test" in DATASETS["rte"].help
    assert not set(data.train_prompts) & set(data.test_prompts)


def test_subsamples_are_seeded_stratified_and_recorded(nltk_dir):
    small = load_generation_spec("rte", data_dir=nltk_dir, max_train=20, max_test=6, seed=1)
    assert (len(small.train_prompts), len(small.test_prompts)) == (20, 6)
    assert small.split["max_train"] == 20 and small.split["max_test"] == 6 and small.split["subsample_seed"] == 1
    full = loaded("rte", nltk_dir)
    assert set(small.train_prompts) <= set(full.train_prompts) and set(small.test_prompts) <= set(full.test_prompts)
    share = Counter(full.strata)["yes"] / len(full.strata)
    assert abs(Counter(small.strata)["yes"] - 20 * share) <= 1
    test_share = Counter(full.test_completions)[" yes"] / len(full.test_completions)
    assert abs(Counter(small.test_completions)[" yes"] - 6 * test_share) <= 1
    again = load_generation_spec("rte", data_dir=nltk_dir, max_train=20, max_test=6, seed=1)
    assert again.train_prompts == small.train_prompts and again.test_prompts == small.test_prompts
    other = load_generation_spec("rte", data_dir=nltk_dir, max_train=20, max_test=6, seed=2)
    assert other.train_prompts != small.train_prompts
    assert small.max_new_tokens == full.max_new_tokens  # the cap does not move with the subsample
    chunked = load_generation_spec("conll2000", data_dir=nltk_dir, max_test=5)
    assert len(chunked.test_prompts) == 5
    assert set(chunked.test_prompts) <= set(loaded("conll2000", nltk_dir).test_prompts)


def test_subsample_errors(nltk_dir):
    with pytest.raises(AdaRankError, match="max_test=1 is smaller than the 2 classes"):
        load_generation_spec("rte", data_dir=nltk_dir, max_test=1)
    with pytest.raises(AdaRankError, match="max_train must be a positive integer"):
        load_generation_spec("rte", data_dir=nltk_dir, max_train=0)


def test_missing_corpus_names_the_download(tmp_path):
    with pytest.raises(AdaRankError) as info:
        load_generation_spec("conll2000", data_dir=tmp_path)
    message = str(info.value)
    assert "conll2000.zip" in message and str(tmp_path) in message and "nltk.downloader" in message
    assert "conll2000" in message.split("nltk.downloader", 1)[1]


def _fake_corpus(root: Path, package: str, files: dict[str, str]) -> Path:
    (root / "corpora").mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(root / "corpora" / f"{package}.zip", "w") as zf:
        for name, text in files.items():
            zf.writestr(f"{package}/{name}", text)
    return root


def test_malformed_corpora_are_reported_with_the_line(tmp_path):
    pp = _fake_corpus(tmp_path / "pp", "ppattach", {"training": "0 join board as director V\n1 bad line\n",
                                                    "test": "0 join board as director N\n"})
    with pytest.raises(AdaRankError, match=r"ppattach/training line 2 is not 'id verb noun1 prep noun2 V\|N'"):
        load_generation_spec("ppattach", data_dir=pp)
    conll = _fake_corpus(tmp_path / "conll", "conll2000", {"train.txt": "He PRP B-NP\n\nruns VBZ\n",
                                                           "test.txt": "He PRP B-NP\n"})
    with pytest.raises(AdaRankError, match="conll2000/train.txt line 3 is not 'word POS chunk-tag'"):
        load_generation_spec("conll2000", data_dir=conll)
    pair = '<pair id="1" entailment="YES"><t>A dog barks.</t><h>A dog makes noise.</h></pair>'
    good = f"<entailment-corpus>{pair}</entailment-corpus>"
    files = {f"rte{n}_{s}.xml": good for n in (1, 2, 3) for s in ("dev", "test")}
    rte = _fake_corpus(tmp_path / "rte", "rte", {**files, "rte2_test.xml": "<entailment-corpus><pair"})
    with pytest.raises(AdaRankError, match="rte/rte2_test.xml is not valid XML"):
        load_generation_spec("rte", data_dir=rte)
    unlabelled = good.replace(' entailment="YES"', "")
    rte = _fake_corpus(tmp_path / "rte2", "rte", {**files, "rte3_test.xml": unlabelled})
    with pytest.raises(AdaRankError, match="rte/rte3_test.xml pair '1' lacks"):
        load_generation_spec("rte", data_dir=rte)
    ok = load_generation_spec("rte", data_dir=_fake_corpus(tmp_path / "rte3", "rte", files))
    assert ok.test_prompts == ["Premise: A dog barks.\nHypothesis: A dog makes noise.\nEntailment (yes or no):"]
