"""Check every learning-rate sweep under a folder against the runs its logged grid calls asked for.

Why: a grid call now logs the keys it was asked for, and a sweep missing one chooses no rate. Calls logged before
the grid did so name no keys, so their sweeps are checked here instead, from each call's argv
(``invocations.jsonl``): every run asked for must have a record or have diverged.

    python experiments/decoder-checks/sweep_completeness_check.py --results DIR

(DIR: the studies' archives unpacked with experiments/archive.py)
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from adarank.compare.grid import build_parser, options_from_args, plan_grid
from adarank.compare.records import SWEEP_DIRS, diverged_keys


def asked_for(invocations: Path) -> set[str]:
    """The run keys the logged sweep calls asked for, rebuilt from their argv by the grid's own option parsing
    (as a dry run, which checks no folder named there: they were the GPU's)."""
    keys: set[str] = set()
    parser = build_parser()
    for line in invocations.read_text(encoding="utf-8").splitlines():
        args = parser.parse_args(json.loads(line)["argv"])
        args.dry_run = True
        opts = options_from_args(args)
        if opts.lrs is None:
            continue
        keys |= {r.key for r in plan_grid(opts.datasets, opts.target_sets, opts.ranks, opts.methods, opts.seeds,
                                          opts.lrs)}
    return keys


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--results", required=True, help="the folder holding the grids' results")
    root = Path(p.parse_args().results)
    for invocations in sorted(root.glob("**/invocations.jsonl")):
        folder = invocations.parent
        if folder.name not in SWEEP_DIRS.values():
            continue
        have = {f.stem for f in (folder / "runs").glob("*.json")}
        missing = asked_for(invocations) - have - diverged_keys(folder / "errors.jsonl")
        cells = Counter("__".join(k.split("__")[:3]) for k in missing)
        print(f"{folder}: {len(have)} records; "
              + (f"missing {len(missing)}: " + ", ".join(f"{c} ({n})" for c, n in sorted(cells.items()))
                 if missing else "complete"))


if __name__ == "__main__":
    main()
