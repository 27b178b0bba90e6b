"""The pilot report: the decision sentence and table reflect the data; HTML is self-contained and escaped."""

from __future__ import annotations

import base64
import re

import numpy as np

from adarank.pilot.decision import ArmResult, decide
from adarank.pilot.report import md_cell, write_report

HOSTILE = 'evil | <script>alert("x")</script>\n| injected | row\x07\u202e'


def synthetic():
    rng = np.random.default_rng(5)
    base = rng.normal(80.0, 1.5, 5)

    def arm(name, label, params, rank, shift, noise, lr):
        scores = {s: float(v) for s, v in enumerate(base + shift + rng.normal(0, noise, 5))}
        return ArmResult(name, label, params, rank, scores, lr)

    ref = ArmResult("uniform-r16", "uniform r=16, all-linear", 160_000, 16, dict(enumerate(base.tolist())), 1e-4)
    ladder = [arm("uniform-r8", "uniform r=8, all-linear", 80_000, 8, 0.0, 0.05, 2e-4),
              arm("uniform-r4", "uniform r=4, all-linear", 40_000, 4, -0.1, 0.05, 3e-4),
              arm("adarank-r2", HOSTILE, 20_000, 5, -4.0, 0.5, 5e-4),
              arm("uniform-r1", "uniform r=1, all-linear", 10_000, 1, 0.0, 0.05, 1e-3)]
    sweeps = {a.name: {lr: [a.mean() - abs(np.log10(lr / a.lr)) * 3 + k * 0.1 for k in range(2)]
                       for lr in (a.lr / 3, a.lr, a.lr * 3)} for a in (ref, *ladder)}
    meta = {"model": "tiny <model>", "data": "demo", "task": "classification", "metric": "accuracy",
            "current": "r=16 all-linear", "eval_seeds": [0, 1, 2, 3, 4], "sweep_seeds": [0, 1],
            "command": "adarank pilot --margin 1 | cat", "adarank_version": "0.1.0", "wall_seconds": 12.3,
            "runs": 40, "runs_failed": 0, "budget_note": None, "lr_notes": ["uniform-r1: best lr at the sweep's edge"],
            "recommended": {"name": "uniform-r4", "folder": "out/recommended", "max_rank": 4, "max_lora_rank": 8,
                            "best": None}}
    return ref, ladder, sweeps, meta


def test_report_reflects_the_decision_and_every_arm(tmp_path) -> None:
    ref, ladder, sweeps, meta = synthetic()
    decision = decide(ref, ladder, margin=1.0)
    assert [s.status for s in decision.steps] == ["non-inferior", "non-inferior", "not shown", "not tested"]
    md_path, html_path = write_report(tmp_path, decision, [ref, *ladder], sweeps, meta)
    md = md_path.read_text()
    first = next(line for line in md.splitlines() if line.startswith("**"))
    assert "uniform r=4, all-linear is not worse than your uniform r=16, all-linear by more than 1 point" in first
    assert "fixed-sequence test, α=0.05" in first and "25%" in first
    rows = [line for line in md.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert len(rows) == 5  # reference + four ladder arms, in ladder order
    assert [r.split(" | ")[0].lstrip("| ") for r in rows][:3] == [
        "uniform r=16, all-linear", "uniform r=8, all-linear", "uniform r=4, all-linear"]
    for row, arm in zip(rows, [ref, *ladder]):
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", row)[1:-1]]
        assert len(cells) == 10, row  # the hostile label did not add or split cells
        assert cells[1] == f"{arm.trainable_params:,}" and cells[3] == str(arm.max_rank)
        assert cells[5].startswith(f"{arm.mean():.2f} ± {arm.sd():.2f}") and cells[6] == "5"
        step = decision.step(arm.name)
        assert cells[9] == (step.status if step else "reference")
        if step:
            assert cells[7].startswith(f"{step.mean_diff:.2f} [{step.ci[0]:.2f}, {step.ci[1]:.2f}]")
    assert "best lr at the sweep's edge" in md
    assert (tmp_path / "report_scores.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    page = html_path.read_text()
    assert "<script" not in page.lower()
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 2 and all(base64.b64decode(i)[:4] == b"\x89PNG" for i in images)
    assert not re.search(r'(src|href)="(?!data:)', page)  # nothing external
    assert "&lt;script&gt;" in page and "tiny &lt;model&gt;" in page
    assert "\x07" not in page and "\u202e" not in page and "\x07" not in md and "\u202e" not in md


def test_no_arm_passing_says_so_plainly(tmp_path) -> None:
    ref, ladder, _sweeps, meta = synthetic()
    odd = ArmResult("cost-$5_{x", "odd", 30_000, 3, ladder[2].scores, 2e-4)  # mathtext must not break the plot
    decision = decide(ref, [odd, ladder[0]], margin=1.0)
    md_path, html_path = write_report(tmp_path, decision, [ref, odd, ladder[0]], {}, meta)
    md = md_path.read_text()
    assert "No cheaper arm was shown to be not worse than your uniform r=16, all-linear by more than 1 point" in md
    assert "keep your configuration" in md and "report_lr.png" not in md  # no sweeps, no lr plot
    assert html_path.read_text().count("data:image/png;base64,") == 1


def test_markdown_cell_escaping() -> None:
    cell = md_cell(HOSTILE)
    assert "\n" not in cell and "<" not in cell and "\x07" not in cell and "\u202e" not in cell
    assert re.search(r"(?<!\\)\|", cell) is None  # every pipe escaped
    assert "\\x07" in cell and "\\u202e" in cell
