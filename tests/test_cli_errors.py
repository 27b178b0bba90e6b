"""The promise of a clean error, input by input: exit code 2, one line `adarank: error: ...`, no traceback."""

import json
import os
import subprocess
import sys

import pytest

from adarank.cli import main
from adarank.outlock import LOCK_NAME

from test_cli import FAST, assert_clean_error, run_cli


def test_out_name_too_long_for_the_file_system(capsys, tiny_bert_dir, tmp_path):
    code, _, err = run_cli(capsys, "predict", tiny_bert_dir, "--out", tmp_path / ("x" * 300), *FAST)
    assert_clean_error(code, err, "output folder", "choose another --out")


def test_plan_path_too_long_for_the_file_system(capsys, tmp_path):
    for command in (["show", tmp_path / ("x" * 300)], ["allocate", tmp_path / ("x" * 300), "--out", tmp_path / "o"]):
        code, _, err = run_cli(capsys, *command)
        assert_clean_error(code, err, "x" * 20, "File name too long")


def test_dtype_help_says_what_bf16_costs(capsys):
    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "bf16 scoring is less exact" in help_text and "~38%" in help_text and "3 of 28 ranks" in help_text


def test_deeply_nested_json_plan(capsys, tmp_path):
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    for command in (["show", tmp_path / "deep.json"], ["allocate", tmp_path / "deep.json", "--out", tmp_path / "o"]):
        code, _, err = run_cli(capsys, *command)
        assert_clean_error(code, err, "nests JSON too deeply")


def test_csv_probe_field_over_the_csv_limit(capsys, tiny_bert_dir, tmp_path):
    import csv

    probe = tmp_path / "big.csv"
    probe.write_text("text\n" + "word " * (csv.field_size_limit() // 4) + "\nshort\n")
    code, _, err = run_cli(capsys, "predict", tiny_bert_dir, "--probe", probe, "--out", tmp_path / "o", *FAST)
    assert_clean_error(code, err, "big.csv", "line", "field larger than field limit")


def test_vision_model_given_a_text_tokenizer(capsys, tiny_bert_dir, tmp_path):
    import transformers

    config = transformers.ViTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                                    image_size=32, patch_size=8)
    transformers.ViTModel(config).save_pretrained(tmp_path / "vit")
    for extra in ([], ["--tokenizer", tiny_bert_dir]):
        code, _, err = run_cli(capsys, "predict", tmp_path / "vit", *extra, "--out", tmp_path / "o", *FAST)
        assert_clean_error(code, err, "ViTModel", "pixel_values", "text models only")


def test_probe_file_too_large_for_memory_is_refused_before_reading(capsys, tiny_bert_dir, tmp_path):
    from adarank.probes import MAX_PROBE_BYTES

    probe = tmp_path / "huge.txt"
    with open(probe, "wb") as fh:
        fh.truncate(MAX_PROBE_BYTES + 1)  # sparse: costs no disk, and must not be read to be refused
    code, _, err = run_cli(capsys, "predict", tiny_bert_dir, "--probe", probe, "--out", tmp_path / "o", *FAST)
    assert_clean_error(code, err, "huge.txt", "MiB", "sample")


def test_too_many_probe_texts(capsys, tiny_bert_dir, tmp_path):
    from adarank.probes import MAX_PROBE_TEXTS

    probe = tmp_path / "many.txt"
    probe.write_text("".join(f"sentence number {i}\n" for i in range(MAX_PROBE_TEXTS + 1)))
    code, _, err = run_cli(capsys, "predict", tiny_bert_dir, "--probe", probe, "--out", tmp_path / "o", *FAST)
    assert_clean_error(code, err, f"{MAX_PROBE_TEXTS + 1} texts", "sample")


@pytest.mark.parametrize("value", [None, ["a", "b"], 3, {"x": 1}])
def test_jsonl_values_that_are_not_strings(capsys, tiny_bert_dir, tmp_path, value):
    probe = tmp_path / "p.jsonl"
    probe.write_text(json.dumps({"text": "fine"}) + "\n" + json.dumps({"text": value}) + "\n")
    code, _, err = run_cli(capsys, "predict", tiny_bert_dir, "--probe", probe, "--out", tmp_path / "o", *FAST)
    assert_clean_error(code, err, "line 2", "not a string")


@pytest.mark.parametrize("name, head", [("data.parquet", b"PAR1 text-like bytes\n"),
                                        ("data.txt", b"PAR1" + b"x\n" * 20)])
def test_parquet_is_not_read_as_text_lines(capsys, tiny_bert_dir, tmp_path, name, head):
    probe = tmp_path / name
    probe.write_bytes(head)
    code, _, err = run_cli(capsys, "predict", tiny_bert_dir, "--probe", probe, "--out", tmp_path / "o", *FAST)
    assert_clean_error(code, err, name, "not text")


@pytest.mark.parametrize("args, words", [(["--target-regex", ""], ["--target-regex is empty"]),
                                         (["--target-regex", "  "], ["--target-regex is empty"]),
                                         (["--max-length", "0"], ["--max-length must be >= 1"]),
                                         (["--max-length", "-5"], ["--max-length must be >= 1"]),
                                         (["--rank", "64"], ["does not fit", "lower --rank to 32"]),
                                         (["--rank", str(10**9)], ["does not fit", "lower --rank to 32"])])
def test_silent_defaults_are_refused(capsys, tiny_bert_dir, tmp_path, args, words):
    code, _, err = run_cli(capsys, "predict", tiny_bert_dir, *args, "--out", tmp_path / "o", *FAST)
    assert_clean_error(code, err, *words)
    assert not (tmp_path / "o" / "plan.json").exists()


def test_a_killed_runs_staging_folder_and_stale_lock_are_cleared(capsys, tiny_bert_dir, tmp_path):
    out = tmp_path / "o"
    (out / ".adarank-staging-deadbeef").mkdir(parents=True)
    (out / ".adarank-staging-deadbeef" / "plan.json").write_text("{half a plan")
    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid that no longer exists, as after SIGKILL
    (out / LOCK_NAME).write_text(f"{dead.pid} {os.uname().nodename}\n")
    code, _, _ = run_cli(capsys, "predict", tiny_bert_dir, "--targets", "value", "--out", out, *FAST)
    assert code == 0
    left = sorted(p.name for p in out.iterdir() if p.name != LOCK_NAME)  # the lock file stays, naming nobody
    assert left == ["lora_config.json", "lora_patterns.yaml", "plan.json", "ranks.png"]


def test_a_second_run_on_a_busy_out_stops_at_once(capsys, tiny_bert_dir, tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    holder = "import sys, time; from adarank.outlock import OutputLock; l = OutputLock(sys.argv[1]); l.acquire(); print('held', flush=True); time.sleep(60)"
    other = subprocess.Popen([sys.executable, "-c", holder, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == "held"  # a live process holding the lock
        assert run_cli(capsys, "predict", tiny_bert_dir, "--targets", "value", "--out", tmp_path / "first", *FAST)[0] == 0
        for command in (["predict", tiny_bert_dir, "--targets", "value", "--out", out, *FAST],
                        ["allocate", tmp_path / "first", "--rank", "2", "--out", out]):
            code, stdout, err = run_cli(capsys, *command)
            assert_clean_error(code, err, f"process {other.pid}", "another adarank run", "another --out")
            assert "wrote" not in stdout
        assert (out / LOCK_NAME).read_text().split()[0] == str(other.pid)  # the owner's lock is left alone
        assert not (out / "plan.json").exists()
    finally:
        other.kill()
        other.wait()


def test_allocate_does_not_claim_a_scoring_run(capsys, tiny_bert_dir, tmp_path):
    run_cli(capsys, "predict", tiny_bert_dir, "--targets", "value", "--out", tmp_path / "a", *FAST)
    code, stdout, _ = run_cli(capsys, "allocate", tmp_path / "a", "--rank", "2", "--out", tmp_path / "b")
    assert code == 0 and "wrote" in stdout
    assert "scored" not in stdout


def test_show_refuses_a_plan_with_duplicated_names(capsys, tiny_bert_dir, tmp_path):
    run_cli(capsys, "predict", tiny_bert_dir, "--targets", "value", "--out", tmp_path / "a", *FAST)
    data = json.loads((tmp_path / "a" / "plan.json").read_text())
    data["modules"][1]["name"] = data["modules"][0]["name"]
    (tmp_path / "a" / "plan.json").write_text(json.dumps(data))
    for command in (["show", tmp_path / "a"], ["allocate", tmp_path / "a", "--out", tmp_path / "b"]):
        code, _, err = run_cli(capsys, *command)
        assert_clean_error(code, err, "appears twice", data["modules"][0]["name"])
        assert "bug in adarank" not in err


def test_fractional_rank_in_the_cli_as_in_the_api(capsys, tiny_bert_dir, tmp_path):
    code, stdout, _ = run_cli(capsys, "predict", tiny_bert_dir, "--targets", "value", "--rank", "2.5",
                              "--rule", "exact", "--groups", "joint", "--out", tmp_path / "a", *FAST)
    assert code == 0
    plan = json.loads((tmp_path / "a" / "plan.json").read_text())
    assert plan["budget"]["rank"] == 2.5 and plan["budget"]["total"] == 7.5
    assert sum(m["rank"] for m in plan["modules"]) == 7  # floor(2.5 * 3) rank units, spent exactly
    assert "r̄=2.5" in stdout


def test_degenerate_scores_are_warned_about_by_name(capsys, tiny_bert_dir, tmp_path):
    code, _, err = run_cli(capsys, "predict", tiny_bert_dir, "--targets", "value", "--noise-scale", "1e-30",
                           "--out", tmp_path / "a", *FAST)
    assert code == 0
    assert "adarank: warning: 3 of 3 modules scored 0 (encoder.layer.0.attention.self.value" in err
    assert "--noise-scale is too small" in err
    assert "all 3 modules of type attention.self.value scored the same" in err and "uniform" in err
    code, _, err = run_cli(capsys, "predict", tiny_bert_dir, "--targets", "value,pooler.dense", "--groups", "joint",
                           "--out", tmp_path / "b", *FAST)
    assert code == 0
    assert "1 of 4 modules scored 0 (pooler.dense)" in err and "output ignores them" in err
    assert "scored the same" not in err


def test_two_locks_on_one_folder_exclude_each_other(tmp_path):
    from adarank.errors import AdaRankError
    from adarank.outlock import OutputLock

    with OutputLock(tmp_path):
        with pytest.raises(AdaRankError, match=f"process {os.getpid()}"):
            OutputLock(tmp_path).acquire()
    assert OutputLock(tmp_path).owner() == (None, "")  # the file stays, naming nobody
    with OutputLock(tmp_path):  # free again once released
        pass
