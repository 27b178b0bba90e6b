"""How far each allocation variant moves the ranks from the paper's plan (BENCHMARKS.md §4), before training.

Reads the scored plans of the benchmark grid (``grid/plans`` of experiments/minilm-allocation/records.jsonl.gz; score missing ones with
``adarank compare ... --methods <variant>`` or ``adarank.compare.grid.ensure_plans``) and prints a Markdown
table: per target set and variant, the ranks at r̄ = 8 (exact rule, joint budget), the summed absolute
rank difference to ``adarank-exact`` on the paper's plan, and the Spearman correlation of the scores.

Usage: python experiments/minilm-allocation/variant_plans.py --plans DIR [--rank 8]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from scipy.stats import spearmanr

from adarank.compare.methods import TRANSFORM_METHODS, VARIANT_METHODS, plan_for_method
from adarank.compare.methods import variant_of
from adarank.plan import RankPlan

DATASETS = ("trec-coarse", "mr", "subj")


def rows(plans: Path, target_set: str, rank: int) -> list[list[str]]:
    paper = RankPlan.load(plans / f"{target_set}.json")
    ref = plan_for_method("adarank-exact", paper, rank, 0).ranks
    paper_scores = [m.score_mean for m in paper.modules]

    def row(method: str, plan: RankPlan, stem: str, rho: str) -> list[str]:
        r = plan_for_method(method, plan, rank, 0).ranks
        return [target_set, method, f"`{stem}.json`", " ".join(map(str, r.values())),
                str(sum(abs(r[k] - ref[k]) for k in r)), rho]

    out = [row("adarank-exact", paper, target_set, "1")]
    out += [row(m, paper, target_set, "1 (same scores)") for m in TRANSFORM_METHODS]
    for method in VARIANT_METHODS:
        variant = variant_of(method)
        for dataset in DATASETS if variant.per_dataset else (None,):
            stem = variant.file_stem(target_set, dataset)
            path = plans / f"{stem}.json"
            if not path.is_file():
                continue
            plan = RankPlan.load(path)
            rho = spearmanr(paper_scores, [m.score_mean for m in plan.modules]).statistic
            out.append(row(method, plan, stem, f"{rho:.3f}"))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--plans", type=Path, required=True)
    ap.add_argument("--rank", type=int, default=8)
    args = ap.parse_args()
    print(f"| target set | method | plan | ranks at r̄ = {args.rank} (model order) | Σ\\|Δrank\\| vs adarank-exact "
          "| Spearman of scores vs paper |")
    print("|---|---|---|---|---|---|")
    for target_set in ("value", "attention"):
        for r in rows(args.plans, target_set, args.rank):
            print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
