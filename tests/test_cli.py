"""The command line: every user mistake is one line on stderr and exit code 2, and the real job works."""

import json
import os
import subprocess
import sys

import pytest

from adarank.cli import main


def run_cli(capsys, *args):
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_clean_error(code, err, *words):
    assert code == 2
    lines = [line for line in err.strip().splitlines() if line.startswith("adarank: error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for word in words:
        assert word in lines[0], lines[0]


FAST = ["--trials", "2", "--quiet"]


def test_predict_on_tiny_model_writes_all_outputs(capsys, tiny_bert_dir, tmp_path):
    out = tmp_path / "plan"
    code, stdout, _ = run_cli(capsys, "predict", tiny_bert_dir, "--targets", "query,value", "--rank", "4",
                              "--rule", "exact", "--out", out, *FAST)
    assert code == 0
    for name in ("plan.json", "lora_config.json", "lora_patterns.yaml", "ranks.png"):
        assert (out / name).stat().st_size > 0
    plan = json.loads((out / "plan.json").read_text())
    assert sum(m["rank"] for m in plan["modules"]) == 4 * 6
    assert "used 24 of 24 rank units" in stdout
    assert (out / "ranks.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(out.glob(".adarank-*"))  # no staging folder or checkpoint left behind
    # a failure while writing (here: the plot) with --force leaves the previous files as they were
    import adarank.plotting

    before = {p.name: p.read_bytes() for p in out.iterdir() if not p.name.startswith(".")}
    original = adarank.plotting.plot_plan
    adarank.plotting.plot_plan = lambda *a, **k: (_ for _ in ()).throw(OSError("disk full"))
    try:
        with pytest.raises(OSError):
            main(["predict", str(tiny_bert_dir), "--targets", "value", "--out", str(out), "--force", *FAST])
    finally:
        adarank.plotting.plot_plan = original
    assert {p.name: p.read_bytes() for p in out.iterdir() if not p.name.startswith(".")} == before
    # a second run into the same folder needs --force
    code, _, err = run_cli(capsys, "predict", tiny_bert_dir, "--out", out, *FAST)
    assert_clean_error(code, err, "already holds a plan", "--force")
    assert json.loads((out / "plan.json").read_text()) == plan  # untouched


def test_apply_to_seq_cls_prefixes_names(capsys, tiny_bert_dir, tmp_path):
    code, _, _ = run_cli(capsys, "predict", tiny_bert_dir, "--targets", "value", "--apply-to", "seq-cls",
                         "--out", tmp_path, *FAST)
    assert code == 0
    config = json.loads((tmp_path / "lora_config.json").read_text())
    assert all(key.startswith("bert\\.encoder\\.layer\\.") for key in config["rank_pattern"])


def test_allocate_reuses_scores(capsys, tiny_bert_dir, tmp_path):
    run_cli(capsys, "predict", tiny_bert_dir, "--targets", "value", "--out", tmp_path / "a", *FAST)
    code, stdout, _ = run_cli(capsys, "allocate", tmp_path / "a", "--rank", "2", "--rule", "exact", "--out", tmp_path / "b")
    assert code == 0 and "used 6 of 6" in stdout
    a = json.loads((tmp_path / "a" / "plan.json").read_text())
    b = json.loads((tmp_path / "b" / "plan.json").read_text())
    assert [m["scores"] for m in a["modules"]] == [m["scores"] for m in b["modules"]]


def test_inspect_lists_types_and_blocks(capsys, tiny_bert_dir):
    code, stdout, _ = run_cli(capsys, "inspect", tiny_bert_dir)
    assert code == 0
    assert "attention.self.value" in stdout and "18 modules in 6 types over 3 blocks" in stdout


def test_show_prints_plan(capsys, tiny_bert_dir, tmp_path):
    run_cli(capsys, "predict", tiny_bert_dir, "--targets", "value", "--out", tmp_path, *FAST)
    code, stdout, _ = run_cli(capsys, "show", tmp_path / "plan.json")
    assert code == 0 and "encoder.layer.2.attention.self.value" in stdout and "budget:" in stdout


@pytest.mark.parametrize("args,words", [
    (["predict", "/no/such/model"], ["does not exist"]),
    (["predict", "{tiny}", "--targets", "valu"], ["matches no module", "value"]),
    (["predict", "{tiny}", "--targets", "LayerNorm"], ["non-linear"]),
    (["predict", "{tiny}", "--rank", "0"], ["--rank"]),
    (["predict", "{tiny}", "--rank", "-3"], ["--rank"]),
    (["predict", "{tiny}", "--rank", "2", "--min-rank", "3"], ["min"]),
    (["predict", "{tiny}", "--rank", "8", "--max-rank", "4"], ["max"]),
    (["predict", "{tiny}", "--trials", "0"], ["trials"]),
    (["predict", "{tiny}", "--noise-scale", "nan"], ["noise scale"]),
    (["predict", "{tiny}", "--noise-scale", "-1"], ["noise scale"]),
    (["predict", "{tiny}", "--probe", "{empty}"], ["empty"]),
    (["predict", "{tiny}", "--probe", "{binary}"], ["binary"]),
    (["predict", "{tiny}", "--targets", "value", "--noise-scale", "1e38"], ["NaN/Inf", "encoder.layer.0.attention.self.value"]),
    (["predict", "{tiny}", "--out", "{unwritable}"], ["cannot write"]),
    (["predict", "{notamodel}"], ["not a model folder"]),
    (["show", "{truncated}"], ["not valid JSON"]),
    (["show", "{future}"], ["schema_version"]),
    (["predict", "{tiny}", "--tokenizer", "{notamodel}"], ["cannot load a tokenizer", "--tokenizer"]),
    (["allocate", "{foreign_plan}", "--model", "{tiny}", "--out", "{out}"], ["missing from", "encoder.layer.7"]),
    (["predict", "{tiny}", "--targets", "value", "--out", "{stale}"], ["other settings", "--no-resume"]),
])
def test_bad_input_gives_one_line_and_exit_2(capsys, tiny_bert_dir, tmp_path, args, words):
    (tmp_path / "empty.txt").write_text("\n  \n")
    (tmp_path / "binary.txt").write_bytes(b"\x00\x01\x02abc")
    (tmp_path / "blocker").write_text("a file where a folder should be")
    (tmp_path / "notamodel").mkdir()
    (tmp_path / "cut.json").write_text('{"schema_version": 1, "modules": [')
    plan = _tiny_plan(tiny_bert_dir, tmp_path / "made")
    (tmp_path / "future.json").write_text(json.dumps({**plan, "schema_version": 99}))
    foreign = json.loads(json.dumps(plan))
    foreign["modules"][0]["name"] = "encoder.layer.7.attention.self.value"
    (tmp_path / "foreign.json").write_text(json.dumps(foreign))
    (tmp_path / "stale").mkdir()
    (tmp_path / "stale" / ".adarank-checkpoint.json").write_text(json.dumps(
        {"version": 1, "fingerprint": {"model": "another"}, "scores": {}}))
    subs = {"{future}": str(tmp_path / "future.json"), "{foreign_plan}": str(tmp_path / "foreign.json"),
            "{out}": str(tmp_path / "out"), "{stale}": str(tmp_path / "stale"),"{tiny}": str(tiny_bert_dir), "{empty}": str(tmp_path / "empty.txt"),
            "{binary}": str(tmp_path / "binary.txt"), "{unwritable}": str(tmp_path / "blocker" / "out"),
            "{notamodel}": str(tmp_path / "notamodel"), "{truncated}": str(tmp_path / "cut.json")}
    argv = [subs.get(a, a) for a in args]
    if argv[0] == "predict" and "--out" not in argv:
        argv += ["--out", str(tmp_path / "out")]
    if argv[0] == "predict":  # the test's own options come last so that they win
        argv = argv[:1] + FAST + argv[1:]
    code, _, err = run_cli(capsys, *argv)
    assert_clean_error(code, err, *words)
    assert not (tmp_path / "out" / "plan.json").exists()


_PLANS: dict = {}


def _tiny_plan(model_dir, out) -> dict:
    """One real plan of the tiny model (value modules), made once per test session."""
    if "plan" not in _PLANS:
        assert main(["predict", str(model_dir), "--targets", "value", "--out", str(out), *FAST]) == 0
        _PLANS["plan"] = json.loads((out / "plan.json").read_text())
    return _PLANS["plan"]


@pytest.mark.parametrize("option,value", [("--trials", "1.5"), ("--min-rank", "0.5")])
def test_non_integer_counts_are_usage_errors(capsys, option, value):
    with pytest.raises(SystemExit) as exc:
        main(["predict", option, value])
    assert exc.value.code == 2
    assert option in capsys.readouterr().err


def test_long_probes_are_truncated_with_a_notice(capsys, tiny_bert_dir, tmp_path):
    probe = tmp_path / "long.txt"
    probe.write_text("a fairly long sentence that certainly has more than four tokens\nshort one\n")
    code, _, err = run_cli(capsys, "predict", tiny_bert_dir, "--targets", "value", "--probe", probe,
                           "--max-length", "4", "--out", tmp_path / "out", *FAST)
    assert code == 0
    assert "1 probe texts were truncated" in err  # "short one" is 4 tokens with [CLS] and [SEP]
    assert json.loads((tmp_path / "out" / "plan.json").read_text())["settings"]["probe_truncated"] == 1


def test_help_explains_every_option():
    out = subprocess.run([sys.executable, "-m", "adarank", "predict", "--help"], capture_output=True, text=True).stdout
    for option in ("--targets", "--rank", "--rule", "--unit", "--groups", "--min-rank", "--max-rank", "--trials",
                   "--noise-scale", "--compare", "--output", "--seed", "--probe", "--dtype", "--device", "--out",
                   "--force", "--apply-to", "--lora-alpha", "--engine"):
        assert option in out


@pytest.mark.slow
def test_end_to_end_on_packaged_minilm(tmp_path):
    """The real job on real weights through a real subprocess (value modules only, to stay quick)."""
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    proc = subprocess.run([sys.executable, "-m", "adarank", "predict", "--targets", "value", "--trials", "3",
                           "--rank", "8", "--rule", "exact", "--out", str(tmp_path)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    plan = json.loads((tmp_path / "plan.json").read_text())
    assert plan["model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert len(plan["modules"]) == 6 and sum(m["rank"] for m in plan["modules"]) == 48
    scores = [m["score_mean"] for m in plan["modules"]]
    assert all(s > 0 for s in scores)
    assert "score ± std" in proc.stdout and "used 48 of 48 rank units" in proc.stdout


def test_benchmark_commands_are_adarank_subcommands(tmp_path, capsys):
    from adarank.cli import main

    assert main(["compare", "--dry-run", "--model", str(tmp_path), "--results", str(tmp_path / "res"),
                 "--datasets", "mr", "--target-sets", "value", "--ranks", "2", "--seeds", "0",
                 "--methods", "uniform,adarank-fisher"]) == 0
    out = capsys.readouterr().out
    assert "todo  mr__value__r2__adarank-fisher__s0" in out and "plans to score first: value, value fisher" in out
    assert main(["report", "--results", str(tmp_path / "nothing")]) == 2
    assert "no run records" in capsys.readouterr().err
    assert main(["decide", "--results", str(tmp_path / "nothing")]) == 2
    with pytest.raises(SystemExit):
        main(["--help"])
    listing = capsys.readouterr().out
    assert all(name in listing for name in ("compare", "report", "decide"))
