"""``adarank pilot`` on bad input: one ``adarank: error:`` line, exit 2, nothing written in --out."""

from __future__ import annotations

import pytest

from adarank.cli import main
from adarank.pilot.cli import build_parser
from adarank.pilot.config import PilotConfig

from .conftest import write_jsonl


def test_parser_is_generated_from_the_config():
    ns = build_parser().parse_args(["some-model", "--data", "x.jsonl", "--margin", "2", "--budget-minutes", "5"])
    assert (ns.model, ns.data, ns.margin, ns.budget_minutes) == ("some-model", "x.jsonl", 2.0, 5.0)
    text = build_parser().format_help()
    assert "--sweep-seeds" in text and "non-inferiority margin" in text


@pytest.mark.parametrize("args, message", [
    (["--margin", "0"], "margin"),
    (["--margin", "nan"], "margin"),
    (["--alpha", "0.7"], "alpha"),
    (["--seeds", "0,0,1"], "distinct"),
    (["--seeds", "0,1", "--sweep-seeds", "1,2"], "disjoint"),
    (["--current", "r=4,targets=q_proj,lr=1e-3"], "do not match"),
    (["--current", "r=4,targets=query,nonexistent,lr=1e-3"], "do not match"),
])
def test_bad_input_exits_2_and_writes_nothing(demo_files, tmp_path, capsys, args, message):
    train, test = demo_files
    out = tmp_path / "out"
    code = main(["pilot", "--data", str(train), "--test", str(test), "--out", str(out), *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith("adarank: error:") and message in err[-1]
    assert not out.exists()


def test_too_few_examples(tmp_path, capsys):
    train = write_jsonl(tmp_path / "t.jsonl", [{"text": f"w{i}", "label": "ab"[i % 2]} for i in range(4)])
    test = write_jsonl(tmp_path / "s.jsonl", [{"text": "w", "label": "a"}, {"text": "v", "label": "b"}])
    out = tmp_path / "out"
    assert main(["pilot", "--data", str(train), "--test", str(test), "--out", str(out)]) == 2
    assert "adarank: error:" in capsys.readouterr().err
    assert not out.exists()


def test_single_label_data_cannot_feed_accuracy(tmp_path, capsys):
    train = write_jsonl(tmp_path / "t.jsonl", [{"text": f"w{i}", "label": "a"} for i in range(40)])
    out = tmp_path / "out"
    assert main(["pilot", "--data", str(train), "--out", str(out)]) == 2
    assert "adarank: error:" in capsys.readouterr().err
    assert not out.exists()


def test_foreign_out_is_refused(demo_files, tmp_path, capsys):
    train, test = demo_files
    out = tmp_path / "out"
    out.mkdir()
    (out / "something.txt").write_text("x")
    assert main(["pilot", "--data", str(train), "--test", str(test), "--out", str(out),
                 "--current", "r=4,targets=query,value,lr=1e-3"]) == 2
    assert "--force" in capsys.readouterr().err


def test_demo_config_uses_packaged_data():
    from adarank.pilot.cli import DEMO_DIR, config_from_args

    cfg = config_from_args(build_parser().parse_args(["--demo"]), ["--demo"])
    assert isinstance(cfg, PilotConfig) and cfg.data == str(DEMO_DIR / "train.jsonl")
    assert (DEMO_DIR / "train.jsonl").is_file() and (DEMO_DIR / "test.jsonl").is_file()
    assert cfg.eval_seeds == (0, 1, 2) and cfg.device == "cpu"
