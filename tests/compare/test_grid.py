"""The benchmark grid: run listing, resume, failure handling, and one real end-to-end CPU run."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from adarank.compare import grid
from adarank.compare.grid import TARGET_SETS, RunSpec, plan_grid



def _dry(capsys, tmp_path, *extra: str) -> list[str]:
    argv = ["--dry-run", "--model", str(tmp_path), "--results", str(tmp_path / "res"), *extra]
    assert grid.main(argv) == 0
    return capsys.readouterr().out.splitlines()


def test_dry_run_lists_the_full_product_and_skips_finished_runs(tmp_path, capsys):
    args = ("--datasets", "trec-coarse,mr", "--target-sets", "value,attention", "--ranks", "2,8",
            "--methods", "uniform,adarank-exact,random", "--seeds", "0,1")
    lines = _dry(capsys, tmp_path, *args)
    runs = [line for line in lines if line.startswith(("todo ", "done "))]
    assert len(runs) == 2 * 2 * 2 * 3 * 2
    assert lines[-1] == "dry run: 48 runs, 48 to run, 0 already done"
    assert "plans to score first: value, attention" in lines

    finished = tmp_path / "res" / "runs" / "mr__attention__r8__random__s1.json"
    finished.parent.mkdir(parents=True)
    finished.write_text("{}")
    lines = _dry(capsys, tmp_path, *args)
    assert "done  mr__attention__r8__random__s1" in lines
    assert lines[-1] == "dry run: 48 runs, 47 to run, 1 already done"


def test_default_methods_and_lr_sweep_dry_run(tmp_path, capsys):
    from adarank.compare.methods import CORE_METHODS

    lines = _dry(capsys, tmp_path, "--datasets", "subj", "--target-sets", "all-linear", "--ranks", "8",
                 "--seeds", "0")
    assert [line.split()[-1].split("__")[3] for line in lines if line.startswith("todo")] == list(CORE_METHODS)
    lines = _dry(capsys, tmp_path, "--datasets", "subj,mr", "--target-sets", "value", "--ranks", "2,8",
                 "--seeds", "0,1,2", "--methods", "uniform", "--lr-sweep", "1e-4,3e-4,1e-3")
    keys = [line.split()[-1] for line in lines if line.startswith("todo")]
    assert len(keys) == 2 * 1 * 2 * 3 * 3
    assert "subj__value__r2__uniform__lr0.0003__s1" in keys
    # without --methods every default method gets its own sweep
    lines = _dry(capsys, tmp_path, "--datasets", "subj", "--target-sets", "value", "--ranks", "2", "--seeds", "100",
                 "--lr-sweep", "1e-4,3e-4")
    swept = {line.split()[-1].split("__")[3] for line in lines if line.startswith("todo")}
    assert swept == set(CORE_METHODS)
    assert all("__uniform__lr" in k for k in keys)


def _record(path: Path, lr: float, acc: float = 0.8, **extra) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rec = {"dataset": "mr", "target_set": "value", "rank": 2, "method": "uniform", "seed": 0,
           "test_accuracy": acc, "hparams": {"lr": lr}, **extra}
    path.write_text(json.dumps(rec))


def test_runs_at_a_learning_rate_the_sweep_no_longer_chooses_are_rerun(tmp_path, capsys):
    res = tmp_path / "res"
    sweep = res / "lr-sweep" / "runs"
    _record(sweep / "mr__value__r2__uniform__lr0.001__s0.json", 1e-3, 0.80, lr_sweep=True)
    _record(sweep / "mr__value__r2__uniform__lr0.003__s0.json", 3e-3, 0.82, lr_sweep=True)
    args = ("--datasets", "mr", "--target-sets", "value", "--ranks", "2", "--methods", "uniform,random",
            "--seeds", "0", "--lr-from-sweep", "--lr-choice", "shared", "--sweep-on", "test")
    _record(res / "runs" / "mr__value__r2__uniform__s0.json", 3e-3)
    _record(res / "runs" / "mr__value__r2__random__s0.json", 3e-3)
    assert grid.stale_runs(grid.options_from_args(grid.build_parser().parse_args(
        ["--model", str(tmp_path), "--results", str(res), "--dry-run", *args])), []) == {}
    assert _dry(capsys, tmp_path, *args)[-1] == "dry run: 2 runs, 0 to run, 2 already done"

    # a larger learning rate joins the sweep and wins: both finished runs are now stale
    _record(sweep / "mr__value__r2__uniform__lr0.005__s0.json", 5e-3, 0.84, lr_sweep=True)
    lines = _dry(capsys, tmp_path, *args)
    assert "stale  mr__value__r2__uniform__s0" in lines
    assert lines[-1] == "dry run: 2 runs, 2 to run, 0 already done"
    opts = grid.options_from_args(grid.build_parser().parse_args(
        ["--model", str(tmp_path), "--results", str(res), "--dry-run", *args]))
    stale = grid.stale_runs(opts, plan_grid(["mr"], ["value"], [2], ["uniform", "random"], [0]))
    assert stale == {"mr__value__r2__uniform__s0": 3e-3, "mr__value__r2__random__s0": 3e-3}
    dest = grid.supersede(res, stale)
    assert sorted(p.name for p in dest.iterdir()) == ["mr__value__r2__random__s0__lr0.003.json",
                                                     "mr__value__r2__uniform__s0__lr0.003.json"]
    assert not list((res / "runs").iterdir())


def test_a_resumed_grid_refuses_finished_runs_made_with_other_options(tmp_path, capsys):
    args = ("--datasets", "mr", "--target-sets", "value", "--ranks", "2", "--methods", "uniform", "--seeds", "0",
            "--batch-size", "32", "--max-train", "4000", "--max-steps", "100")
    _record(tmp_path / "res" / "runs" / "mr__value__r2__uniform__s0.json", 1e-3,
            hparams={"lr": 1e-3, "batch_size": 32, "max_steps": 100}, split={"kind": "official", "max_train": 4000})
    assert _dry(capsys, tmp_path, *args)[-1] == "dry run: 1 runs, 0 to run, 1 already done"
    # the learning rate is not bound here (stale_runs handles the sweep's choice)
    assert _dry(capsys, tmp_path, *args, "--lr", "3e-3")[-1].endswith("1 already done")
    argv = ["--dry-run", "--model", str(tmp_path), "--results", str(tmp_path / "res"), *args]
    for extra, field in ((["--batch-size", "16"], "batch_size 16"), (["--max-train", "2000"], "max_train 2000"),
                         (["--max-steps", "50"], "max_steps 50")):
        assert grid.main([*argv, *extra]) == 2
        err = capsys.readouterr().err
        assert f"{field} on this command line" in err and "mr__value__r2__uniform__s0" in err
        assert "--results" in err and "Traceback" not in err


def test_launch_order_keeps_the_methods_of_one_seed_together():
    runs = plan_grid(["trec-coarse", "mr"], ["value"], [2, 8], ["uniform", "adarank-exact"], [0, 1])
    assert [r.key for r in runs[:4]] == [
        "trec-coarse__value__r2__uniform__s0", "trec-coarse__value__r2__adarank-exact__s0",
        "trec-coarse__value__r8__uniform__s0", "trec-coarse__value__r8__adarank-exact__s0"]
    assert [r.seed for r in runs] == [0] * 8 + [1] * 8
    assert RunSpec("mr", "attention", 8, "uniform", 3, lr=1e-3).key == "mr__attention__r8__uniform__lr0.001__s3"


@pytest.mark.parametrize("argv, message", [
    (["--target-sets", "values"], "unknown target set"),
    (["--methods", "uniform,adarank"], "unknown method"),
    (["--ranks", "0"], "--ranks values must be >= 1"),
    (["--seeds", "a"], "--seeds must be comma-separated integers"),
    (["--lr-sweep", "1e-3,-1"], "--lr-sweep needs numbers > 0"),
])
def test_bad_options_are_one_line_errors(tmp_path, capsys, argv, message):
    assert grid.main(["--dry-run", "--model", str(tmp_path), *argv]) == 2
    assert message in capsys.readouterr().err


def test_missing_data_dir_is_an_error(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("NLTK_DATA", raising=False)
    assert grid.main(["--model", str(tmp_path), "--results", str(tmp_path / "r")]) == 2
    assert "no data directory" in capsys.readouterr().err


def test_failures_are_logged_and_the_grid_goes_on(tmp_path, capsys, monkeypatch):
    """In-process workers (--workers 0) with a fake run: one key fails, the others are written."""
    def fake_run(job):
        if job.spec.method == "random":
            return grid.Outcome(job.spec.key, False, 0.0, error="boom", error_type="RuntimeError", traceback="tb")
        Path(job.out_path).parent.mkdir(parents=True, exist_ok=True)
        Path(job.out_path).write_text(json.dumps({"key": job.spec.key}))
        return grid.Outcome(job.spec.key, True, 0.0)

    monkeypatch.setattr(grid, "execute_run", fake_run)
    monkeypatch.setattr(grid, "_preflight", lambda opts: None)
    monkeypatch.setattr(grid, "ensure_plans", lambda opts, log: {(ts, "", None): tmp_path / f"{ts}.json" for ts in opts.target_sets})
    res = tmp_path / "res"
    argv = ["--model", str(tmp_path), "--data-dir", str(tmp_path), "--results", str(res), "--workers", "0",
            "--datasets", "trec-coarse", "--target-sets", "value", "--ranks", "2",
            "--methods", "uniform,random,adarank-exact", "--seeds", "0,1"]
    assert grid.main(argv) == 1
    out = capsys.readouterr().out
    assert "6 runs: 4 done, 0 skipped (already done), 2 failed, 0 not started" in out
    errors = [json.loads(line) for line in (res / "errors.jsonl").read_text().splitlines()]
    assert [e["key"] for e in errors] == ["trec-coarse__value__r2__random__s0", "trec-coarse__value__r2__random__s1"]
    assert errors[0]["error"] == "boom" and errors[0]["error_type"] == "RuntimeError"
    assert len(list((res / "runs").glob("*.json"))) == 4

    # resume: the finished runs are skipped, only the failed ones are tried again
    monkeypatch.setattr(grid, "execute_run", lambda job: (Path(job.out_path).write_text("{}"),
                                                         grid.Outcome(job.spec.key, True, 0.0))[1])
    assert grid.main(argv) == 0
    assert "6 runs: 2 done, 4 skipped (already done), 0 failed, 0 not started" in capsys.readouterr().out


def test_timeout_stops_launching_new_runs(tmp_path, monkeypatch):
    def slow_run(job):
        time.sleep(0.05)
        return grid.Outcome(job.spec.key, True, 0.05)

    monkeypatch.setattr(grid, "execute_run", slow_run)
    monkeypatch.setattr(grid, "_preflight", lambda opts: None)
    monkeypatch.setattr(grid, "ensure_plans", lambda opts, log: {(ts, "", None): tmp_path / f"{ts}.json" for ts in opts.target_sets})
    args = grid.build_parser().parse_args(
        ["--model", str(tmp_path), "--data-dir", str(tmp_path), "--results", str(tmp_path / "r"), "--workers", "0",
         "--datasets", "mr", "--target-sets", "value", "--ranks", "2", "--methods", "uniform",
         "--seeds", ",".join(map(str, range(40))), "--timeout-minutes", "0.002"])
    summary = grid.run_grid(grid.options_from_args(args), log=lambda _: None)
    assert summary.not_started > 0 and summary.done + summary.not_started == 40 and summary.failed == 0


def test_a_run_that_raises_is_reported_not_raised(tmp_path):
    job = grid.Job(spec=RunSpec("trec-coarse", "value", 2, "uniform", 0), model=str(tmp_path),
                   data_dir=str(tmp_path), max_train=8, plan_path=str(tmp_path / "missing.json"),
                   out_path=str(tmp_path / "runs" / "x.json"), config={}, device="cpu", groups="joint")
    outcome = grid.execute_run(job)  # tmp_path holds no corpus: the data loader raises
    assert not outcome.ok and outcome.error_type == "AdaRankError" and "not found" in outcome.error
    assert "Traceback" in outcome.traceback
    assert not (tmp_path / "runs" / "x.json").exists()


def test_end_to_end_grid_and_report_on_cpu(tmp_path, capsys, data_dir, monkeypatch):
    """Tiny random BERT (MiniLM tokenizer), 64 TREC examples, 3 steps, 2 methods x 2 seeds, one worker. Started
    from inside an unrelated git repository, whose commit the records must not name."""
    import torch
    import transformers
    from transformers import AutoTokenizer

    import adarank
    from adarank.compare import report
    from adarank.loading import default_model_path
    from adarank.plan import RankPlan

    model_dir = tmp_path / "tiny-bert"
    config = transformers.BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=64, vocab_size=30522)
    torch.manual_seed(0)
    transformers.BertModel(config).save_pretrained(model_dir)
    AutoTokenizer.from_pretrained(default_model_path()).save_pretrained(model_dir)

    res = tmp_path / "grid"
    other_head = _git_repo(tmp_path / "other", {"README": "unrelated"})
    monkeypatch.chdir(tmp_path / "other")
    argv = ["--model", str(model_dir), "--data-dir", str(data_dir), "--datasets", "trec-coarse",
            "--target-sets", "attention", "--ranks", "4", "--methods", "uniform,adarank-exact", "--seeds", "0,1",
            "--workers", "1", "--max-train", "64", "--max-steps", "3", "--device", "cpu", "--results", str(res)]
    assert grid.main(argv) == 0
    assert "4 runs: 4 done, 0 skipped (already done), 0 failed" in capsys.readouterr().out
    plan = RankPlan.load(res / "plans" / "attention.json")
    assert len(plan.modules) == 8 and plan.settings["targets"] == TARGET_SETS["attention"]
    assert (res / "plans" / "attention.png").stat().st_size > 0

    files = sorted((res / "runs").glob("*.json"))
    assert [f.stem for f in files] == [f"trec-coarse__attention__r4__{m}__s{s}"
                                       for m in ("adarank-exact", "uniform") for s in (0, 1)]
    rec = json.loads(files[0].read_text())
    assert rec["target_set"] == "attention" and rec["timestamp"]
    assert rec["grid_commit"] == grid.git_commit() and not str(rec["grid_commit"]).startswith(other_head)
    assert rec["adarank_version"] == adarank.__version__
    assert rec["steps"] == 3 and 0.0 <= rec["test_accuracy"] <= 1.0
    assert sum(rec["ranks"].values()) == 4 * 8  # adarank-exact spends the budget exactly
    assert set(rec["ranks"]) == {m.name for m in plan.modules}
    assert not (res / "errors.jsonl").exists()

    assert grid.main(argv) == 0  # resume: nothing left to do, the plan is re-used
    out = capsys.readouterr().out
    assert "4 runs: 0 done, 4 skipped (already done), 0 failed" in out and "re-using" in out

    md = tmp_path / "section.md"
    assert report.main(["--results", str(res), "--out", str(md), "--plots", str(res / "plots")]) == 0
    text = md.read_text(encoding="utf-8")
    assert "### trec-coarse · attention · r̄=4" in text
    assert any(line.startswith("| adarank-exact | 2 |") for line in text.splitlines())
    assert (res / "plots" / "acc__trec-coarse__attention__r4.png").stat().st_size > 0
    assert (res / "plots" / "paired_diff.png").stat().st_size > 0


def test_dry_run_names_the_variant_plans_to_score(tmp_path, capsys):
    lines = _dry(capsys, tmp_path, "--datasets", "trec-coarse,mr", "--target-sets", "value", "--ranks", "2",
                 "--methods", "uniform,adarank-fisher,adarank-task64", "--seeds", "0")
    assert "plans to score first: value, value fisher, value task64 trec-coarse, value task64 mr" in lines


def test_variant_plans_are_scored_with_their_signal_and_task_texts(tmp_path, data_dir):
    """Tiny random BERT: a fisher plan and a 64-text task-probe plan are scored, saved and re-used."""
    import torch
    import transformers
    from transformers import AutoTokenizer

    from adarank.compare.data import load_dataset_spec
    from adarank.compare.methods import sample_texts
    from adarank.loading import default_model_path
    from adarank.plan import RankPlan

    model_dir = tmp_path / "tiny-bert"
    torch.manual_seed(0)
    transformers.BertModel(transformers.BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                                   intermediate_size=64)).save_pretrained(model_dir)
    AutoTokenizer.from_pretrained(default_model_path()).save_pretrained(model_dir)
    argv = ["--model", str(model_dir), "--data-dir", str(data_dir), "--datasets", "trec-coarse",
            "--target-sets", "value", "--methods", "adarank-exact,adarank-fisher,adarank-task64",
            "--device", "cpu", "--results", str(tmp_path / "res")]
    opts = grid.options_from_args(grid.build_parser().parse_args(argv))
    logged: list[str] = []
    paths = grid.ensure_plans(opts, logged.append)
    assert set(paths) == {("value", "", None), ("value", "fisher", None), ("value", "task64", "trec-coarse")}
    fisher = RankPlan.load(paths[("value", "fisher", None)])
    task = RankPlan.load(paths[("value", "task64", "trec-coarse")])
    paper = RankPlan.load(paths[("value", "", None)])
    assert fisher.settings["signal"] == "fisher" and paper.settings["signal"] == "disagreement"
    assert task.settings["task_texts"] == 64 and task.settings["probe_examples"] == 64
    assert task.settings["task_dataset"] == "trec-coarse"
    assert [m.score_mean for m in task.modules] != [m.score_mean for m in paper.modules]  # other probes, other scores
    train = load_dataset_spec("trec-coarse", data_dir=str(data_dir)).train_texts
    assert len(sample_texts(train, 64)) == 64
    assert sum("scored" in line for line in logged) == 3
    logged.clear()
    assert grid.ensure_plans(opts, logged.append) == paths
    assert sum("re-using" in line for line in logged) == 3


def test_diverged_runs_are_final_unless_retried(tmp_path, capsys):
    res = tmp_path / "res"
    res.mkdir()
    errors = [{"key": "mr__value__r2__random__s0", "error": "training loss became non-finite by step 7; lower the "
               "learning rate", "error_type": "AdaRankError"},
              {"key": "mr__value__r2__uniform__s0", "error": "CUDA out of memory", "error_type": "OutOfMemoryError"}]
    (res / "errors.jsonl").write_text("\n".join(json.dumps(e) for e in errors) + "\nnot json\n")
    assert grid.diverged_keys(res / "errors.jsonl") == {"mr__value__r2__random__s0"}
    args = ("--datasets", "mr", "--target-sets", "value", "--ranks", "2", "--methods", "uniform,random", "--seeds", "0")
    lines = _dry(capsys, tmp_path, *args)
    assert "diverged  mr__value__r2__random__s0" in lines and "todo  mr__value__r2__uniform__s0" in lines
    assert lines[-1] == "dry run: 2 runs, 1 to run, 0 already done, 1 diverged before (not retried)"
    lines = _dry(capsys, tmp_path, *args, "--retry-diverged")
    assert lines[-1] == "dry run: 2 runs, 2 to run, 0 already done"


def test_the_sweep_is_scored_on_validation_by_default_and_lr_from_sweep_reads_that_sweep(tmp_path, capsys):
    res = tmp_path / "res"
    base = ["--model", str(tmp_path), "--results", str(res), "--datasets", "mr", "--target-sets", "value",
            "--ranks", "2", "--seeds", "0", "--dry-run"]
    sweep = grid.options_from_args(grid.build_parser().parse_args([*base, "--lr-sweep", "1e-3,3e-3"]))
    assert sweep.sweep_on == "validation" and sweep.out_dir == res / "lr-sweep-validation"
    jobs = grid.make_jobs(sweep, plan_grid(["mr"], ["value"], [2], ["uniform"], [0], [1e-3]),
                          {grid.plan_key(grid.RunSpec("mr", "value", 2, "uniform", 0)): tmp_path / "p.json"}, "abc")
    assert jobs[0].validation and jobs[0].extra["evaluated_on"] == "validation"
    on_test = grid.options_from_args(grid.build_parser().parse_args([*base, "--lr-sweep", "1e-3", "--sweep-on",
                                                                     "test"]))
    assert on_test.out_dir == res / "lr-sweep"
    assert not grid.make_jobs(on_test, plan_grid(["mr"], ["value"], [2], ["uniform"], [0], [1e-3]),
                              {grid.plan_key(grid.RunSpec("mr", "value", 2, "uniform", 0)): tmp_path / "p.json"}, "abc")[0].validation

    # only a test-split sweep exists: --lr-from-sweep (validation by default) says which sweep is missing
    _record(res / "lr-sweep" / "runs" / "mr__value__r2__uniform__lr0.003__s0.json", 3e-3, lr_sweep=True)
    use = grid.options_from_args(grid.build_parser().parse_args([*base, "--lr-from-sweep", "--lr-choice", "shared"]))
    with pytest.raises(grid.AdaRankError, match="lr-sweep-validation"):
        grid.make_jobs(use, plan_grid(["mr"], ["value"], [2], ["uniform"], [0]),
                       {grid.plan_key(grid.RunSpec("mr", "value", 2, "uniform", 0)): tmp_path / "p.json"}, "abc")
    _record(res / "lr-sweep-validation" / "runs" / "mr__value__r2__uniform__lr0.001__s0.json", 1e-3,
            lr_sweep=True)
    job = grid.make_jobs(use, plan_grid(["mr"], ["value"], [2], ["uniform"], [0]),
                         {grid.plan_key(grid.RunSpec("mr", "value", 2, "uniform", 0)): tmp_path / "p.json"}, "abc")[0]
    assert job.config["lr"] == 1e-3 and job.extra["lr_swept_on"] == "validation" and not job.validation


def test_per_method_rates_come_from_each_methods_own_sweep_on_a_seed_kept_out_of_evaluation(tmp_path):
    res = tmp_path / "res"
    runs = res / "lr-sweep-validation" / "runs"
    for method, scores in (("uniform", {1e-3: 0.80, 3e-3: 0.70}), ("adarank-exact", {1e-3: 0.70, 3e-3: 0.90})):
        for lr, acc in scores.items():
            _record(runs / f"mr__value__r2__{method}__lr{lr:g}__s100.json", lr, acc, lr_sweep=True, method=method,
                    seed=100)
    # a diverged rate is never chosen, however good its other seeds were
    _record(runs / "mr__value__r2__random__lr0.01__s100.json", 1e-2, 0.99, lr_sweep=True, method="random", seed=100)
    _record(runs / "mr__value__r2__random__lr0.001__s100.json", 1e-3, 0.60, lr_sweep=True, method="random", seed=100)
    (res / "lr-sweep-validation" / "errors.jsonl").write_text(json.dumps(
        {"key": "mr__value__r2__random__lr0.01__s101", "error": "training loss became non-finite by step 25"}) + "\n")
    base = ["--model", str(tmp_path), "--results", str(res), "--datasets", "mr", "--target-sets", "value",
            "--ranks", "2", "--dry-run", "--lr-from-sweep"]
    methods = ["uniform", "adarank-exact", "random"]
    plans = {grid.plan_key(grid.RunSpec("mr", "value", 2, m, 0)): tmp_path / "p.json" for m in methods}
    opts = grid.options_from_args(grid.build_parser().parse_args([*base, "--seeds", "0,1"]))
    jobs = grid.make_jobs(opts, plan_grid(["mr"], ["value"], [2], methods, [0]), plans, "abc")
    assert {j.spec.method: j.config["lr"] for j in jobs} == {"uniform": 1e-3, "adarank-exact": 3e-3, "random": 1e-3}
    shared = grid.options_from_args(grid.build_parser().parse_args([*base, "--seeds", "0,1", "--lr-choice", "shared"]))
    jobs = grid.make_jobs(shared, plan_grid(["mr"], ["value"], [2], methods, [0]), plans, "abc")
    assert {j.config["lr"] for j in jobs} == {1e-3}
    reuse = grid.options_from_args(grid.build_parser().parse_args([*base, "--seeds", "0,100"]))
    with pytest.raises(grid.AdaRankError, match="sweep seed"):
        grid.make_jobs(reuse, plan_grid(["mr"], ["value"], [2], methods, [0]), plans, "abc")


def _git_repo(folder: Path, files: dict[str, str]) -> str:
    """A git repository with ``files`` committed; its HEAD."""
    import subprocess

    folder.mkdir(parents=True, exist_ok=True)
    run = lambda *a: subprocess.run(["git", *a], cwd=folder, check=True, capture_output=True)  # noqa: E731
    run("init", "-q")
    for name, text in files.items():
        (folder / name).write_text(text)
        run("add", name)
    run("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "x")
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True).stdout.strip()


def test_git_commit_says_when_the_tree_is_not_the_commit(tmp_path, monkeypatch):
    monkeypatch.delenv("ADARANK_COMMIT", raising=False)
    head = _git_repo(tmp_path, {"__init__.py": "a"})
    assert grid.git_commit(tmp_path) == head
    (tmp_path / "__init__.py").write_text("b")
    assert grid.git_commit(tmp_path) == head + "-dirty"
    monkeypatch.setenv("ADARANK_COMMIT", "abc123")
    assert grid.git_commit(tmp_path) == "abc123"


def test_the_commit_is_adarank_s_own_never_the_working_directory_s(tmp_path, monkeypatch):
    """A grid started from inside another repository names the commit adarank runs from: with the cwd in an
    unrelated repository (and GIT_DIR pointing there), the stored commit is not that repository's HEAD. A copy
    of the package lying untracked inside that repository (a virtual environment in it) has no commit."""
    import shutil
    import subprocess

    import adarank
    from adarank.version import PACKAGE_DIR

    monkeypatch.delenv("ADARANK_COMMIT", raising=False)
    other = tmp_path / "other"
    other_head = _git_repo(other, {"README": "unrelated"})
    monkeypatch.chdir(other)
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    done = subprocess.run(["git", "-C", str(PACKAGE_DIR), "ls-files", "--error-unmatch", "__init__.py"],
                          capture_output=True, text=True, env={k: v for k, v in os.environ.items() if k != "GIT_DIR"})
    ours = subprocess.run(["git", "-C", str(PACKAGE_DIR), "rev-parse", "HEAD"], capture_output=True, text=True,
                          env={k: v for k, v in os.environ.items() if k != "GIT_DIR"}).stdout.strip()
    commit = grid.git_commit()
    assert commit is None or not commit.startswith(other_head)
    if done.returncode == 0:  # adarank runs from a checkout: its commit, clean or dirty
        assert commit is not None and commit.split("-")[0] == ours
    else:
        assert commit is None
    copy = other / "venv" / "adarank"
    shutil.copytree(Path(adarank.__file__).parent, copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert grid.git_commit(copy) is None


def test_only_a_run_short_of_accelerator_memory_is_queued_again():
    from adarank.compare.grid import Outcome, out_of_memory

    assert out_of_memory(Outcome("k", False, 1.0, error="CUDA out of memory. Tried to allocate 1.50 GiB",
                                 error_type="OutOfMemoryError"))
    assert out_of_memory(Outcome("k", False, 1.0, error="CUDA error: CUBLAS_STATUS_EXECUTION_FAILED when calling "
                                 "`cublasGemmEx( handle, ...)`", error_type="RuntimeError"))
    assert not out_of_memory(Outcome("k", True, 1.0))
    assert not out_of_memory(Outcome("k", False, 1.0, error="loss is nan at step 3", error_type="DivergedError"))
    assert not out_of_memory(Outcome("k", False, 1.0, error="shape mismatch", error_type="RuntimeError"))


def test_no_run_is_launched_that_would_not_finish_before_the_deadline():
    from adarank.compare.grid import launch_allowed

    assert launch_allowed(100.0, None, [1e9])
    assert launch_allowed(99.0, 100.0, [])  # nothing finished yet: no estimate, any time before the deadline
    assert not launch_allowed(100.0, 100.0, [])
    # runs take about 60 s (median, so one slow outlier does not stop the grid early)
    assert launch_allowed(30.0, 100.0, [55.0, 60.0, 65.0, 500.0, 58.0])
    assert not launch_allowed(45.0, 100.0, [55.0, 60.0, 65.0, 500.0, 58.0])


def test_an_accelerator_error_out_of_memory_is_queued_again_and_an_unknown_one_is_not():
    from adarank.compare.grid import Outcome, out_of_memory

    # what 15 CoNLL-2000 runs sharing one H200 raised (2026-12-01), not an OutOfMemoryError
    assert out_of_memory(Outcome("k", False, 1.0, error="CUDA error: out of memory\nSearch for "
                                 "`cudaErrorMemoryAllocation' in https://docs.nvidia.com/...", error_type="AcceleratorError"))
    assert not out_of_memory(Outcome("k", False, 1.0, error="CUDA error: unknown error\nSearch for `cudaErrorUnknown'",
                                     error_type="AcceleratorError"))


def test_runs_whose_method_lost_a_sweep_rate_wait_for_the_sweep_and_the_rest_run(tmp_path, capsys):
    res = tmp_path / "res"
    runs = res / "lr-sweep-validation" / "runs"
    for method in ("uniform", "adarank-exact"):
        _record(runs / f"mr__value__r2__{method}__lr0.001__s100.json", 1e-3, 0.8, lr_sweep=True, method=method, seed=100)
    # adarank-exact's run at 3e-3 ran out of memory and left no record: its best of one rate is no choice
    (res / "lr-sweep-validation" / "errors.jsonl").write_text(json.dumps(
        {"key": "mr__value__r2__adarank-exact__lr0.003__s100", "error_type": "AcceleratorError",
         "error": "CUDA error: out of memory"}) + "\n")
    args = ("--datasets", "mr", "--target-sets", "value", "--ranks", "2", "--methods", "uniform,adarank-exact",
            "--seeds", "0", "--lr-from-sweep")
    argv = ["--dry-run", "--model", str(tmp_path), "--results", str(res), *args]
    assert grid.main(argv) == 1
    lines = capsys.readouterr().out.splitlines()
    assert "held  mr__value__r2__adarank-exact__s0" in lines and "todo  mr__value__r2__uniform__s0" in lines
    assert any(line.startswith("warning: 1 run(s) not started") and "adarank-exact's sweep lost lr 0.003" in line
               for line in lines)
    assert grid.swept_learning_rates(res / "lr-sweep-validation") == {("mr", "value", 2, "uniform"): 1e-3}
    # the rate ran again and left its record: the sweep is complete and chooses, nothing is held
    _record(runs / "mr__value__r2__adarank-exact__lr0.003__s100.json", 3e-3, 0.9, lr_sweep=True,
            method="adarank-exact", seed=100)
    assert grid.main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "todo  mr__value__r2__adarank-exact__s0" in lines
    assert grid.swept_learning_rates(res / "lr-sweep-validation")[("mr", "value", 2, "adarank-exact")] == 3e-3


def test_sweep_runs_a_grid_never_finished_leave_its_sweep_incomplete_until_they_run(tmp_path, monkeypatch, capsys):
    """A sweep call stopped by its time limit (or killed with its machine) leaves runs with neither a record nor
    an error. The call logged them as asked for, so the sweep chooses no rate for their methods and the
    evaluation holds those methods back, instead of taking a best of fewer rates than asked."""
    from adarank.compare.records import unfinished_keys

    def slow_run(job):
        time.sleep(0.05)
        _record(Path(job.out_path), job.config["lr"], 0.8, lr_sweep=True, method=job.spec.method, seed=job.spec.seed)
        return grid.Outcome(job.spec.key, True, 0.05)

    monkeypatch.setattr(grid, "execute_run", slow_run)
    monkeypatch.setattr(grid, "_preflight", lambda opts: None)
    monkeypatch.setattr(grid, "ensure_plans", lambda opts, log: {(ts, "", None): tmp_path / f"{ts}.json" for ts in opts.target_sets})
    res = tmp_path / "res"
    sweep = res / "lr-sweep-validation"
    common = ["--model", str(tmp_path), "--data-dir", str(tmp_path), "--results", str(res), "--workers", "0",
              "--datasets", "mr", "--target-sets", "value", "--ranks", "2", "--methods", "uniform,adarank-exact"]
    args = grid.build_parser().parse_args(common + ["--seeds", "100", "--lr-sweep", "1e-3,3e-3,1e-2,3e-2",
                                                    "--timeout-minutes", "0.002"])
    summary = grid.run_grid(grid.options_from_args(args), log=lambda _: None)
    assert 0 < summary.not_started < 8 and not (sweep / "errors.jsonl").exists()
    recorded = {p.stem for p in (sweep / "runs").glob("*.json")}
    missing = unfinished_keys(sweep)
    assert missing and not missing & recorded and len(missing) + len(recorded) == 8
    short = {k.split("__")[3] for k in missing}  # the methods whose sweep lacks a rate

    argv = ["--dry-run", *common, "--seeds", "0", "--lr-from-sweep"]
    assert grid.main(argv) == 1
    lines = capsys.readouterr().out.splitlines()
    for method in ("uniform", "adarank-exact"):
        state = "held" if method in short else "todo"
        assert f"{state}  mr__value__r2__{method}__s0" in lines
    # the missing rates run (a later call): the sweep is complete, every method chooses and nothing is held
    for key in missing:
        parts = key.split("__")
        _record(sweep / "runs" / f"{key}.json", float(parts[4][2:]), 0.7, lr_sweep=True, method=parts[3], seed=100)
    assert not unfinished_keys(sweep)
    assert grid.main(argv) == 0
    assert set(grid.swept_learning_rates(sweep)) == {("mr", "value", 2, m) for m in ("uniform", "adarank-exact")}
