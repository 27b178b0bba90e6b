"""The benchmark report on hand-made run records with known accuracies."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from adarank.compare import report
from adarank.compare.report import (build_report, find_collapses, holm_survivors, paired_stats, parameter_gaps, pool,
                                    setting_rows, summarize, win_tie_loss)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# (dataset, target set, rank) -> method -> accuracies of seeds 0.. (fractions, as run_one writes them)
SETTINGS = {
    ("trec-coarse", "value", 8): {
        "uniform": [0.800, 0.820, 0.810, 0.790, 0.800],
        "adarank-exact": [0.820, 0.830, 0.810, 0.810, 0.815],  # seed 2: tie (0.0 pp)
        "random": [0.780, 0.800, 0.8105, 0.780, 0.790],  # seed 2: tie (+0.05 pp)
        "adalora": [0.800, 0.825, 0.805, 0.790],  # only 4 seeds: seed 4 diverged (write_runs logs it)
    },
    ("mr", "attention", 2): {
        "uniform": [0.700, 0.710, 0.705],
        "adarank-exact": [0.690, 0.700, 0.690],
        "random": [0.720, 0.700, 0.701],
    },
}


def _record(dataset: str, target_set: str, rank: int, method: str, seed: int, acc: float) -> dict:
    rec = {"dataset": dataset, "target_set": target_set, "rank": rank, "method": method, "seed": seed,
           "test_accuracy": acc, "test_macro_f1": acc - 0.05, "lora_params": 1000 + rank,
           "lora_params_train": 1000 + rank, "device": "NVIDIA H100 80GB HBM3", "grid_commit": "abc123",
           "model": "/x/all-MiniLM-L6-v2", "torch": "2.x", "transformers": "5.x", "peft": "0.21.2",
           "hparams": {"lr": 5e-4, "epochs": 2.0}}
    if method == "adalora":
        rec["lora_params_train"], rec["lora_params"] = 1200, 800
    return rec


def write_runs(results: Path, settings=SETTINGS, diverge_missing: bool = True) -> None:
    """The records of ``settings``; a method with fewer seeds than its setting's longest list diverged on the
    rest (logged in errors.jsonl, as the grid does), unless ``diverge_missing`` is False (a grid cut short)."""
    from adarank.compare.train import DIVERGED_MESSAGE

    runs = results / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    errors = []
    for (dataset, ts, rank), methods in settings.items():
        most = max(len(accs) for accs in methods.values())
        for method, accs in methods.items():
            for seed, acc in enumerate(accs):
                key = f"{dataset}__{ts}__r{rank}__{method}__s{seed}"
                (runs / f"{key}.json").write_text(json.dumps(_record(dataset, ts, rank, method, seed, acc)))
            errors += [json.dumps({"key": f"{dataset}__{ts}__r{rank}__{method}__s{seed}", "error": DIVERGED_MESSAGE})
                       for seed in range(len(accs), most)]
    if errors and diverge_missing:
        (results / "errors.jsonl").write_text("\n".join(errors) + "\n")


def expected_diffs(setting, method) -> np.ndarray:
    base = np.asarray(SETTINGS[setting]["uniform"]) * 100
    mine = np.asarray(SETTINGS[setting][method]) * 100
    n = min(len(base), len(mine))
    return mine[:n] - base[:n]


def scipy_ci(diffs: np.ndarray) -> tuple[float, float]:
    return stats.t.interval(0.95, len(diffs) - 1, loc=diffs.mean(), scale=stats.sem(diffs))


def test_paired_stats_match_scipy_and_edge_cases():
    d = np.array([0.4, -0.2, 1.1, 0.3, 0.0])
    st = paired_stats(d)
    lo, hi = scipy_ci(d)
    assert st.n == 5 and st.mean == pytest.approx(d.mean()) and st.sd == pytest.approx(d.std(ddof=1))
    assert (st.lo, st.hi) == (pytest.approx(lo), pytest.approx(hi))
    one = paired_stats([0.7])
    assert one.n == 1 and one.mean == 0.7 and math.isnan(one.lo) and one.side is None
    assert paired_stats([]).n == 0
    assert paired_stats([0.5, 0.5, 0.5]).side == 1  # no spread: the CI is the point


def test_win_tie_loss_threshold_is_a_tenth_of_a_point():
    assert win_tie_loss([0.0, 0.05, -0.099, 0.1, 0.2, -0.1, -3.0]) == (2, 3, 2)
    # 81.1 - 81.0 is 0.0999999... in floating point: still a difference of 0.1 points, not a tie
    assert win_tie_loss([0.811 * 100 - 0.810 * 100]) == (1, 0, 0)


def test_summary_pairs_by_seed_with_hand_computed_ci():
    write_dir_free = [_record(d, ts, r, m, s, a) for (d, ts, r), ms in SETTINGS.items()
                      for m, accs in ms.items() for s, a in enumerate(accs)]
    settings = summarize(write_dir_free)
    assert [(s.dataset, s.target_set, s.rank) for s in settings] == [("mr", "attention", 2), ("trec-coarse", "value", 8)]
    trec = settings[1]
    assert list(trec.methods) == ["uniform", "adarank-exact", "random", "adalora"]  # METHODS order
    for method in ("adarank-exact", "random", "adalora"):
        m = trec.methods[method]
        d = expected_diffs(("trec-coarse", "value", 8), method)
        lo, hi = scipy_ci(d)
        assert m.diffs == pytest.approx(d.tolist())
        assert m.paired.mean == pytest.approx(d.mean())
        assert (m.paired.lo, m.paired.hi) == (pytest.approx(lo), pytest.approx(hi))
    assert trec.methods["adalora"].paired.n == 4
    # adarank-exact: +2, +1, 0, +2, +1.5 pp; random: -2, -2, +0.05, -1, -1 pp; adalora: 0, +0.5, -0.5, 0
    assert trec.methods["adarank-exact"].wtl == (4, 1, 0)
    assert trec.methods["random"].wtl == (0, 1, 4)
    assert trec.methods["adalora"].wtl == (1, 2, 1)
    assert trec.methods["adarank-exact"].paired.side == 1
    assert trec.methods["adalora"].paired.side == 0


def test_pooled_table_pools_every_setting_seed_pair():
    recs = [_record(d, ts, r, m, s, a) for (d, ts, r), ms in SETTINGS.items()
            for m, accs in ms.items() for s, a in enumerate(accs)]
    pooled = {p.method: p for p in pool(summarize(recs))}
    assert list(pooled) == ["adarank-exact", "random", "adalora"]
    for method in ("adarank-exact", "random"):
        d = np.concatenate([expected_diffs(("trec-coarse", "value", 8), method),
                            expected_diffs(("mr", "attention", 2), method)])
        lo, hi = scipy_ci(d)
        p = pooled[method]
        assert p.stats.n == 8 and p.settings == 2
        assert p.stats.mean == pytest.approx(d.mean())
        assert (p.stats.lo, p.stats.hi) == (pytest.approx(lo), pytest.approx(hi))
        assert p.wtl == win_tie_loss(d)
        # setting level: one observation per setting (its mean difference), t over the two settings
        means = [expected_diffs(("trec-coarse", "value", 8), method).mean(), expected_diffs(("mr", "attention", 2), method).mean()]
        lo, hi = scipy_ci(np.array(means))
        assert p.setting_level.n == 2 and p.setting_level.mean == pytest.approx(np.mean(means))
        assert (p.setting_level.lo, p.setting_level.hi) == (pytest.approx(lo), pytest.approx(hi))
    # per-setting CI sides: adarank-exact is above 0 on trec (+1.3 ± ...) and below 0 on mr (-1.0 ± 0.7)
    mr = expected_diffs(("mr", "attention", 2), "adarank-exact")
    assert scipy_ci(mr)[1] < 0
    ex = pooled["adarank-exact"]
    assert (ex.above, ex.contains, ex.below, ex.no_ci) == (1, 0, 1, 0)
    assert (pooled["adalora"].above, pooled["adalora"].contains, pooled["adalora"].below) == (0, 1, 0)


def test_markdown_rows_plots_and_provenance(tmp_path):
    results = tmp_path / "grid"
    write_runs(results)
    (results / "runs" / "broken.json").write_text("{not json")
    plans = results / "plans"
    plans.mkdir()
    (plans / "value.png").write_bytes(PNG_MAGIC + b"fake")
    out = tmp_path / "BENCHMARKS-section.md"
    prov = {"card": "1x H100", "command": "python -m adarank.compare.grid --seeds 0,1,2,3,4", "commit": "deadbeef",
            "date": "2025-01-02", "seeds": [0, 1, 2, 3, 4]}
    text = build_report(results, out=out, plots=results / "plots", provenance=prov)
    assert out.read_text(encoding="utf-8") == text
    lines = text.splitlines()
    head = "\n".join(lines[:8])
    for value in ("1x H100", "`python -m adarank.compare.grid --seeds 0,1,2,3,4`", "deadbeef", "2025-01-02",
                  "0, 1, 2, 3, 4"):
        assert value in head

    d = expected_diffs(("trec-coarse", "value", 8), "adarank-exact")
    lo, hi = scipy_ci(d)
    acc = np.asarray(SETTINGS[("trec-coarse", "value", 8)]["adarank-exact"]) * 100
    row = (f"| adarank-exact | 5 | {acc.mean():.2f} ± {acc.std(ddof=1):.2f} | "
           f"{(acc - 5).mean():.2f} ± {(acc - 5).std(ddof=1):.2f} | 1,008 | {d.mean():+.2f} | "
           f"[{lo:+.2f}, {hi:+.2f}] | 4/1/0 |")
    assert row in lines
    assert any(line.startswith("| uniform | 5 | 80.40 ± 1.14 |") and "(reference)" in line for line in lines)
    adalora = next(line for line in lines if line.startswith("| adalora | 4 |"))
    assert "1,200→800" in adalora and "(n=4)" not in adalora
    assert "### trec-coarse · value · r̄=8" in lines and "### mr · attention · r̄=2" in lines
    assert "### Pooled over all settings" in lines
    pooled_row = next(line for line in lines if line.startswith("| adarank-exact | 2 | 8 |"))
    assert pooled_row.endswith("| 1 / 0 / 1 | 1 / 1 |")  # both CIs off zero, both survive Holm over 2
    assert "broken.json: unreadable" in text

    plots = results / "plots"
    for name in ("acc__trec-coarse__value__r8.png", "acc__mr__attention__r2.png", "paired_diff.png",
                 "plan__value.png"):
        data = (plots / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 8, name
        assert f"plots/{name}" in text
    assert "Learning-rate sweep" not in text


def test_lr_sweep_table_and_choice(tmp_path):
    results = tmp_path / "grid"
    write_runs(results, {("trec-coarse", "value", 8): {"uniform": [0.8, 0.8]}})
    sweep = results / "lr-sweep" / "runs"
    sweep.mkdir(parents=True)
    accs = {1e-4: [0.70, 0.72], 3e-4: [0.80, 0.78], 1e-3: [0.79, 0.80]}
    for lr, values in accs.items():
        for seed, acc in enumerate(values):
            rec = _record("trec-coarse", "value", 8, "uniform", seed, acc)
            rec["lr"] = lr
            (sweep / f"trec-coarse__value__r8__uniform__lr{lr:g}__s{seed}.json").write_text(json.dumps(rec))
    rows = report.summarize_sweep(report.load_records(sweep).runs)
    assert [(r.lr, r.chosen) for r in rows] == [(1e-4, False), (3e-4, False), (1e-3, True)]
    text = build_report(results, out=tmp_path / "s.md")
    assert "### Learning-rate sweep (uniform; scored on the test split)" in text
    # 1e-3 is the largest rate tried: the best may lie beyond, and the table says so
    assert "| trec-coarse | value | 8 | uniform | 0.001 | 2 | 79.50 ± 0.71 | 0 | 0 | ✓ (edge) |" in text
    assert "1 of 1 choices sit on an edge" in text and "trec-coarse · value · r̄=8 · uniform → 0.003" in text
    assert "| trec-coarse | value | 8 | uniform | 0.0003 | 2 | 79.00 ± 1.41 | 0 | 0 |  |" in text
    assert "validation split" not in text

    # a validation-scored sweep beside it gets its own table, first
    val = results / "lr-sweep-validation" / "runs"
    val.mkdir(parents=True)
    rec = _record("trec-coarse", "value", 8, "uniform", 0, 0.75)
    rec["lr"] = 3e-4
    (val / "trec-coarse__value__r8__uniform__lr0.0003__s0.json").write_text(json.dumps(rec))
    text = build_report(results, out=tmp_path / "s.md")
    first = text.index("scored on the validation split")
    assert first < text.index("scored on the test split")
    assert "| trec-coarse | value | 8 | uniform | 0.0003 | 1 | 75.00 | 0 | 0 | ✓ |" in text[first:]


def test_cli_writes_the_section(tmp_path, capsys):
    results = tmp_path / "grid"
    write_runs(results)
    out = tmp_path / "section.md"
    assert report.main(["--results", str(results), "--out", str(out), "--plots", str(tmp_path / "p"),
                        "--card", "CPU", "--command", "grid cmd"]) == 0
    text = out.read_text(encoding="utf-8")
    assert "- **Hardware**: CPU" in text and "- **Commit**: abc123" in text and "- **Seeds**: 0, 1, 2, 3, 4" in text
    assert (tmp_path / "p" / "paired_diff.png").stat().st_size > 0
    assert report.main(["--results", str(tmp_path / "empty")]) == 2
    assert "no run records" in capsys.readouterr().err


def test_another_baseline_and_a_method_subset(tmp_path):
    res = tmp_path / "res"
    write_runs(res)
    text = build_report(res, out=tmp_path / "s.md", plots=tmp_path / "p", baseline="adarank-exact",
                        methods=["random"])
    assert "Δacc vs adarank-exact (pp)" in text and "adalora" not in text
    assert any(line.startswith("| adarank-exact | 5 |") and "(reference)" in line for line in text.splitlines())
    assert any(line.startswith("| uniform |") for line in text.splitlines()) is False
    # random − adarank-exact on trec-coarse/value/r8, paired by seed
    random_row = next(line for line in text.splitlines() if line.startswith("| random | 5 |"))
    diffs = (np.array(SETTINGS[("trec-coarse", "value", 8)]["random"])
             - np.array(SETTINGS[("trec-coarse", "value", 8)]["adarank-exact"])) * 100
    assert f"{diffs.mean():+.2f}" in random_row
    with pytest.raises(report.AdaRankError, match="baseline method 'eva'"):
        build_report(res, baseline="eva")


def test_collapsed_runs_are_listed_and_a_pooled_table_without_them_is_added(tmp_path):
    res = tmp_path / "res"
    settings = {("subj", "attention", 8): {"uniform": [0.94, 0.50, 0.95], "adarank-exact": [0.95, 0.95, 0.96],
                                           "random": [0.93, 0.94, 0.50]}}
    write_runs(res, settings)
    summary = summarize(report.load_records(res / "runs").runs)
    found = report.find_collapses(summary)
    assert [(c.method, c.seed) for c in found] == [("uniform", 1), ("random", 2)]
    assert found[0].median == pytest.approx(94.0)
    kept = summarize(report.drop_collapses(report.load_records(res / "runs").runs, found))
    assert kept[0].methods["adarank-exact"].paired_seeds == [0, 2]  # uniform seed 1 is gone
    assert kept[0].methods["random"].paired_seeds == [0]
    text = build_report(res, out=tmp_path / "s.md", plots=tmp_path / "p")
    assert "### Collapsed runs, and the pooled table without them" in text
    assert "| subj · attention · r̄=8 | uniform | 1 | 50.00 | 94.00 |" in text
    clean = tmp_path / "clean"
    write_runs(clean)
    assert "Collapsed runs" not in build_report(clean, out=tmp_path / "c.md", plots=tmp_path / "p2")


def test_paired_p_is_the_t_test_of_the_ci_and_holm_adjusts_step_down():
    d = np.array([0.4, -0.2, 1.1, 0.3, 0.9])
    assert report.paired_p(paired_stats(d)) == pytest.approx(stats.ttest_1samp(d, 0.0).pvalue)
    assert math.isnan(report.paired_p(paired_stats([0.3])))
    # p below 0.05 exactly when the 95% CI excludes zero
    for diffs in ([0.5, 0.7, 0.6], [0.5, -0.7, 0.6], [-1.0, -1.2, -0.1, -0.4]):
        st = paired_stats(diffs)
        assert (report.paired_p(st) < 0.05) == (st.side in (1, -1))

    raw = [0.01, 0.04, 0.03, 0.005, math.nan]
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 -> 0.02, 0.03, 0.06, 0.04 -> running max 0.06
    adjusted = report.holm(raw)
    assert adjusted[:4] == [pytest.approx(v) for v in (0.03, 0.06, 0.06, 0.02)] and math.isnan(adjusted[4])
    rng = np.random.default_rng(0)
    p = list(rng.uniform(0, 0.2, size=12))
    adj = report.holm(p)
    assert all(a >= r for a, r in zip(adj, p)) and all(a <= min(1.0, 12 * r) + 1e-12 for a, r in zip(adj, p))
    order = np.argsort(p)
    assert all(adj[i] <= adj[j] + 1e-12 for i, j in zip(order, order[1:]))  # the order of the raw p is kept


def test_holm_over_the_settings_drops_a_marginal_ci_and_keeps_a_clear_one(tmp_path):
    base = [0.800, 0.810, 0.805, 0.795, 0.800]
    settings = {(f"d{i}", "value", 2): {"uniform": base, "adarank-exact": [b + e for b, e in zip(base, noise)]}
                for i, noise in enumerate([(0.001, -0.002, 0.002, 0.0, -0.001)] * 8)}
    settings[("clear", "value", 2)] = {"uniform": base, "adarank-exact": [b - 0.05 for b in base]}  # -5 pp each
    marginal = [-0.004, -0.001, -0.006, -0.002, -0.003]  # a CI just below zero, p ~ 0.01
    settings[("marginal", "value", 2)] = {"uniform": base, "adarank-exact": [b + e for b, e in zip(base, marginal)]}
    write_runs(tmp_path / "res", settings)
    summary = summarize(report.load_records(tmp_path / "res" / "runs").runs)
    rows = {h.setting: h for h in report.holm_survivors(summary)}
    assert set(rows) == {"clear · value · r̄=2", "marginal · value · r̄=2"}
    low = rows["marginal · value · r̄=2"]
    assert low.stats.side == -1 and 0.001 < low.p < 0.05 and low.p_holm == pytest.approx(min(1.0, 9 * low.p))
    assert not low.survives and rows["clear · value · r̄=2"].survives
    pooled = {p.method: p for p in pool(summary)}["adarank-exact"]
    assert (pooled.below, pooled.holm_below, pooled.holm_above) == (2, 1, 0)
    text = build_report(tmp_path / "res", out=tmp_path / "s.md", plots=tmp_path / "p")
    row = next(line for line in text.splitlines() if line.startswith("| adarank-exact | 10 | 50 |"))
    assert row.endswith("| 0 / 8 / 2 | 0 / 1 |") and "| after Holm: >0 / <0 |" in text
    assert any(line.startswith("| adarank-exact | marginal · value · r̄=2 |") and line.endswith("| no |")
               for line in text.splitlines())


def test_the_report_dates_the_records_not_the_day_it_is_printed(tmp_path):
    res = tmp_path / "res"
    write_runs(res)
    files = sorted((res / "runs").glob("*.json"))
    stamps = ["2026-11-27T23:30:00-02:00", "2026-11-28T04:00:00+00:00", "2026-11-26T12:00:00+00:00"]
    for i, path in enumerate(files):
        rec = json.loads(path.read_text())
        if i < len(files) - 1:  # the last record has no timestamp
            rec["timestamp"] = stamps[i % 2] if i else stamps[2]
        path.write_text(json.dumps(rec))
    runs = report.load_records(res / "runs").runs
    # 23:30 at -02:00 is 01:30 UTC the next day; the first record ran on the 26th
    assert report.record_dates(runs) == "2026-11-26 to 2026-11-28 (1 record(s) without a timestamp)"
    assert report.record_dates(runs[:2]) == "2026-11-26 to 2026-11-28"
    assert report.record_dates([runs[1], runs[3]]) == "2026-11-28"
    assert report.record_dates([{"timestamp": "yesterday"}]) is None
    text = build_report(res, out=tmp_path / "s.md", plots=tmp_path / "p")
    assert "- **Date**: 2026-11-26 to 2026-11-28 (1 record(s) without a timestamp)" in text
    assert build_report(res, out=tmp_path / "s.md", plots=tmp_path / "p",
                        provenance={"date": "2030-01-01"}).count("- **Date**: 2030-01-01") == 1


def test_paired_plot_draws_an_interval_wholly_beyond_the_axis(tmp_path):
    settings = {("subj", "attention", 8): {"uniform": [0.50, 0.52, 0.51], "random": [0.60, 0.61, 0.62]},
                ("mr", "value", 2): {"uniform": [0.80, 0.81, 0.80], "random": [0.70, 0.70, 0.71]}}
    write_runs(tmp_path / "res", settings)
    summary = summarize(report.load_records(tmp_path / "res" / "runs").runs)
    assert summary[1].methods["random"].paired.lo > report.PAIRED_AXIS_CLIP  # +10 pp, CI above the edge
    assert summary[0].methods["random"].paired.hi < -report.PAIRED_AXIS_CLIP
    png = report.plot_paired(summary, tmp_path / "paired.png")
    assert png.read_bytes().startswith(PNG_MAGIC)


def test_a_baseline_seed_that_chose_the_learning_rate_shows_its_margin(tmp_path):
    # uniform seed 0 sits +1 pp above seeds 1 and 2 in each setting (plus noise that cancels)
    settings = {}
    for i, (base, noise) in enumerate([(0.80, 0.002), (0.90, -0.002), (0.70, 0.0)]):
        settings[(f"d{i}", "value", 2)] = {"uniform": [base + 0.01, base + noise, base - noise],
                                           "random": [base, base, base]}
    write_runs(tmp_path / "res", settings)
    summary = summarize(report.load_records(tmp_path / "res" / "runs").runs)
    offsets = {o.seed: o.stats for o in report.seed_offsets(summary)}
    assert offsets[0].n == 3 and offsets[0].mean == pytest.approx(1.0) and offsets[0].side == 1
    # seed 1: (base + noise) − mean(base + 0.01, base − noise) in pp, i.e. 1.5·noise·100 − 0.5
    expected = np.mean([150 * noise - 0.5 for noise in (0.002, -0.002, 0.0)])
    assert offsets[1].mean == pytest.approx(expected)
    assert sum(o.mean for o in offsets.values()) == pytest.approx(0.0)  # offsets of one setting sum to 0
    text = build_report(tmp_path / "res", out=tmp_path / "s.md", plots=tmp_path / "p")
    assert "### Is any seed of uniform special?" in text and "| 0 | 3 | +1.00 | [+1.00, +1.00] |" in text


def test_parameter_parity_flags_a_method_off_by_more_than_one_percent_and_reports_floor():
    from adarank.compare.report import parameter_gaps, parity_lines

    def rec(method, seed, params, acc=0.8):
        return {"dataset": "mr", "target_set": "value", "rank": 2, "method": method, "seed": seed,
                "test_score": acc, "lora_params": params}

    runs = [rec("uniform", s, 1000) for s in range(3)] + [rec("adarank-exact", s, 1005) for s in range(3)]
    runs += [rec("eva", s, 1100) for s in range(3)] + [rec("adarank-floor", s, 940) for s in range(3)]
    settings = summarize(runs)
    gaps = {g.method: round(g.relative, 3) for g in parameter_gaps(settings)}
    assert gaps == {"eva": 0.1, "adarank-floor": -0.06}  # exact's +0.5 % is within tolerance
    text = "\n".join(parity_lines(settings))
    assert "NOT at equal parameters" in text and "under-spend (documented)" in text


def test_references_are_shown_per_setting_but_kept_out_of_every_comparison():
    recs = [_record(d, ts, r, m, s, a) for (d, ts, r), ms in SETTINGS.items()
            for m, accs in ms.items() for s, a in enumerate(accs)]
    before = {p.method: p.stats.mean for p in pool(summarize(recs))}
    for d, ts, r in SETTINGS:  # the untrained base model at 0 %, no LoRA: a collapse and a parity gap if it counted
        base = _record(d, ts, r, "base-model", 0, 0.0)
        base["lora_params"] = base["lora_params_train"] = 0
        recs.append(base)
    settings = summarize(recs)
    assert {p.method: p.stats.mean for p in pool(settings)} == before
    assert not [c for c in find_collapses(settings) if c.method == "base-model"]
    assert not [g for g in parameter_gaps(settings) if g.method == "base-model"]
    assert not [h for h in holm_survivors(settings) if h.method == "base-model"]
    rows = setting_rows(settings[0])
    assert [r[0] for r in rows if r[0].startswith("base-model")] == ["base-model (reference)"]


def test_full_fine_tuning_shows_its_trained_weights_not_a_pruning_to_zero():
    setting = next(iter(SETTINGS))
    recs = [_record(*setting, m, s, a) for m, accs in SETTINGS[setting].items() for s, a in enumerate(accs)]
    full = _record(*setting, "full-ft", 0, 0.9)
    full["lora_params"], full["lora_params_train"] = 0, 268_098_176
    rows = {r[0]: r for r in setting_rows(summarize([*recs, full])[0])}
    cells = rows["full-ft (reference)"]
    assert "268,098,176 (all weights)" in cells and not any("→0" in c for c in cells)
    assert any("1,200→800" in c for c in rows["adalora"])  # a pruning method keeps its trained -> left cell


def test_the_report_says_which_loss_path_trained_the_runs_and_how_well_it_was_checked():
    from adarank.compare.report import _loss_path_lines

    old = {"steps": 100}  # before loss paths were recorded: the model's own loss
    cheap = {"steps": 100, "loss_logits": "completion-only",
             "loss_check": {"rows": 2, "full": 2.0, "completion-only": 2.001}}
    full = {"steps": 100, "loss_logits": "full", "loss_check": {"rows": 2, "full": 2.0, "completion-only": 2.0}}
    untrained = {"steps": 0, "loss_logits": None}
    assert _loss_path_lines([old, untrained]) == []
    (line,) = _loss_path_lines([old, cheap, cheap, full, untrained])
    assert "2 run(s) completion-only" in line and "1 run(s) full" in line and "1 run(s) full (not recorded)" in line
    assert "recorded by 3 run(s), largest relative difference 5.0e-04" in line


def test_a_method_whose_runs_differ_in_size_shows_their_range():
    setting = next(iter(SETTINGS))
    recs = [_record(*setting, m, s, a) for m, accs in SETTINGS[setting].items() for s, a in enumerate(accs)]
    for i, rec in enumerate(r for r in recs if r["method"] == "random"):  # ranks drawn from the data, like EVA's
        rec["lora_params"] = rec["lora_params_train"] = 1000 + 10 * i
    rows = {r[0]: r for r in setting_rows(summarize(recs)[0])}
    sizes = [1000 + 10 * i for i in range(len(SETTINGS[setting]["random"]))]
    assert f"{sum(sizes) / len(sizes):,.0f} ({min(sizes):,}–{max(sizes):,})" in rows["random"]
    assert not any("–" in c for c in rows["uniform"][4:5])  # one size for every run: no range


def test_each_setting_names_its_tasks_metric_and_mixed_metrics_are_a_problem(tmp_path):
    results = tmp_path / "grid"
    write_runs(results)
    for file in (results / "runs").glob("trec-coarse__*.json"):  # one setting scored by chunk F1
        rec = json.loads(file.read_text())
        file.write_text(json.dumps({**rec, "metric": "bracket_chunk_f1"}))
    lines = build_report(results, plots=results / "plots").splitlines()
    chunked = lines[lines.index("### trec-coarse · value · r̄=8") + 2]
    plain = lines[lines.index("### mr · attention · r̄=2") + 2]
    assert "| chunk F1 % |" in chunked and "| Δ chunk F1 vs uniform (pp) |" in chunked and "accuracy" not in chunked
    assert "| accuracy % |" in plain and "| Δacc vs uniform (pp) |" in plain

    one = results / "runs" / "trec-coarse__value__r8__random__s0.json"
    one.write_text(json.dumps({**json.loads(one.read_text()), "metric": "exact_match"}))
    problems: list[str] = []
    settings = summarize(report.load_records(results / "runs").runs, problems)
    assert any("different metrics (bracket_chunk_f1, exact_match)" in p for p in problems)
    assert next(s for s in settings if s.dataset == "trec-coarse").score_name == "score (mixed metrics)"


def test_an_incomplete_setting_is_shown_but_left_out_of_every_pooled_reading(tmp_path):
    results = tmp_path / "grid"
    settings = {key: dict(methods) for key, methods in SETTINGS.items()}
    settings[("mr", "attention", 2)]["random"] = [0.720, 0.700]  # a grid cut short: random's seed 2 never ran
    write_runs(results, settings, diverge_missing=False)
    (results / "errors.jsonl").write_text(json.dumps({"key": "trec-coarse__value__r8__adalora__s4",
                                                      "error": "training loss became non-finite"}) + "\n")
    text = build_report(results, out=tmp_path / "r.md")
    lines = text.splitlines()
    assert "### mr · attention · r̄=2" in lines  # its table is there
    assert any(line.startswith("**Incomplete setting** (missing: random seed 2)") for line in lines)
    assert "Left out as incomplete: mr · attention · r̄=2." in lines
    pooled = next(line for line in lines if line.startswith("| adarank-exact | 1 | 5 |"))  # 1 setting, 5 pairs
    d = expected_diffs(("trec-coarse", "value", 8), "adarank-exact")
    assert f"| {d.mean():+.2f} |" in pooled


def test_a_sweep_that_lost_a_run_chooses_no_rate_and_the_report_says_so(tmp_path):
    results = tmp_path / "grid"
    write_runs(results)
    sweep = results / "lr-sweep-validation"
    for lr, acc in ((1e-3, 0.80), (3e-3, 0.82)):
        rec = _record("trec-coarse", "value", 8, "uniform", 100, acc)
        rec["lr"] = lr
        (sweep / "runs").mkdir(parents=True, exist_ok=True)
        (sweep / "runs" / f"trec-coarse__value__r8__uniform__lr{lr:g}__s100.json").write_text(json.dumps(rec))
    rec = _record("trec-coarse", "value", 8, "adarank-exact", 100, 0.9)
    rec["lr"] = 1e-3
    (sweep / "runs" / "trec-coarse__value__r8__adarank-exact__lr0.001__s100.json").write_text(json.dumps(rec))
    lost = {"key": "trec-coarse__value__r8__adarank-exact__lr0.003__s100", "error_type": "AcceleratorError",
            "error": "CUDA error: out of memory"}
    retried = {"key": "trec-coarse__value__r8__uniform__lr0.003__s100", "error_type": "OutOfMemoryError",
               "error": "CUDA out of memory"}  # ran again later and left its record: not lost
    (sweep / "errors.jsonl").write_text(json.dumps(lost) + "\n" + json.dumps(retried) + "\n")
    text = build_report(results, out=tmp_path / "r.md")
    assert "| trec-coarse | value | 8 | adarank-exact | 0.001 | 1 | 90.00 | 0 | 0 |  |" in text  # not chosen
    assert "| trec-coarse | value | 8 | adarank-exact | 0.003 | 0 | – | 0 | 1 |  |" in text
    assert "| n | score % | diverged | no record | chosen |" in text  # a run with no record is not called failed
    assert "| trec-coarse | value | 8 | uniform | 0.003 | 1 | 82.00 | 0 | 0 | ✓ (edge) |" in text
    assert "**1 sweep(s) are incomplete**" in text and "trec-coarse · value · r̄=8 · adarank-exact (0.003 missing)" in text


def test_a_lost_sweep_run_of_a_users_file_blocks_that_files_choice():
    """Run keys carry the dataset's slug, records its path: the two must meet."""
    from adarank.compare.data import dataset_slug

    path = "./my data/train.csv"
    recs = []
    for lr, acc in ((1e-3, 0.8), (3e-3, 0.7)):
        rec = _record(path, "value", 8, "adarank-exact", 100, acc)
        rec["lr"] = lr
        recs.append(rec)
    lost = f"{dataset_slug(path)}__value__r8__adarank-exact__lr0.01__s100"
    rows = report.summarize_sweep(recs, unfinished=[lost])
    assert {r.dataset for r in rows} == {path}
    assert not any(r.chosen for r in rows) and [r.failed for r in rows] == [0, 0, 1]
    assert any(r.chosen for r in report.summarize_sweep(recs))


def test_references_are_listed_after_every_allocation_method():
    """The base model and full fine-tuning are bounds: a setting's table lists them below all allocations, also
    below methods that sort after them by name (eva-ranks after base-model)."""
    ordered = sorted(["full-ft", "eva-ranks", "base-model", "uniform", "adarank-fisher"], key=report.method_sort_key)
    assert ordered == ["uniform", "adarank-fisher", "eva-ranks", "base-model", "full-ft"]


def _overview(text: str) -> list[list[str]]:
    lines = text.splitlines()
    start = lines.index("### Every setting at a glance")
    table = []
    for line in lines[start + 4:]:
        if not line.startswith("|"):
            break
        table.append([c.strip() for c in line.strip("|").split("|")])
    return table


def test_the_overview_holds_each_settings_paired_delta_and_bolds_only_holm_survivors(tmp_path):
    base = [0.800, 0.810, 0.805, 0.795, 0.800]
    settings = {("clear", "value", 2): {"uniform": base, "adarank-exact": [b - 0.05 for b in base],
                                        "random": [b + e for b, e in zip(base, (0.01, -0.01, 0.0, 0.005, 0.0))]},
                ("flat", "value", 2): {"uniform": base, "adarank-exact": [b + e for b, e in
                                                                         zip(base, (0.001, -0.002, 0.002, 0.0, 0.0))]}}
    results = tmp_path / "res"
    write_runs(results, settings)
    table = _overview(build_report(results, out=tmp_path / "r.md", plots=tmp_path / "p"))
    assert table[0] == ["method", "clear · r̄=2", "flat · r̄=2"]
    assert table[2] == ["uniform: accuracy %", "80.20 ± 0.57", "80.20 ± 0.57"]
    rows = {r[0]: r[1:] for r in table[3:]}
    summary = {(s.dataset, m.method): m.paired for s in summarize(report.load_records(results / "runs").runs)
               for m in s.methods.values() if m.paired is not None}
    flat = summary[("flat", "adarank-exact")]
    assert rows["adarank-exact"] == ["**-5.00 [-5.00, -5.00]**",
                                     f"{flat.mean:+.2f} [{flat.lo:+.2f}, {flat.hi:+.2f}]"]
    random = summary[("clear", "random")]
    assert rows["random"] == [f"{random.mean:+.2f} [{random.lo:+.2f}, {random.hi:+.2f}]", "–"]


def test_the_overview_marks_an_incomplete_setting_and_bolds_nothing_there(tmp_path):
    base = [0.800, 0.810, 0.805, 0.795, 0.800]
    settings = {("clear", "value", 2): {"uniform": base, "adarank-exact": [b - 0.05 for b in base]},
                ("cut", "value", 2): {"uniform": base, "adarank-exact": [b - 0.05 for b in base][:3]}}
    results = tmp_path / "res"
    write_runs(results, settings, diverge_missing=False)  # a grid cut short: exact's seeds 3-4 never ran
    table = _overview(build_report(results, out=tmp_path / "r.md", plots=tmp_path / "p"))
    assert table[0][1:] == ["clear · r̄=2", "cut · r̄=2 (incomplete)"]
    exact = next(r for r in table if r[0] == "adarank-exact")
    assert exact[1].startswith("**-5.00") and exact[2] == "-5.00 [-5.00, -5.00] (n=3)"
