"""Issue 6's decision rule: which rank-allocation variant becomes the default, if any.

The rule, fixed before the runs: among the candidates (the paper's rule and its variants), take the
one with the best mean paired gain over ``uniform``, pooled over every (setting, seed) pair. It
replaces the paper's rule only if its own paired difference to the paper's rule, pooled the same way,
has a 95 % CI that lies above zero; otherwise the paper's rule stays the default.

Only settings and seeds where a candidate has runs count for it, and a candidate with fewer than two
pairs has no CI, so it cannot win. ``python -m adarank.compare.decision --results DIR`` prints the
table and the verdict as Markdown. When some runs collapsed (see :func:`report.find_collapses`), it
also applies the rule again without them: a sensitivity check printed beside the verdict, never
replacing it, because the rule was fixed with every run in it.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..errors import AdaRankError
from ..io import atomic_write_text
from .methods import SCORED_METHODS
from .report import (BASELINE, COLLAPSE_PP, PairedStats, _num, drop_collapses, find_collapses, fmt_ci,
                     load_records, pool, summarize)

PAPER = "adarank-floor"
#: Every registered method whose ranks come from a plan's scores, the paper's rule first.
DEFAULT_CANDIDATES = SCORED_METHODS


@dataclass
class Candidate:
    method: str
    vs_uniform: PairedStats | None
    vs_paper: PairedStats | None  # None for the paper's rule itself


@dataclass
class Decision:
    candidates: list[Candidate]
    best: str | None
    default: str
    reason: str
    paper: str = PAPER


def decide(runs: Sequence[dict], candidates: Sequence[str] = DEFAULT_CANDIDATES, paper: str = PAPER) -> Decision:
    """Apply the rule to grid records (``runs``: the records of :func:`report.load_records`)."""
    vs_uniform = {p.method: p.stats for p in pool(summarize(runs, baseline=BASELINE))}
    vs_paper = {p.method: p.stats for p in pool(summarize(runs, baseline=paper))}
    rows = [Candidate(m, vs_uniform.get(m), None if m == paper else vs_paper.get(m)) for m in candidates
            if m in vs_uniform]
    if paper not in vs_uniform:
        raise AdaRankError(f"no paired runs of the paper's rule {paper!r} and {BASELINE!r}; run them first")
    ranked = [c for c in rows if c.vs_uniform is not None and c.vs_uniform.n >= 2]
    best = max(ranked, key=lambda c: c.vs_uniform.mean).method if ranked else None  # type: ignore[union-attr]
    if best is None or best == paper:
        return Decision(rows, best, paper, f"the paper's rule ({paper}) has the best mean gain over uniform", paper)
    stats = next(c.vs_paper for c in rows if c.method == best)
    if stats is not None and stats.n >= 2 and stats.lo > 0:
        return Decision(rows, best, best, f"{best} has the best mean gain over uniform and its gain over "
                                          f"{paper} has a 95% CI above zero ({fmt_ci(stats)} pp)", paper)
    ci = fmt_ci(stats) if stats is not None else "no pairs"
    return Decision(rows, best, paper, f"{best} has the best mean gain over uniform, but its gain over {paper} "
                                       f"has a 95% CI that does not exclude zero ({ci} pp): the paper's rule stays",
                    paper)


def decision_markdown(decision: Decision, label: str = "Decision") -> str:
    lines = ["| method | pairs vs uniform | mean Δacc vs uniform (pp) | 95% CI | pairs vs paper | "
             "mean Δacc vs paper (pp) | 95% CI |", "|---|---|---|---|---|---|---|"]
    for c in decision.candidates:
        u, p = c.vs_uniform, c.vs_paper
        cells = [c.method + (" (best)" if c.method == decision.best else "")]
        cells += [str(u.n), _num(u.mean, sign=True), fmt_ci(u)] if u else ["0", "n/a", "n/a"]
        cells += ["(the paper's rule)", "", ""] if c.method == decision.paper else (
            [str(p.n), _num(p.mean, sign=True), fmt_ci(p)] if p else ["0", "n/a", "n/a"])
        lines.append("| " + " | ".join(cells) + " |")
    verb = "stays" if decision.default == decision.paper else "becomes"
    lines += ["", f"**{label}: the default {verb} `{decision.default}`.** ", f"Why: {decision.reason}."]
    return "\n".join(lines) + "\n"


def decision_report(runs: Sequence[dict], candidates: Sequence[str] = DEFAULT_CANDIDATES) -> str:
    """The verdict on every run, then (if any run collapsed) the same rule without the collapsed runs."""
    text = decision_markdown(decide(runs, candidates))
    collapses = find_collapses(summarize(runs))
    if collapses:
        per_setting = Counter(c.setting for c in collapses)
        listed = "; ".join(f"{setting}: {n}" for setting, n in per_setting.items())
        again = decision_markdown(decide(drop_collapses(runs, collapses), candidates),
                                  label="Decision without them (not applied)")
        text += (f"\n**Sensitivity check, not the decision:** the same rule without the {len(collapses)} "
                 f"collapsed run(s) (accuracy more than {COLLAPSE_PP:g} pp below their setting's median; {listed}); "
                 "every pair that had one is dropped.\n\n" + again)
    return text


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    ap = argparse.ArgumentParser(prog=prog or "python -m adarank.compare.decision", description=__doc__.splitlines()[0])
    ap.add_argument("--results", required=True, help="the grid's results folder (holds runs/)")
    ap.add_argument("--candidates", default=",".join(DEFAULT_CANDIDATES), help="comma-separated methods")
    ap.add_argument("--out", default=None, help="Markdown file to write (default: stdout)")
    args = ap.parse_args(argv)
    try:
        runs = load_records(Path(args.results) / "runs").runs
        if not runs:
            raise AdaRankError(f"no run records in '{Path(args.results) / 'runs'}'; run the grid first")
        text = decision_report(runs, [c.strip() for c in args.candidates.split(",") if c.strip()])
    except AdaRankError as exc:
        print(f"adarank.compare.decision: error: {exc}", file=sys.stderr)
        return 2
    if args.out:
        atomic_write_text(args.out, text)
        print(f"decision written to {args.out}")
    else:
        print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
