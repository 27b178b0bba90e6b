"""The benchmark report: tables, paired differences with confidence intervals, and plots.

``python -m adarank.compare.report --results DIR --out BENCHMARKS-section.md --plots DIR/plots`` reads
every ``DIR/runs/*.json`` written by :mod:`adarank.compare.grid` and writes a Markdown section:

* one table per setting (dataset, target set, r̄): per method the test accuracy and macro-F1 (mean ±
  sample std over seeds, in percent), the seeds n, the LoRA parameter count, and the accuracy
  difference to ``uniform`` paired by seed, with a Student-t 95 % confidence interval and
  win/tie/loss counts over seeds;
* a pooled table per method over all settings;
* the learning-rate sweeps of ``DIR/lr-sweep-validation`` and ``DIR/lr-sweep`` (scored on the test split)
  when present.

Conventions (also printed in the report):

* Every difference is ``method − uniform`` in accuracy percentage points, over the seeds present for
  both; the CI is ``mean ± t(0.975, n−1) · sd / √n`` with the sample sd (``ddof=1``); n < 2 has no CI.
* A seed is a tie when ``|Δ| < 0.1`` points (:data:`TIE_PP`), a win when ``Δ ≥ 0.1``, a loss when
  ``Δ ≤ −0.1``. With a test set of N examples one example is ``100/N`` points, so below N = 1000 any
  differing prediction count is a win or a loss.
* The pooled table treats every (setting, seed) difference as one observation: it pools unlike
  settings (datasets, target sets and budgets with different spreads) and pairs that share seeds,
  so its CI is a summary, not a test. The per-method count of settings whose own CI lies above 0,
  contains 0 or lies below 0 is the more careful read, and the count after Holm's correction over
  the method's settings (:func:`holm`) the one that survives testing 12 settings at once.
* The date is the span of the records' own ``timestamp`` fields (:func:`record_dates`), not the
  day the report was printed.
* "Is any seed of uniform special?" compares each baseline seed with the mean of its other seeds
  (:func:`seed_offsets`): a sweep seed re-used by ``--lr-from-sweep`` shows its selection margin there.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import shutil
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from ..cli_args import split_list
from ..errors import AdaRankError
from ..io import atomic_write, atomic_write_text
from .completeness import excluded_settings, setting_key
from .data import dataset_slug
from .methods import REFERENCE_METHODS, report_order
from .records import SWEEP_DIRS, diverged_keys, parse_sweep_key, unfinished_keys

BASELINE = "uniform"
TIE_PP = 0.1
CONFIDENCE = 0.95
TARGET_SET_ORDER = ("value", "query", "key", "attn-out", "attention", "all-linear")
PROVENANCE_FIELDS = ("card", "command", "commit", "date", "seeds")
PLACEHOLDER = "(fill in)"
_EPS = 1e-9


# ------------------------------------------------------------------------------------ statistics
@dataclass
class PairedStats:
    """Mean of paired differences with its Student-t confidence interval (nan where undefined)."""

    n: int
    mean: float
    sd: float
    lo: float
    hi: float

    @property
    def side(self) -> int | None:
        """+1 when the CI lies above 0, −1 below 0, 0 when it contains 0, None without a CI."""
        if self.n < 2 or not math.isfinite(self.lo):
            return None
        if self.lo > 0:
            return 1
        if self.hi < 0:
            return -1
        return 0


def paired_stats(diffs: Iterable[float], confidence: float = CONFIDENCE) -> PairedStats:
    from scipy import stats

    d = np.asarray(list(diffs), dtype=float)
    n = int(d.size)
    if n == 0:
        return PairedStats(0, math.nan, math.nan, math.nan, math.nan)
    mean = float(d.mean())
    if n < 2:
        return PairedStats(1, mean, math.nan, math.nan, math.nan)
    sd = float(d.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    return PairedStats(n, mean, sd, mean - half, mean + half)


def paired_p(st: PairedStats) -> float:
    """Two-sided p-value of the paired t-test behind ``st``'s CI (nan without a CI).

    It is the same t statistic, so p < 1 − confidence exactly when the CI excludes 0; the p-value is
    what a multiplicity correction needs.
    """
    from scipy import stats

    if st.n < 2 or not math.isfinite(st.sd):
        return math.nan
    if st.sd == 0:
        return 1.0 if st.mean == 0 else 0.0
    t = st.mean / (st.sd / math.sqrt(st.n))
    return float(2.0 * stats.t.sf(abs(t), st.n - 1))


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given; nan stays nan and is not counted.

    Holm controls the chance of any false "CI excludes 0" among m tests at the nominal level under
    any dependence between them (settings share seeds and data), and never rejects less than
    Bonferroni: the i-th smallest p is multiplied by m − i + 1, and the running maximum keeps the
    adjusted values in the order of the raw ones.
    """
    order = sorted((i for i, p in enumerate(pvalues) if math.isfinite(p)), key=lambda i: pvalues[i])
    m = len(order)
    adjusted = [math.nan] * len(pvalues)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def win_tie_loss(diffs: Iterable[float], tie: float = TIE_PP) -> tuple[int, int, int]:
    """Counts of Δ ≥ tie, |Δ| < tie, Δ ≤ −tie (a float hair under the threshold is not a tie)."""
    w = t = loss = 0
    for d in diffs:
        if abs(d) < tie - _EPS:
            t += 1
        elif d > 0:
            w += 1
        else:
            loss += 1
    return w, t, loss


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if len(values) else math.nan


def _std(values: Sequence[float]) -> float:
    return float(np.std(values, ddof=1)) if len(values) > 1 else math.nan


# ---------------------------------------------------------------------------------------- loading
@dataclass
class Records:
    runs: list[dict[str, Any]]
    problems: list[str] = field(default_factory=list)


REQUIRED = ("dataset", "method", "rank", "seed")


def score_of(rec: dict[str, Any]) -> Any:
    """A record's primary test score: ``test_score`` (every task's, with its ``metric``), or the
    ``test_accuracy`` of records written before tasks had their own metrics."""
    return rec["test_score"] if "test_score" in rec else rec["test_accuracy"]


def load_records(folder: str | os.PathLike) -> Records:
    """Every ``*.json`` run record in ``folder``; unreadable or incomplete files become problems."""
    out = Records([])
    path = Path(folder)
    if not path.is_dir():
        return out
    for file in sorted(path.glob("*.json")):
        try:
            rec = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            out.problems.append(f"{file.name}: unreadable ({exc})")
            continue
        if not isinstance(rec, dict):
            out.problems.append(f"{file.name}: not a JSON object")
            continue
        missing = [k for k in REQUIRED if k not in rec] + ([] if ("test_score" in rec or "test_accuracy" in rec)
                                                           else ["test_score"])
        if missing:
            out.problems.append(f"{file.name}: missing {', '.join(missing)}")
            continue
        rec = dict(rec)
        if not rec.get("target_set"):
            targets = rec.get("targets")
            rec["target_set"] = "+".join(targets) if isinstance(targets, list) else str(targets or "?")
        rec["_file"] = file.name
        out.runs.append(rec)
    return out


def _float(value: Any) -> float:
    try:
        return math.nan if value is None else float(value)
    except (TypeError, ValueError):
        return math.nan


def _pp(value: Any) -> float:
    """A record's accuracy or F1 (a fraction in [0, 1], as run_one writes it) in percent."""
    return _float(value) * 100.0


# ---------------------------------------------------------------------------------------- summary
@dataclass
class MethodSummary:
    method: str
    seeds: list[int]
    acc: list[float]  # percent, in the order of ``seeds``
    f1: list[float]
    params: list[float]
    params_train: list[float]
    diffs: list[float] = field(default_factory=list)  # vs uniform, percentage points
    paired_seeds: list[int] = field(default_factory=list)
    paired: PairedStats | None = None
    wtl: tuple[int, int, int] | None = None

    @property
    def n(self) -> int:
        return len(self.seeds)


@dataclass
class SettingSummary:
    dataset: str
    target_set: str
    rank: int
    methods: dict[str, MethodSummary]
    metric: str | None = None  # the records' ``metric`` (a generation task's); None: accuracy; "mixed": several

    @property
    def score_name(self) -> str:
        """What the setting's score is, for table headers and axes: accuracy unless its task scores otherwise."""
        return SCORE_NAMES.get(self.metric or "", self.metric or "accuracy")

    @property
    def slug(self) -> str:
        return f"{dataset_slug(self.dataset)}__{self.target_set}__r{self.rank}"

    @property
    def label(self) -> str:
        return f"{self.dataset} · {self.target_set} · r̄={self.rank}"

    @property
    def compared(self) -> dict[str, MethodSummary]:
        """The rank-allocation methods, without the references (the base model untrained, full
        fine-tuning): those tell how far LoRA is from its bounds, and are shown per setting, but
        they are no allocation to pool, correct for, hold to parameter parity or call collapsed."""
        return {name: m for name, m in self.methods.items() if name not in REFERENCE_METHODS}


#: how each generation metric reads in a table; classification records and exact match are accuracy
SCORE_NAMES = {"": "accuracy", "accuracy": "accuracy", "exact_match": "accuracy", "chunk_f1": "chunk F1",
               "bracket_chunk_f1": "chunk F1", "token_accuracy": "token accuracy", "mixed": "score (mixed metrics)"}


def method_sort_key(method: str) -> tuple[int, str]:
    """The registry's core methods in its order, then any other allocation method by name, then the references
    (bounds, not allocations: a reader compares the allocations first and reads the bounds below them)."""
    order = report_order()
    if method in REFERENCE_METHODS:
        return (len(order) + 1, method)
    return (order.index(method), "") if method in order else (len(order), method)


def _setting_sort_key(key: tuple[str, str, int]) -> tuple:
    dataset, ts, rank = key
    ts_key = (TARGET_SET_ORDER.index(ts), "") if ts in TARGET_SET_ORDER else (len(TARGET_SET_ORDER), ts)
    return (dataset, ts_key, rank)


def summarize(runs: Sequence[dict[str, Any]], problems: list[str] | None = None,
              baseline: str = BASELINE) -> list[SettingSummary]:
    """Group run records by setting and method and pair every method with ``baseline`` by seed."""
    problems = problems if problems is not None else []
    by_cell: dict[tuple[str, str, int], dict[str, dict[int, dict[str, Any]]]] = defaultdict(lambda: defaultdict(dict))
    for rec in runs:
        key = (str(rec["dataset"]), str(rec["target_set"]), int(rec["rank"]))
        seed = int(rec["seed"])
        cell = by_cell[key][str(rec["method"])]
        if seed in cell:
            problems.append(f"{rec.get('_file', '?')}: a second record of {key} {rec['method']} seed {seed}; "
                            "the first one is used")
            continue
        cell[seed] = rec
    settings = []
    for key in sorted(by_cell, key=_setting_sort_key):
        methods: dict[str, MethodSummary] = {}
        for method in sorted(by_cell[key], key=method_sort_key):
            recs = by_cell[key][method]
            seeds = sorted(recs)
            methods[method] = MethodSummary(
                method=method, seeds=seeds,
                acc=[_pp(score_of(recs[s])) for s in seeds],
                f1=[_pp(recs[s].get("test_macro_f1")) for s in seeds],
                params=[_float(recs[s].get("lora_params")) for s in seeds],
                params_train=[_float(recs[s].get("lora_params_train", recs[s].get("lora_params"))) for s in seeds],
            )
        base = methods.get(baseline)
        if base is not None:
            base_acc = dict(zip(base.seeds, base.acc))
            for m in methods.values():
                if m.method == baseline:
                    continue
                m.paired_seeds = [s for s in m.seeds if s in base_acc]
                mine = dict(zip(m.seeds, m.acc))
                m.diffs = [mine[s] - base_acc[s] for s in m.paired_seeds]
                m.paired = paired_stats(m.diffs)
                m.wtl = win_tie_loss(m.diffs)
        metrics = {str(rec["metric"]) for cell in by_cell[key].values() for rec in cell.values() if rec.get("metric")}
        if len(metrics) > 1:
            problems.append(f"{key}: records scored by different metrics ({', '.join(sorted(metrics))}); "
                            "their scores are compared as if they were one")
        metric = next(iter(metrics)) if len(metrics) == 1 else ("mixed" if metrics else None)
        settings.append(SettingSummary(key[0], key[1], key[2], methods, metric))
    return settings


#: A run is "collapsed" when its accuracy is this many points below the median of its setting.
COLLAPSE_PP = 20.0


@dataclass
class Collapse:
    setting: str  # SettingSummary.label
    key: tuple[str, str, int]
    method: str
    seed: int
    acc: float
    median: float


def find_collapses(settings: Sequence[SettingSummary], margin: float = COLLAPSE_PP) -> list[Collapse]:
    """Runs far below their setting's median accuracy (all methods and seeds): diverged training,
    not a rank-allocation effect. The median is robust to a few of them."""
    out = []
    for s in settings:
        accs = [a for m in s.compared.values() for a in m.acc]
        if not accs:
            continue
        median = float(np.median(accs))
        for m in s.compared.values():
            for seed, acc in zip(m.seeds, m.acc):
                if acc < median - margin:
                    out.append(Collapse(s.label, (s.dataset, s.target_set, s.rank), m.method, seed, acc, median))
    return out


def drop_collapses(runs: Sequence[dict[str, Any]], collapses: Sequence[Collapse]) -> list[dict[str, Any]]:
    """``runs`` without the collapsed ones; pairing then drops every pair that had one."""
    gone = {(c.key, c.method, c.seed) for c in collapses}
    return [r for r in runs if ((str(r["dataset"]), str(r["target_set"]), int(r["rank"])), str(r["method"]),
                                int(r["seed"])) not in gone]


@dataclass
class PooledSummary:
    method: str
    settings: int  # settings with at least one pair
    stats: PairedStats
    wtl: tuple[int, int, int]  # over (setting, seed) pairs
    above: int  # settings whose CI lies above 0
    contains: int  # ... contains 0
    below: int  # ... lies below 0
    no_ci: int  # settings with fewer than 2 pairs
    holm_above: int = 0  # settings whose CI lies above 0 and whose test survives Holm over the settings
    holm_below: int = 0  # ... below 0
    #: one observation per setting (that setting's mean paired difference), Student t over the settings:
    #: the reading that does not let a setting with many seeds or a small spread speak for the others
    setting_level: PairedStats | None = None


def pool(settings: Sequence[SettingSummary]) -> list[PooledSummary]:
    """Per method: all (setting, seed) paired differences pooled, and settings counted by CI side.
    The baseline has no pairs of its own (:func:`summarize` pairs every other method with it)."""
    diffs: dict[str, list[float]] = defaultdict(list)
    means: dict[str, list[float]] = defaultdict(list)
    sides: dict[str, list[int | None]] = defaultdict(list)
    for s in settings:
        for m in s.compared.values():
            if m.paired is None or m.paired.n == 0:
                continue
            diffs[m.method].extend(m.diffs)
            means[m.method].append(m.paired.mean)
            sides[m.method].append(m.paired.side)
    survivors = holm_survivors(settings)
    out = []
    for method in sorted(diffs, key=method_sort_key):
        sd = sides[method]
        kept = [h.stats.mean for h in survivors if h.method == method and h.survives]
        out.append(PooledSummary(method=method, settings=len(sd), stats=paired_stats(diffs[method]),
                                 wtl=win_tie_loss(diffs[method]), above=sd.count(1), contains=sd.count(0),
                                 below=sd.count(-1), no_ci=sd.count(None),
                                 holm_above=sum(v > 0 for v in kept), holm_below=sum(v < 0 for v in kept),
                                 setting_level=paired_stats(means[method])))
    return out


@dataclass
class HolmRow:
    """One (method, setting) whose own CI excludes 0, with its p-value before and after Holm."""

    method: str
    setting: str  # SettingSummary.label
    stats: PairedStats
    p: float
    p_holm: float

    @property
    def survives(self) -> bool:
        return self.p_holm < 1.0 - CONFIDENCE


def holm_survivors(settings: Sequence[SettingSummary]) -> list[HolmRow]:
    """Every (method, setting) CI that excludes 0, with Holm's correction over that method's settings.

    Read one at a time, 12 settings at 95 % give a CI off zero by chance about every second method;
    the family is a method's settings because the question asked is "does this method differ from
    the baseline anywhere?".
    """
    tested: dict[str, list[tuple[str, PairedStats]]] = defaultdict(list)
    for s in settings:
        for m in s.compared.values():
            if m.paired is not None and m.paired.n >= 2:
                tested[m.method].append((s.label, m.paired))
    rows = []
    for method in sorted(tested, key=method_sort_key):
        ps = [paired_p(st) for _, st in tested[method]]
        for (label, st), p, adj in zip(tested[method], ps, holm(ps)):
            if st.side in (1, -1):
                rows.append(HolmRow(method, label, st, p, adj))
    return rows


@dataclass
class SeedOffset:
    seed: int
    stats: PairedStats  # over settings: this seed's accuracy − the mean of the other seeds', in pp


def seed_offsets(settings: Sequence[SettingSummary], method: str = BASELINE) -> list[SeedOffset]:
    """How far each seed of ``method`` sits above the mean of its other seeds, setting by setting.

    An ordinary seed averages 0. The grid's ``--lr-from-sweep`` picks each setting's rate by the best
    single seed-0 run of the sweep and then trains seed 0 again at that rate, which reproduces the
    selected run when training is deterministic. When the sweep was scored on the test split, seed 0
    of uniform then carries the winner's margin; in a 5-seed mean it counts one fifth. Pass settings
    without collapsed runs: one collapse moves every other seed's offset by tens of points.
    """
    offsets: dict[int, list[float]] = defaultdict(list)
    for s in settings:
        m = s.methods.get(method)
        if m is None or m.n < 2:
            continue
        for i, seed in enumerate(m.seeds):
            others = m.acc[:i] + m.acc[i + 1:]
            offsets[seed].append(m.acc[i] - _mean(others))
    return [SeedOffset(seed, paired_stats(offsets[seed])) for seed in sorted(offsets)]


# -------------------------------------------------------------------------------------- formatting
def _num(v: float, digits: int = 2, sign: bool = False) -> str:
    if not math.isfinite(v):
        return "n/a"
    text = f"{v:+.{digits}f}" if sign else f"{v:.{digits}f}"
    return "+0.00" if sign and text == "-0.00" else text


def fmt_mean_std(values: Sequence[float]) -> str:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return "n/a"
    if len(finite) < 2:
        return _num(finite[0])
    return f"{_num(_mean(finite))} ± {_num(_std(finite))}"


def fmt_ci(stats: PairedStats | None) -> str:
    if stats is None or stats.n < 2:
        return "n/a"
    return f"[{_num(stats.lo, sign=True)}, {_num(stats.hi, sign=True)}]"


def fmt_params(m: MethodSummary) -> str:
    final = [p for p in m.params if math.isfinite(p)]
    train = [p for p in m.params_train if math.isfinite(p)]
    if not final:
        return "n/a"
    f, t = _mean(final), _mean(train) if train else math.nan
    if f == 0 and math.isfinite(t) and t > 0:  # full fine-tuning: no LoRA factors, every weight trained
        return f"{t:,.0f} (all weights)"
    spread = f" ({min(final):,.0f}–{max(final):,.0f})" if max(final) - min(final) > 0.5 else ""  # data-driven ranks
    if m.method == "adalora" or (math.isfinite(t) and abs(t - f) > 0.5):
        return (f"{t:,.0f}→{f:,.0f}" if math.isfinite(t) else f"{f:,.0f}") + spread
    return f"{f:,.0f}{spread}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def setting_header(baseline: str = BASELINE, score_name: str = "accuracy") -> tuple[str, ...]:
    delta = "Δacc" if score_name == "accuracy" else f"Δ {score_name}"
    return ("method", "n", f"{score_name} %", "macro-F1 %", "LoRA params", f"{delta} vs {baseline} (pp)", "95% CI",
            "W/T/L")



def setting_rows(setting: SettingSummary, baseline: str = BASELINE) -> list[list[str]]:
    rows = []
    has_base = baseline in setting.methods
    for m in setting.methods.values():
        name = f"{m.method} (reference)" if m.method in REFERENCE_METHODS else m.method
        row = [name, str(m.n), fmt_mean_std(m.acc), fmt_mean_std(m.f1), fmt_params(m)]
        if m.method == baseline:
            row += ["(reference)", "", ""]
        elif not has_base or m.paired is None or m.paired.n == 0:
            row += [f"n/a (no {baseline} run of these seeds)", "n/a", "n/a"]
        else:
            pairs = f" (n={m.paired.n})" if m.paired.n != m.n else ""
            row += [_num(m.paired.mean, sign=True) + pairs, fmt_ci(m.paired), "/".join(map(str, m.wtl or ()))]
        rows.append(row)
    return rows


POOLED_HEADER = ("method", "settings", "pairs", "pooled mean Δacc (pp)", "pooled 95% CI",
                 "setting-level mean Δacc [95% CI]", "W/T/L (pairs)", "settings: CI>0 / CI∋0 / CI<0",
                 "after Holm: >0 / <0")


def _setting_level_cell(stats: PairedStats | None) -> str:
    if stats is None or stats.n == 0:
        return "n/a"
    if stats.n < 2:
        return f"{_num(stats.mean, sign=True)} (1 setting: no CI)"
    return f"{_num(stats.mean, sign=True)} {fmt_ci(stats)}"


def pooled_rows(pooled: Sequence[PooledSummary]) -> list[list[str]]:
    rows = []
    for p in pooled:
        extra = f" ({p.no_ci} without CI)" if p.no_ci else ""
        rows.append([p.method, str(p.settings), str(p.stats.n), _num(p.stats.mean, sign=True), fmt_ci(p.stats),
                     _setting_level_cell(p.setting_level), "/".join(map(str, p.wtl)),
                     f"{p.above} / {p.contains} / {p.below}{extra}", f"{p.holm_above} / {p.holm_below}"])
    return rows


# ---------------------------------------------------------------------------------------- plots
def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
    return path


def plot_setting(setting: SettingSummary, path: str | os.PathLike, baseline: str = BASELINE) -> Path:
    """Accuracy by method: one point per seed, mean ± std as an error bar, the baseline's mean dashed."""
    plt = _pyplot()
    methods = list(setting.methods.values())
    fig, ax = plt.subplots(figsize=(1.3 + 1.0 * len(methods), 3.8), constrained_layout=True)
    for i, m in enumerate(methods):
        k = len(m.acc)
        offsets = np.linspace(-0.18, 0.18, k) if k > 1 else np.zeros(k)
        ax.scatter(i + offsets, m.acc, s=14, alpha=0.55, color="tab:gray", zorder=2)
        std = _std(m.acc)
        ax.errorbar(i, _mean(m.acc), yerr=std if math.isfinite(std) else None, fmt="o", capsize=5,
                    color="tab:red" if m.method == baseline else "tab:blue", zorder=3)
    base = setting.methods.get(baseline)
    if base is not None and base.acc:
        ax.axhline(_mean(base.acc), ls="--", lw=1, color="tab:red", alpha=0.6, label=f"{baseline} mean")
        ax.legend(loc="best", fontsize=8)
    ax.set_xticks(range(len(methods)), [m.method for m in methods], rotation=30, ha="right")
    ax.set_ylabel(f"test {setting.score_name} (%)")
    ax.set_title(f"{setting.label} (mean ± std, dots = seeds)", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    dest = _save(fig, Path(path))
    plt.close(fig)
    return dest


PAIRED_AXIS_CLIP = 5.0


def plot_paired(settings: Sequence[SettingSummary], path: str | os.PathLike,
                baseline: str = BASELINE) -> Path | None:
    """One panel per method: Δacc vs the baseline with its 95% CI for every setting."""
    methods = sorted({m.method for s in settings for m in s.compared.values()
                      if m.method != baseline and m.paired is not None and m.paired.n > 0}, key=method_sort_key)
    if not methods:
        return None
    plt = _pyplot()
    cols = min(3, len(methods))
    rows = math.ceil(len(methods) / cols)
    height = max(2.5, 0.32 * len(settings) + 1.3)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols + 1.5, height * rows), sharex=True, sharey=True,
                             squeeze=False, constrained_layout=True)
    ys = np.arange(len(settings))[::-1]
    # One diverged run can stretch a CI over ±100 pp and flatten every other setting to a dot: the axis
    # shows at most ±CLIP pp and a clipped interval is drawn to the edge with an arrow.
    clip = PAIRED_AXIS_CLIP
    for ax, method in zip(axes.flat, methods):
        for y, s in zip(ys, settings):
            m = s.methods.get(method)
            if m is None or m.paired is None or m.paired.n == 0:
                continue
            st = m.paired
            color = {1: "tab:green", -1: "tab:red", 0: "tab:blue", None: "tab:gray"}[st.side]
            mean = float(np.clip(st.mean, -clip, clip))
            if st.n >= 2:
                # clamped into the axis, so an interval wholly beyond the edge is a point on it
                lo, hi = min(max(st.lo, -clip), clip), max(min(st.hi, clip), -clip)
                ax.errorbar(mean, y, xerr=[[mean - lo], [hi - mean]], fmt="o", capsize=3, color=color)
                for edge, bound in ((-clip, st.lo), (clip, st.hi)):
                    if (bound < -clip and edge < 0) or (bound > clip and edge > 0):
                        ax.annotate("", xy=(edge, y), xytext=(edge * 0.8, y),
                                    arrowprops={"arrowstyle": "->", "color": color})
            else:
                ax.plot(mean, y, "o", mfc="none", color=color)
        ax.axvline(0, color="black", lw=0.8)
        ax.set_xlim(-clip * 1.05, clip * 1.05)
        ax.set_title(method, fontsize=10)
        ax.set_xlabel(f"Δ accuracy vs {baseline} (pp), 95% CI")
        ax.tick_params(axis="x", labelbottom=True)
        ax.grid(axis="x", alpha=0.3)
        ax.set_yticks(ys, [s.label for s in settings], fontsize=8)
    for ax in list(axes.flat)[len(methods):]:
        ax.set_visible(False)
    fig.suptitle(f"paired differences to {baseline} (green: CI > 0, red: CI < 0, hollow: one seed; "
                 f"axis clipped at ±{clip:g} pp, arrows mark clipped intervals)", fontsize=10)
    dest = _save(fig, Path(path))
    plt.close(fig)
    return dest


# -------------------------------------------------------------------------------------- LR sweep
@dataclass
class SweepRow:
    dataset: str
    target_set: str
    rank: int
    lr: float
    acc: list[float]
    chosen: bool = False
    method: str = "uniform"
    #: sweep runs at this lr that diverged (no record): they make the rate ineligible
    diverged: int = 0
    #: sweep runs at this lr that failed otherwise (out of memory, a crash) or never finished (a time limit, a
    #: killed machine) and have no record: the rate was never scored, so no rate of this method in this setting
    #: is chosen until it has been
    failed: int = 0
    #: validation (or test) examples one run was scored on, the fewest among the runs; 0 = not recorded
    examples: int = 0


def _lr_of(rec: dict[str, Any]) -> float | None:
    lr = rec.get("lr")
    if lr is None and isinstance(rec.get("hparams"), dict):
        lr = rec["hparams"].get("lr")
    return None if lr is None else float(lr)


def summarize_sweep(runs: Sequence[dict[str, Any]], problems: list[str] | None = None,
                    diverged: Iterable[str] = (), unfinished: Iterable[str] = ()) -> list[SweepRow]:
    """Test score per (dataset, target set, r̄, method, lr); the best mean of each (setting, method)
    is ``chosen`` (the smaller lr on a tie). ``diverged`` are keys of sweep runs whose training
    diverged (they leave no record): a rate at which any seed diverged is never chosen.
    ``unfinished`` are keys of sweep runs that failed otherwise or never finished and left no record (see
    :func:`~adarank.compare.records.unfinished_keys`): a method with one has no choice in that setting,
    since the rate it never scored might have been its best."""
    problems = problems if problems is not None else []
    cells: dict[tuple[str, str, int, str, float], list[float]] = defaultdict(list)
    examples: dict[tuple[str, str, int, str, float], int] = {}
    for rec in runs:
        lr = _lr_of(rec)
        if lr is None:
            problems.append(f"sweep record {rec.get('_file', '?')}: no learning rate recorded")
            continue
        key = (str(rec["dataset"]), str(rec["target_set"]), int(rec["rank"]), str(rec["method"]), lr)
        cells[key].append(_pp(score_of(rec)))
        n = rec.get("test_examples")
        n = int(n) if isinstance(n, (int, float)) and n > 0 else 0
        examples[key] = min(examples.get(key, n), n)
    # run keys name the dataset by its slug; a user's file is named by its path in the records
    named = {dataset_slug(str(rec["dataset"])): str(rec["dataset"]) for rec in runs}

    def count(keys: Iterable[str]) -> dict[tuple[str, str, int, str, float], int]:
        found: dict[tuple[str, str, int, str, float], int] = defaultdict(int)
        for key in keys:
            parsed = parse_sweep_key(key)
            if parsed is not None:
                found[(named.get(parsed[0], parsed[0]), *parsed[1:])] += 1
        return found

    failed, lost = count(diverged), count(unfinished)
    rows = [SweepRow(k[0], k[1], k[2], k[4], v, method=k[3], diverged=failed.get(k, 0), failed=lost.get(k, 0),
                     examples=examples[k]) for k, v in cells.items()]
    rows += [SweepRow(k[0], k[1], k[2], k[4], [], method=k[3], diverged=failed.get(k, 0), failed=lost.get(k, 0))
             for k in dict.fromkeys([*failed, *lost]) if k not in cells]
    rows.sort(key=lambda r: (*_setting_sort_key((r.dataset, r.target_set, r.rank)), method_sort_key(r.method), r.lr))
    incomplete = {(r.dataset, r.target_set, r.rank, r.method) for r in rows if r.failed}
    best: dict[tuple[str, str, int, str], SweepRow] = {}
    for r in rows:  # ascending lr: on a tie the smaller lr stays chosen
        if r.diverged or not r.acc or (r.dataset, r.target_set, r.rank, r.method) in incomplete:
            continue
        k = (r.dataset, r.target_set, r.rank, r.method)
        if k not in best or _mean(r.acc) > _mean(best[k].acc):
            best[k] = r
    for r in best.values():
        r.chosen = True
    return rows


#: largest relative difference in trainable LoRA parameters a comparison with the baseline accepts
PARITY_TOLERANCE = 0.01
#: methods whose budget rule is documented to spend less than the baseline (reported, not refused)
UNDER_SPENDING = ("adarank-floor",)


@dataclass
class ParityGap:
    setting: str
    method: str
    params: float
    baseline_params: float

    @property
    def relative(self) -> float:
        return self.params / self.baseline_params - 1.0


def parameter_gaps(settings: Sequence[SettingSummary], baseline: str = BASELINE,
                   tolerance: float = PARITY_TOLERANCE) -> list[ParityGap]:
    """Methods whose mean trainable LoRA parameters differ from the baseline's by more than
    ``tolerance`` in some setting: "the same number of trainable parameters" does not hold there.
    AdaLoRA is judged by its final (pruned) count."""
    gaps = []
    for st in settings:
        base = st.methods.get(baseline)
        if base is None or not base.params:
            continue
        ref = _mean(base.params)
        for name, m in st.compared.items():
            counts = [x for x in (m.params or []) if not math.isnan(x)]
            if name == baseline or not counts or ref <= 0:
                continue
            gap = ParityGap(st.label, name, _mean(counts), ref)
            if abs(gap.relative) > tolerance:
                gaps.append(gap)
    return gaps


def parity_lines(settings: Sequence[SettingSummary], baseline: str = BASELINE) -> list[str]:
    gaps = parameter_gaps(settings, baseline)
    md = ["### Parameter parity", "",
          f"Trainable LoRA parameters of each method against {baseline}'s, per setting; a difference over "
          f"{PARITY_TOLERANCE:.0%} means the comparison is not at equal parameters. "
          + ", ".join(UNDER_SPENDING) + " spends less by design (the floor of each share) and is reported, not "
          "refused.", ""]
    if not gaps:
        return md + [f"Every method is within {PARITY_TOLERANCE:.0%} of {baseline} in every setting.", ""]
    rows = [[g.setting, g.method, f"{g.params:,.0f}", f"{g.baseline_params:,.0f}", f"{100 * g.relative:+.2f} %",
             "under-spend (documented)" if g.method in UNDER_SPENDING else "NOT at equal parameters"] for g in gaps]
    return md + _table(("setting", "method", "params", f"{baseline} params", "difference", "reading"), rows) + [""]


# -------------------------------------------------------------------------------------- the report
def _provenance_lines(provenance: dict[str, Any]) -> list[str]:
    names = {"card": "Hardware", "command": "Command", "commit": "Commit", "date": "Date", "seeds": "Seeds"}
    lines = []
    for key in PROVENANCE_FIELDS:
        value = provenance.get(key)
        if value is None or value == "" or value == []:
            value = PLACEHOLDER
        elif isinstance(value, (list, tuple)):
            value = ", ".join(map(str, value))
        if key == "command" and value != PLACEHOLDER:
            value = f"`{value}`"
        lines.append(f"- **{names[key]}**: {value}")
    for key, value in provenance.items():
        if key not in PROVENANCE_FIELDS and value not in (None, ""):
            lines.append(f"- **{key}**: {value}")
    return lines


def record_dates(runs: Sequence[dict[str, Any]]) -> str | None:
    """The UTC day, or first and last day, of the records' own ``timestamp`` fields.

    A report describes when its runs ran, not when it was printed; records without a readable
    timestamp are counted in the text rather than guessed. None when no record has one.
    """
    days: set[str] = set()
    undated = 0
    for rec in runs:
        try:
            stamp = _dt.datetime.fromisoformat(str(rec["timestamp"]))
        except (KeyError, TypeError, ValueError):
            undated += 1
            continue
        if stamp.tzinfo is not None:
            stamp = stamp.astimezone(_dt.timezone.utc)
        days.add(stamp.date().isoformat())
    if not days:
        return None
    first, last = min(days), max(days)
    text = first if first == last else f"{first} to {last}"
    return text + (f" ({undated} record(s) without a timestamp)" if undated else "")


def infer_provenance(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """What the records themselves say: devices, commits, seeds, the days they ran; no command."""
    def distinct(key: str) -> str | None:
        values = sorted({str(r[key]) for r in runs if r.get(key) not in (None, "")})
        return ", ".join(values) if values else None

    return {"card": distinct("device"), "command": None, "commit": distinct("grid_commit"),
            "date": record_dates(runs), "seeds": sorted({int(r["seed"]) for r in runs}) or None}


def _hparams_lines(runs: Sequence[dict[str, Any]]) -> list[str]:
    sets = {json.dumps(r.get("hparams"), sort_keys=True) for r in runs if r.get("hparams") is not None}
    if not sets:
        return []
    if len(sets) == 1:
        return [f"- **Training hyper-parameters** (all runs): `{next(iter(sets))}`"]
    dicts = [json.loads(s) for s in sets]
    keys = sorted({k for d in dicts for k in (d or {})})
    varying = [k for k in keys if len({json.dumps((d or {}).get(k)) for d in dicts}) > 1]
    return [f"- **Training hyper-parameters**: {len(sets)} different sets among the runs; varying: "
            + ", ".join(varying)]


def _loss_path_lines(runs: Sequence[dict[str, Any]]) -> list[str]:
    """Which training-loss path the runs took, and the largest disagreement their first-batch checks saw."""
    paths = Counter(str(r.get("loss_logits") or "full (not recorded)") for r in runs if r.get("steps"))
    if not paths or set(paths) == {"full (not recorded)"}:
        return []
    gaps = [abs(c[k] - c["full"]) / max(abs(c["full"]), 1e-12) for r in runs
            if isinstance(c := r.get("loss_check"), dict) and "full" in c for k in c if k not in ("full", "rows")]
    checked = (f"; first-batch checks recorded by {len(gaps)} run(s), largest relative difference {max(gaps):.1e}"
               if gaps else "")
    return ["- **Training loss**: " + ", ".join(f"{n} run(s) {p}" for p, n in sorted(paths.items())) + checked]


def _versions_line(runs: Sequence[dict[str, Any]]) -> list[str]:
    parts = []
    for key in ("model", "torch", "transformers", "peft"):
        values = sorted({str(r[key]) for r in runs if r.get(key)})
        if values:
            shown = ", ".join(Path(v).name if key == "model" else v for v in values)
            parts.append(f"{key} {shown}")
    return [f"- **Software / model**: {'; '.join(parts)}"] if parts else []


def _seed_offset_lines(settings: Sequence[SettingSummary], baseline: str) -> list[str]:
    rows = [o for o in seed_offsets(settings, baseline) if o.stats.n >= 2]
    if not rows:
        return []
    return [f"### Is any seed of {baseline} special?", "",
            f"Per setting, each seed's {baseline} accuracy minus the mean of its other seeds (pp; collapsed runs "
            "left out), averaged over the settings with a 95% CI. An ordinary seed is near 0. A seed that also "
            "chose the learning rate on the same split sits above 0; it enters each mean above as 1 of n "
            "seeds.", ""] + _table(
        ("seed", "settings", "mean offset (pp)", "95% CI"),
        [[str(o.seed), str(o.stats.n), _num(o.stats.mean, sign=True), fmt_ci(o.stats)] for o in rows]) + [""]


def _holm_lines(settings: Sequence[SettingSummary]) -> list[str]:
    rows = holm_survivors(settings)
    if not rows:
        return []
    return ["### Settings whose CI excludes zero, before and after Holm's correction", "",
            "p: two-sided paired t-test (p < 0.05 exactly when the 95% CI excludes 0); Holm p: adjusted over "
            "the method's settings. A setting is a finding only when its Holm p is below 0.05.", ""] + _table(
        ("method", "setting", "Δacc (pp)", "95% CI", "p", "Holm p", "survives"),
        [[h.method, h.setting, _num(h.stats.mean, sign=True), fmt_ci(h.stats), f"{h.p:.3f}", f"{h.p_holm:.3f}",
          "yes" if h.survives else "no"] for h in rows]) + [""]


def overview_lines(settings: Sequence[SettingSummary], unfinished: dict[tuple[str, str, int], str],
                   baseline: str = BASELINE) -> list[str]:
    """One table of every method's paired Δ in every setting, settings as columns: the matrix a reader
    otherwise rebuilds by hand from the per-setting tables (and, in doing so, can mis-copy).

    A cell is bold when its CI survives Holm's correction, computed over the complete settings only, as in
    the Holm table; an incomplete setting's column says so and has no bold cell.
    """
    if len(settings) < 2 or not any(baseline in s.methods for s in settings):
        return []
    complete = [s for s in settings if (s.dataset, s.target_set, s.rank) not in unfinished]
    found = {(h.method, h.setting) for h in holm_survivors(complete) if h.survives}
    one_target_set = len({s.target_set for s in settings}) == 1
    header = ["method"]
    for s in settings:
        label = f"{s.dataset} · r̄={s.rank}" if one_target_set else s.label
        header.append(label + (" (incomplete)" if (s.dataset, s.target_set, s.rank) in unfinished else ""))
    score_row = [f"{baseline}: {', '.join(sorted({s.score_name for s in settings}))} %"]
    score_row += [fmt_mean_std(s.methods[baseline].acc) if baseline in s.methods else "–" for s in settings]
    rows = [score_row]
    for name in sorted({m for s in settings for m in s.methods if m != baseline}, key=method_sort_key):
        row = [f"{name} (reference)" if name in REFERENCE_METHODS else name]
        for s in settings:
            m = s.methods.get(name)
            if m is None or m.paired is None or m.paired.n == 0:
                row.append("–")
                continue
            cell = _num(m.paired.mean, sign=True) + (f" {fmt_ci(m.paired)}" if m.paired.n >= 2 else "")
            cell = f"**{cell}**" if (name, s.label) in found else cell
            row.append(cell + (f" (n={m.paired.n})" if m.paired.n != s.methods[baseline].n else ""))
        rows.append(row)
    where = f" (target set: {settings[0].target_set})" if one_target_set else ""
    return ["### Every setting at a glance", "",
            f"Each method's paired Δ vs {baseline} (pp) with its 95% CI, as in the per-setting tables below{where}; "
            "bold: the CI stays off zero after Holm's correction over the method's complete settings; n where "
            f"fewer pairs than {baseline}'s seeds; –: not run there.", ""] + _table(header, rows) + [""]


def _rel(path: Path, base: Path) -> str:
    return Path(os.path.relpath(path.resolve(), base.resolve())).as_posix()


def build_report(results: str | os.PathLike, *, out: str | os.PathLike | None = None,
                 plots: str | os.PathLike | None = None, provenance: dict[str, Any] | None = None,
                 title: str = "AdaRank vs uniform LoRA ranks: fine-tuning benchmark",
                 baseline: str = BASELINE, methods: Sequence[str] | None = None) -> str:
    """The Markdown section for the grid in ``results``; plots go to ``plots`` (default results/plots).

    ``provenance`` holds card, command, commit, date and seeds (any left out are inferred from the
    records where possible, else printed as a placeholder to fill). When ``out`` is given the
    Markdown is written there (atomically) and image links are relative to it. ``baseline`` is the
    method every other is paired with; ``methods`` (default: all in the records) restricts the
    report to those methods (the baseline is always kept). The learning-rate sweep and the plan
    heatmaps are part of the uniform-baseline report only.
    """
    results = Path(results)
    plots_dir = Path(plots) if plots is not None else results / "plots"
    out_path = Path(out) if out is not None else None
    link_base = out_path.parent if out_path is not None else Path.cwd()
    loaded = load_records(results / "runs")
    if methods is not None:
        keep = {*methods, baseline}
        loaded.runs = [r for r in loaded.runs if str(r.get("method")) in keep]
    main_report = baseline == BASELINE and methods is None
    sweeps = {on: load_records(results / folder / "runs") for on, folder in SWEEP_DIRS.items()} if main_report else {}
    sweeps = {on: rec for on, rec in sweeps.items() if rec.runs or rec.problems}
    sweep_runs = [r for rec in sweeps.values() for r in rec.runs]
    if not loaded.runs and not sweep_runs:
        raise AdaRankError(f"no run records in '{results / 'runs'}' (or a learning-rate sweep folder); "
                           "run the grid first")
    problems = list(loaded.problems) + [f"{SWEEP_DIRS[on]}/{p}" for on, rec in sweeps.items() for p in rec.problems]
    if baseline != BASELINE and not any(str(r.get("method")) == baseline for r in loaded.runs):
        raise AdaRankError(f"no run records of the baseline method {baseline!r} in '{results / 'runs'}'")
    settings = summarize(loaded.runs, problems, baseline)
    run_diverged = diverged_keys(results / "errors.jsonl")
    unfinished = excluded_settings(results, loaded.runs, run_diverged)
    pooled_runs = [r for r in loaded.runs if setting_key(r) not in unfinished]
    pooled_settings = [s for s in settings if (s.dataset, s.target_set, s.rank) not in unfinished]
    pooled = pool(pooled_settings)

    prov = infer_provenance(loaded.runs or sweep_runs)
    prov["date"] = record_dates(loaded.runs + sweep_runs)
    prov.update({k: v for k, v in (provenance or {}).items() if v not in (None, "")})
    md: list[str] = [f"## {title}", ""]
    md += _provenance_lines(prov)
    all_runs = loaded.runs + sweep_runs
    md += [f"- **Runs**: {len(loaded.runs)} grid records in {len(settings)} setting(s)"
           + (f", {len(sweep_runs)} learning-rate-sweep records" if sweep_runs else "")]
    md += _versions_line(all_runs) + _hparams_lines(loaded.runs) + _loss_path_lines(loaded.runs)
    md += ["", "How to read: accuracy and macro-F1 are on the test split, in percent, mean ± sample std over "
           "seeds; a generation setting whose task has another metric (chunk F1) names it in its table, and its Δ is "
           f"in points of that metric. Δacc = method − {baseline} accuracy in percentage points (pp), paired by seed over the seeds both "
           "have (n shown when fewer than the method's runs). 95% CI = mean ± t(0.975, n−1)·sd/√n (Student t, "
           f"needs n ≥ 2). W/T/L counts seeds where the method is ahead by ≥ {TIE_PP:g} pp (W), within "
           f"|Δ| < {TIE_PP:g} pp (T) or behind by ≥ {TIE_PP:g} pp (L). LoRA params: LoRA factor parameters, mean "
           "over seeds, with (smallest–largest run) where the runs differ; a→b = trained → left after rank pruning (AdaLoRA). Rows marked (reference), the base model untrained and full fine-tuning, show how far LoRA is from its bounds; they are left out of the pooled tables, Holm's correction, parameter parity and the collapse check.", ""]

    md += overview_lines(settings, unfinished, baseline)
    if settings:
        plots_dir.mkdir(parents=True, exist_ok=True)
    for s in settings:
        md += [f"### {s.label}", ""] + _table(setting_header(baseline, s.score_name), setting_rows(s, baseline)) + [""]
        why = unfinished.get((s.dataset, s.target_set, s.rank))
        if why:
            md += [f"**Incomplete setting** ({why}): shown here as it stands, and left out of the pooled tables, "
                   "Holm's correction and the seed offsets until every method has every seed at a rate from a "
                   "complete sweep.", ""]
        png = plot_setting(s, plots_dir / f"acc__{s.slug}.png", baseline)
        md += [f"![{s.score_name} by method, {s.label}]({_rel(png, link_base)})", ""]

    if settings:
        md += parity_lines(settings, baseline)
    if pooled:
        md += ["### Pooled over all settings", "",
               f"Every (setting, seed) difference to {baseline} counts as one observation. This pools unlike settings "
               "(datasets, target sets and budgets with different spreads) and pairs that share seeds and data, so "
               "the pooled CI is a summary, not a test. The setting-level column takes one observation per setting "
               "(its mean paired difference) and a Student-t 95% CI over the settings, so that no setting counts "
               "for more than one; with few settings that CI is wide by construction. The second-last column "
               "counts settings by where their own 95% CI lies, and the last counts those that stay off zero after "
               "Holm's correction over the method's settings (family-wise 5%).", ""]
        md += _table(POOLED_HEADER, pooled_rows(pooled)) + [""]
        if unfinished:
            md += ["Left out as incomplete: " + "; ".join(
                f"{d} · {t} · r̄={k}" for d, t, k in sorted(unfinished, key=_setting_sort_key)) + ".", ""]
        md += _holm_lines(pooled_settings)
        png = plot_paired(pooled_settings, plots_dir / "paired_diff.png", baseline)
        if png is not None:
            md += [f"![paired differences to {baseline}]({_rel(png, link_base)})", ""]
        collapses = find_collapses(settings)
        diverged = sorted(k for k in run_diverged
                          if methods is None or k.split("__")[3] in {*methods, baseline})
        if diverged:
            md += ["### Diverged runs", "",
                   "These runs stopped on a non-finite training loss and left no record, so they are missing "
                   "from every table (the grid does not retry them unless asked, to avoid re-rolling until a "
                   "seed trains): " + ", ".join(f"`{k}`" for k in diverged) + ".", ""]
        if collapses:
            md += ["### Collapsed runs, and the pooled table without them", "",
                   f"A run counts as collapsed when its accuracy is more than {COLLAPSE_PP:g} pp below the median of "
                   "its setting (all methods and seeds): training diverged, which says little about rank "
                   "allocation but dominates any mean it enters. The tables above keep them.", ""]
            md += _table(("setting", "method", "seed", "accuracy %", "setting median %"),
                         [[c.setting, c.method, str(c.seed), _num(c.acc), _num(c.median)] for c in collapses])
            kept = pool(summarize(drop_collapses(pooled_runs, collapses), baseline=baseline))
            md += ["", "Pooled again without the collapsed runs (every pair that had one is dropped); a "
                   "sensitivity check, not a replacement:", ""]
            md += _table(POOLED_HEADER, pooled_rows(kept)) + [""]
        md += _seed_offset_lines(summarize(drop_collapses(pooled_runs, collapses), baseline=baseline), baseline)

    heatmaps = sorted((results / "plans").glob("*.png")) if main_report and (results / "plans").is_dir() else []
    if heatmaps:
        md += ["### AdaRank plans (scored once per target set on the base model, r̄=8, joint budget)", ""]
        for src in heatmaps:
            dest = plots_dir / f"plan__{src.stem}.png"
            plots_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)
            md += [f"- {src.stem}: ![plan {src.stem}]({_rel(dest, link_base)}) (plan: `{_rel(src.with_suffix('.json'), link_base)}`)"]
        md += [""]

    for on, rec in sweeps.items():
        if not rec.runs:
            continue
        folder = results / SWEEP_DIRS[on]
        rows = summarize_sweep(rec.runs, problems, diverged_keys(folder / "errors.jsonl"),
                               unfinished_keys(folder))
        scored = ("validation score (10 % of the training set held out)" if on == "validation"
                  else "test score")
        swept = sorted({r.method for r in rows}, key=method_sort_key)
        md += [f"### Learning-rate sweep ({', '.join(swept)}; scored on the {on} split)", "",
               f"{scored.capitalize()} per method and learning rate, mean ± std over the sweep seeds; ✓ marks "
               f"each method's best mean in each setting (the smaller lr on a tie; a rate where a run diverged "
               f"is never chosen); no record: runs that failed otherwise (out of memory, a crash) or were asked for "
               f"and never finished (a time limit, a killed process). Folder: `{SWEEP_DIRS[on]}/`.", ""]
        from .sweep_edges import edge_extensions
        from .sweep_margins import close_choices

        edges, close = edge_extensions(rows), close_choices(rows)

        def mark(r: SweepRow) -> str:
            cell = (r.dataset, r.target_set, r.rank, r.method)
            notes = [word for word, found in (("edge", cell in edges), ("close", cell in close)) if found]
            return "" if not r.chosen else "✓" + (f" ({', '.join(notes)})" if notes else "")

        md += _table(("dataset", "target set", "r̄", "method", "lr", "n", "score %", "diverged", "no record", "chosen"),
                     [[r.dataset, r.target_set, str(r.rank), r.method, format(r.lr, "g"), str(len(r.acc)),
                       fmt_mean_std(r.acc) if r.acc else "–", str(r.diverged), str(r.failed), mark(r)]
                      for r in rows])
        md += [""]
        lost: dict[tuple[str, str, int, str], list[str]] = {}
        for r in rows:  # sorted by setting, method, then lr
            if r.failed:
                lost.setdefault((r.dataset, r.target_set, r.rank, r.method), []).append(format(r.lr, "g"))
        if lost:
            md += [f"**{len(lost)} sweep(s) are incomplete**: a run failed (out of memory, a crash; "
                   f"`{SWEEP_DIRS[on]}/errors.jsonl`) or never finished (a time limit, a killed machine; "
                   f"`{SWEEP_DIRS[on]}/invocations.jsonl`) and left no record, so no rate is chosen for that "
                   "method in that setting until the sweep is run again: "
                   + ", ".join(f"{d} · {t} · r̄={k} · {m} ({', '.join(lrs)} missing)"
                               for (d, t, k, m), lrs in lost.items())
                   + ".", ""]
        if close:
            md += [f"**{len(close)} of {sum(r.chosen for r in rows)} choices won their sweep by at most one standard "
                   "error of the score that chose them** (marked \"close\"; the binomial error of an accuracy over "
                   "the scored examples, a rough guide for F1): the runner-up rate may be as good, and a method "
                   "compared at such a choice carries the sweep's noise. "
                   + ", ".join(f"{d} · {t} · r̄={k} · {m}: {c.lr:g} over {c.runner_up:g} by {c.margin_pp:.2f} pp "
                               f"(SE {c.se_pp:.2f})" for (d, t, k, m), c in sorted(close.items()))
                   + ".", ""]
        if edges:
            md += [f"**{len(edges)} of {sum(r.chosen for r in rows)} choices sit on an edge of their swept rates** "
                   "(marked \"edge\"): the best rate may lie beyond, so those methods may be under-tuned. "
                   "`--extend-edges N` on the sweep runs one more rate past each: "
                   + ", ".join(f"{d} · {t} · r̄={k} · {m} → {lr:g}" for (d, t, k, m), lr in sorted(edges.items()))
                   + ".", ""]

    if problems:
        md += ["### Problems found while reading the records", ""] + [f"- {p}" for p in problems] + [""]
    text = "\n".join(md).rstrip() + "\n"
    if out_path is not None:
        atomic_write_text(out_path, text)
    return text


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog or "python -m adarank.compare.report",
                                description="Markdown tables, paired differences with 95% CIs, and plots from "
                                            "the records of adarank.compare.grid.")
    p.add_argument("--results", required=True, help="the grid's results folder (holds runs/, plans/, lr-sweep-validation/ or lr-sweep/)")
    p.add_argument("--out", default=None, help="Markdown file to write (default: print to stdout)")
    p.add_argument("--plots", default=None, help="folder for the PNG plots (default: RESULTS/plots)")
    p.add_argument("--card", default=None, help="provenance: the accelerator the runs used "
                   "(default: the records' device field)")
    p.add_argument("--command", default=None, help="provenance: the grid command that produced the runs")
    p.add_argument("--commit", default=None, help="provenance: the code commit (default: the records' grid_commit)")
    p.add_argument("--date", default=None, help="provenance: the date of the runs (default: the first and "
                   "last day of the records' timestamps)")
    p.add_argument("--seeds", default=None, help="provenance: the seeds (default: those in the records)")
    p.add_argument("--baseline", default=BASELINE, help="the method every other is paired with "
                   "(default: %(default)s; e.g. adarank-floor to compare variants with the paper's rule)")
    p.add_argument("--methods", default=None, help="comma-separated methods to report (default: all in the records)")
    p.add_argument("--title", default=None, help="the section title")
    return p


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    args = build_parser(prog).parse_args(argv)
    provenance = {k: getattr(args, k) for k in PROVENANCE_FIELDS}
    try:
        methods = split_list(args.methods) if args.methods else None
        extra = {"title": args.title} if args.title else {}
        text = build_report(args.results, out=args.out, plots=args.plots, provenance=provenance,
                            baseline=args.baseline, methods=methods, **extra)
    except AdaRankError as exc:
        print(f"adarank.compare.report: error: {exc}", file=sys.stderr)
        return 2
    if args.out:
        print(f"report written to {args.out}")
    else:
        print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
