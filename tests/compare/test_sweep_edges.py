"""One learning rate past a sweep's edge: the ladder, which cells count as on an edge, and the grid's rounds."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from adarank.compare import grid
from adarank.compare.report import SweepRow
from adarank.compare.sweep_edges import edge_extensions, next_rate


@pytest.mark.parametrize("lr, neighbour, expected", [
    (1e-2, 3e-3, 3e-2), (3e-3, 1e-3, 1e-2), (3e-4, 1e-3, 1e-4), (1e-5, 3e-5, 3e-6), (1e-4, 3e-5, 3e-4),
    (2e-3, 1e-3, 4e-3), (5e-4, 1e-3, 2.5e-4),  # off the 1-3 ladder: the neighbours' ratio
])
def test_the_next_rate_keeps_the_sweeps_ladder(lr, neighbour, expected):
    assert next_rate(lr, neighbour) == pytest.approx(expected)


def _row(method: str, lr: float, score: float, chosen: bool = False, diverged: int = 0) -> SweepRow:
    row = SweepRow("mr", "value", 2, lr, [score] if not diverged else [], method=method, diverged=diverged)
    row.chosen = chosen
    return row


def test_only_choices_on_an_edge_of_the_tried_rates_are_extended():
    rows = [_row("top", 1e-3, 80), _row("top", 3e-3, 85, chosen=True),
            _row("bottom", 1e-3, 85, chosen=True), _row("bottom", 3e-3, 80),
            _row("inside", 1e-3, 80), _row("inside", 3e-3, 85, chosen=True), _row("inside", 1e-2, 82),
            # the top rate diverged, so the best surviving one is not an edge: no rate above a divergence
            _row("diverged", 1e-3, 80), _row("diverged", 3e-3, 85, chosen=True), _row("diverged", 1e-2, 0, diverged=1),
            _row("single", 1e-3, 80, chosen=True)]
    assert edge_extensions(rows) == {("mr", "value", 2, "top"): 1e-2, ("mr", "value", 2, "bottom"): 3e-4}


def test_the_grid_extends_the_sweep_while_the_choice_stays_on_an_edge(tmp_path, monkeypatch):
    def fake_run(job):  # validation score peaks at lr 3e-2: the sweep's 1e-3..1e-2 is too low
        lr = job.spec.lr
        score = 0.9 - abs(math.log10(lr / 3e-2)) / 10
        rec = {"dataset": "mr", "target_set": "value", "rank": 2, "method": job.spec.method, "seed": job.spec.seed,
               "lr": lr, "lr_sweep": True, "test_accuracy": score, "hparams": {"lr": lr}}
        Path(job.out_path).parent.mkdir(parents=True, exist_ok=True)
        Path(job.out_path).write_text(json.dumps(rec))
        return grid.Outcome(job.spec.key, True, 0.01)

    monkeypatch.setattr(grid, "execute_run", fake_run)
    monkeypatch.setattr(grid, "_preflight", lambda opts: None)
    monkeypatch.setattr(grid, "ensure_plans", lambda opts, log: {(ts, "", None): tmp_path / f"{ts}.json"
                                                                 for ts in opts.target_sets})
    argv = ["--model", str(tmp_path), "--data-dir", str(tmp_path), "--results", str(tmp_path / "r"), "--workers", "0",
            "--datasets", "mr", "--target-sets", "value", "--ranks", "2", "--methods", "uniform", "--seeds", "100",
            "--lr-sweep", "1e-3,3e-3,1e-2", "--sweep-on", "test"]
    lines: list[str] = []
    summary = grid.run_grid(grid.options_from_args(grid.build_parser().parse_args([*argv, "--extend-edges", "3"])),
                            log=lines.append)
    swept = sorted(float(json.loads(p.read_text())["lr"]) for p in (tmp_path / "r" / "lr-sweep" / "runs").iterdir())
    # 3e-2 wins and 1e-1 is worse, so the second round ends on an inside choice and the third never runs
    assert swept == pytest.approx([1e-3, 3e-3, 1e-2, 3e-2, 1e-1])
    assert summary.done == 5 and summary.total == 5 and summary.failed == 0
    assert sum("one rate past an edge choice" in line for line in lines) == 2
    assert grid.swept_learning_rates(tmp_path / "r" / "lr-sweep")[("mr", "value", 2, "uniform")] == pytest.approx(3e-2)
    # without the flag a sweep runs the rates given, and the flag needs a sweep
    assert not grid.edge_runs(grid.options_from_args(grid.build_parser().parse_args(argv)), [])
    with pytest.raises(grid.AdaRankError, match="--lr-sweep"):
        grid.options_from_args(grid.build_parser().parse_args([*argv[:-4], "--extend-edges", "1"]))
