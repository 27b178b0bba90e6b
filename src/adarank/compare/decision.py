"""The best-mean decision rule: which rank-allocation variant becomes the default, if any.

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

from ..cli_args import split_list
from ..errors import AdaRankError
from ..io import atomic_write_text
from .completeness import excluded_settings, setting_key
from .methods import SCORED_METHODS
from .records import diverged_keys
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


@dataclass
class TwoLevel:
    """A method against one reference, read twice: every (setting, seed) pair pooled, and one
    observation per setting (t over the settings)."""

    pooled: PairedStats | None
    setting_level: PairedStats | None

    @property
    def above(self) -> bool:
        """Both CIs exist and lie above zero: the two-level rule's test for "better"."""
        return all(s is not None and s.n >= 2 and s.lo > 0 for s in (self.pooled, self.setting_level))


@dataclass
class TwoLevelDecision:
    rows: dict[str, tuple[TwoLevel, TwoLevel | None]]  # method -> (vs uniform, vs the paper's rule)
    default: str
    reason: str
    paper: str = PAPER


def _two_level(runs: Sequence[dict], baseline: str) -> dict[str, TwoLevel]:
    return {p.method: TwoLevel(p.stats, p.setting_level) for p in pool(summarize(runs, baseline=baseline))}


def decide_two_level(runs: Sequence[dict], candidates: Sequence[str] | None = None,
                     paper: str = PAPER) -> TwoLevelDecision:
    """The two-level rule, fixed before its runs: a method is better than a reference only if both its
    pooled CI and its setting-level CI lie above zero; the default changes only to a method better
    than uniform *and* better than the paper's rule by that test (the best pooled gain over uniform
    among such methods), otherwise the paper's rule stays. ``candidates`` defaults to every method
    in the records but uniform."""
    vs_uniform, vs_paper = _two_level(runs, BASELINE), _two_level(runs, paper)
    if paper not in vs_uniform:
        raise AdaRankError(f"no paired runs of the paper's rule {paper!r} and {BASELINE!r}; run them first")
    names = list(candidates) if candidates is not None else list(vs_uniform)
    rows = {m: (vs_uniform[m], None if m == paper else vs_paper.get(m)) for m in names if m in vs_uniform}
    winners = [m for m, (u, q) in rows.items() if m != paper and u.above and q is not None and q.above]
    if winners:
        best = max(winners, key=lambda m: rows[m][0].pooled.mean)  # type: ignore[union-attr]
        return TwoLevelDecision(rows, best, f"{best} is better than uniform and than {paper}: both its pooled and "
                                            "its setting-level 95% CIs lie above zero against each", paper)
    better = [m for m, (u, _) in rows.items() if u.above]
    why = (f"better than uniform by both CIs: {', '.join(better)}, but none also better than {paper} by both"
           if better else "no method has both its pooled and its setting-level 95% CI above zero against uniform")
    return TwoLevelDecision(rows, paper, why + f"; the paper's rule ({paper}) stays", paper)


def two_level_markdown(decision: TwoLevelDecision) -> str:
    def cells(level: TwoLevel | None) -> list[str]:
        if level is None:
            return ["n/a", "n/a", "no"]
        out = []
        for s in (level.pooled, level.setting_level):
            out.append("n/a" if s is None or s.n == 0 else
                       f"{_num(s.mean, sign=True)} {fmt_ci(s)} (n={s.n})" if s.n >= 2 else
                       f"{_num(s.mean, sign=True)} (n=1, no CI)")
        return out + ["yes" if level.above else "no"]

    lines = ["| method | vs uniform: pooled Δ [95% CI] | vs uniform: setting-level Δ [95% CI] | better? | "
             f"vs {decision.paper}: pooled Δ [95% CI] | vs {decision.paper}: setting-level Δ [95% CI] | better? |",
             "|---|---|---|---|---|---|---|"]
    for method, (u, q) in decision.rows.items():
        right = ["(the paper's rule)", "", ""] if method == decision.paper else cells(q)
        lines.append("| " + " | ".join([method] + cells(u) + right) + " |")
    verb = "stays" if decision.default == decision.paper else "becomes"
    lines += ["", f"**Decision (pooled and setting-level CIs both above zero): the default {verb} "
                  f"`{decision.default}`.** ", f"Why: {decision.reason}."]
    return "\n".join(lines) + "\n"


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
    ap.add_argument("--candidates", default=None, help="comma-separated methods (default: the plan-scored "
                    "methods for --rule best-mean, every method but uniform for --rule two-level)")
    ap.add_argument("--rule", choices=("best-mean", "two-level"), default="best-mean",
                    help="best-mean: the MiniLM grid's rule (the best pooled gain, then its CI over the paper's rule); "
                         "two-level: the decoder study's rule (pooled and setting-level CIs both above zero, against uniform "
                         "and against the paper's rule)")
    ap.add_argument("--target-sets", default=None,
                    help="comma-separated target sets to read (e.g. all-linear), to show the decision on part of a "
                         "grid beside the whole; default: every set in the records")
    ap.add_argument("--out", default=None, help="Markdown file to write (default: stdout)")
    args = ap.parse_args(argv)
    try:
        runs = load_records(Path(args.results) / "runs").runs
        if not runs:
            raise AdaRankError(f"no run records in '{Path(args.results) / 'runs'}'; run the grid first")
        if args.target_sets:
            wanted = set(split_list(args.target_sets))
            found = {str(r["target_set"]) for r in runs}
            if wanted - found:  # a misspelt set would otherwise drop out of the reading unnoticed
                raise AdaRankError(f"no records for target set(s) {', '.join(sorted(wanted - found))} in "
                                   f"'{args.results}' (found: {', '.join(sorted(found))}); pick from those")
            runs = [r for r in runs if str(r["target_set"]) in wanted]
        gaps = excluded_settings(Path(args.results), runs, diverged_keys(Path(args.results) / "errors.jsonl"))
        runs = [r for r in runs if setting_key(r) not in gaps]
        if not runs:
            raise AdaRankError(f"every setting in '{args.results}' is incomplete (some method lacks a seed that "
                               "another has, or took its rate from a sweep that lost a run); finish the grid first")
        chosen = split_list(args.candidates) if args.candidates else None
        if args.rule == "two-level":
            text = two_level_markdown(decide_two_level(runs, chosen))
        else:
            text = decision_report(runs, chosen or list(DEFAULT_CANDIDATES))
        if args.target_sets:
            text += f"\nRead: the records of target set(s) {', '.join(sorted(wanted))} only.\n"
        if gaps:
            text += ("\nLeft out as incomplete (the decision reads complete settings only): "
                     + "; ".join(f"{d} · {t} · r̄={k} ({why})" for (d, t, k), why in gaps.items())
                     + ".\n")
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
