"""Which settings of a grid have every run they were meant to have.

A grid cut short (a time limit, a killed job) leaves settings in which some methods have fewer seeds than
others. Their paired differences are real, but pooling them beside complete settings would let the pooled and
setting-level readings, and a decision fixed in advance on them, move with how far a grid got. So the report
shows such a setting on its own and leaves it out of every pooled reading until it is complete.

A setting is complete when every allocation method in it has a run, or a diverged run, for every seed that any
of them has, and none of them took its learning rate from a sweep that lost a run. The references (the base
model, full fine-tuning) are run on their own seeds and do not count.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .methods import REFERENCE_METHODS
from .records import SWEEP_DIRS, parse_run_key, parse_sweep_key, unfinished_keys

SettingKey = tuple[str, str, int]  # (dataset, target set, r̄)


def setting_key(rec: dict[str, Any]) -> SettingKey:
    return str(rec["dataset"]), str(rec["target_set"]), int(rec["rank"])


def missing_runs(runs: Sequence[dict[str, Any]], diverged: Iterable[str] = ()) -> dict[SettingKey, dict[str, list[int]]]:
    """Per incomplete setting, each allocation method's missing seeds: ``{setting: {method: [seed, ...]}}``.

    ``diverged`` are run keys whose training diverged (they leave no record but are a result, so they count as
    present). Settings are matched to those keys by dataset slug."""
    from .data import dataset_slug

    seeds: dict[SettingKey, dict[str, set[int]]] = defaultdict(lambda: defaultdict(set))
    slugs: dict[tuple[str, str, int], SettingKey] = {}
    for rec in runs:
        if str(rec["method"]) in REFERENCE_METHODS:
            continue
        key = setting_key(rec)
        seeds[key][str(rec["method"])].add(int(rec["seed"]))
        slugs[(dataset_slug(key[0]), key[1], key[2])] = key
    for run_key in diverged:
        parsed = parse_run_key(run_key)
        if parsed is None:
            continue
        key = slugs.get(parsed[:3])
        if key is not None and parsed[3] in seeds[key]:
            seeds[key][parsed[3]].add(parsed[4])
    out: dict[SettingKey, dict[str, list[int]]] = {}
    for key, by_method in seeds.items():
        wanted = set().union(*by_method.values())
        gaps = {m: sorted(wanted - have) for m, have in by_method.items() if wanted - have}
        if gaps:
            out[key] = gaps
    return out


def describe(missing: dict[str, list[int]]) -> str:
    """``"adarank-floor seed 0; eva seeds 1, 3"``: what one incomplete setting lacks."""
    return "; ".join(f"{m} seed{'s' if len(s) > 1 else ''} {', '.join(map(str, s))}" for m, s in missing.items())


def incomplete_sweeps(sweep_dir: Path) -> dict[tuple[str, str, int, str], list[float]]:
    """(dataset slug, target set, r̄, method) -> the rates whose sweep run in ``sweep_dir`` failed or never
    finished and left no record (:func:`~adarank.compare.records.unfinished_keys`): the sweeps that choose no rate
    until run again."""
    out: dict[tuple[str, str, int, str], list[float]] = {}
    for key in sorted(unfinished_keys(sweep_dir)):
        parsed = parse_sweep_key(key)
        if parsed is not None and parsed[4] not in out.get(parsed[:4], []):
            out.setdefault(parsed[:4], []).append(parsed[4])
    return {cell: sorted(rates) for cell, rates in out.items()}


def rates_unvouched(results: Path, runs: Sequence[dict[str, Any]]) -> dict[SettingKey, list[str]]:
    """Per setting, the methods whose evaluation runs in ``runs`` took their rate from a sweep (under ``results``)
    that has since lost a run (:func:`incomplete_sweeps`): a grid resumed after the loss holds such runs back,
    but records made before it, or with an earlier version, are there. Their setting is left out of the pooled
    readings like an incomplete one, until the sweep is finished."""
    from .data import dataset_slug

    lost = {cell for folder in SWEEP_DIRS.values() for cell in incomplete_sweeps(results / folder)}
    out: dict[SettingKey, list[str]] = {}
    for rec in runs:
        key, method = setting_key(rec), str(rec["method"])
        if (dataset_slug(key[0]), key[1], key[2], method) in lost and method not in out.get(key, []):
            out.setdefault(key, []).append(method)
    return out


def excluded_settings(results: Path, runs: Sequence[dict[str, Any]], diverged: Iterable[str] = ()) -> dict[SettingKey, str]:
    """The settings every pooled reading leaves out, each with why: missing seeds (:func:`missing_runs`) or rates
    from an incomplete sweep (:func:`rates_unvouched`)."""
    why: dict[SettingKey, list[str]] = defaultdict(list)
    for key, gaps in missing_runs(runs, diverged).items():
        why[key].append(f"missing: {describe(gaps)}")
    for key, methods in rates_unvouched(results, runs).items():
        why[key].append(f"rates from an incomplete sweep: {', '.join(methods)}")
    return {key: "; ".join(reasons) for key, reasons in why.items()}
