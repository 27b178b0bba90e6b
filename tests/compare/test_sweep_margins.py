"""Sweep choices that won by at most one standard error: which are flagged, the error's size, and the report's note."""

from __future__ import annotations

import json
import math

import pytest

from adarank.compare import report
from adarank.compare.report import SweepRow, build_report, summarize_sweep
from adarank.compare.sweep_margins import close_choices

from .test_report import _record, write_runs


def _rows(method: str, scores: dict[float, list[float]], examples: int = 400, diverged: float | None = None):
    rows = [SweepRow("pp", "all-linear", 8, lr, acc, method=method, examples=examples) for lr, acc in scores.items()]
    if diverged is not None:
        rows.append(SweepRow("pp", "all-linear", 8, diverged, [], method=method, diverged=1, examples=examples))
    best = max((r for r in rows if r.acc), key=lambda r: (sum(r.acc) / len(r.acc), -r.lr))
    best.chosen = True
    return rows


def test_a_win_within_one_standard_error_is_close_and_a_clear_one_is_not():
    se = 100 * math.sqrt(0.765 * 0.235 / 400)  # 2.12 pp
    rows = (_rows("coin", {3e-4: [76.0], 1e-3: [76.0], 3e-3: [76.5], 1e-2: [45.25]})
            + _rows("clear", {1e-3: [80.0], 3e-3: [86.0]})
            + _rows("tie", {1e-3: [90.0], 3e-3: [90.0]}))
    close = close_choices(rows)
    coin = close[("pp", "all-linear", 8, "coin")]
    assert (coin.lr, coin.runner_up) == (3e-3, 3e-4)  # runner-up: the best other rate, the smaller on a tie
    assert coin.margin_pp == pytest.approx(0.5) and coin.se_pp == pytest.approx(se)
    assert ("pp", "all-linear", 8, "clear") not in close
    assert close[("pp", "all-linear", 8, "tie")].margin_pp == 0.0


def test_more_examples_or_seeds_shrink_the_error_and_unknown_sizes_or_lone_rates_are_skipped():
    scores = {1e-3: [80.0], 3e-3: [81.5]}
    assert close_choices(_rows("m", scores, examples=400))  # SE 2.0 pp
    assert not close_choices(_rows("m", scores, examples=4000))  # SE 0.6 pp
    two_seeds = {1e-3: [80.0, 80.0], 3e-3: [81.5, 81.5]}
    assert close_choices(_rows("m", two_seeds, examples=200)) and not close_choices(_rows("m", two_seeds, examples=2000))
    assert not close_choices(_rows("m", scores, examples=0))
    assert not close_choices(_rows("m", {1e-3: [80.0]}))
    # a diverged rate is no runner-up
    assert not close_choices(_rows("m", {1e-3: [80.0]}, diverged=3e-3))


def test_the_report_marks_close_choices_from_the_records_validation_size(tmp_path):
    results = tmp_path / "grid"
    write_runs(results, {("trec-coarse", "value", 8): {"uniform": [0.8, 0.8]}})
    sweep = results / "lr-sweep-validation" / "runs"
    sweep.mkdir(parents=True)
    for lr, acc in {3e-4: 0.76, 1e-3: 0.765, 3e-3: 0.70}.items():
        rec = _record("trec-coarse", "value", 8, "uniform", 100, acc)
        rec.update(lr=lr, test_examples=400)
        (sweep / f"trec-coarse__value__r8__uniform__lr{lr:g}__s100.json").write_text(json.dumps(rec))
    rows = summarize_sweep(report.load_records(sweep).runs)
    assert {r.examples for r in rows} == {400}
    text = build_report(results, out=tmp_path / "s.md")
    assert "| trec-coarse | value | 8 | uniform | 0.001 | 1 | 76.50 | 0 | 0 | ✓ (close) |" in text
    assert "1 of 1 choices won their sweep by at most one standard error" in text
    assert "trec-coarse · value · r̄=8 · uniform: 0.001 over 0.0003 by 0.50 pp (SE 2.12)" in text
