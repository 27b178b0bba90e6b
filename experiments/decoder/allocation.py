"""How each method split its LoRA budget on the decoder study: attention (q/k/v/o) vs MLP (gate/up/down), and depth.

    python experiments/decoder/allocation.py RESULTS [PLOTS]

RESULTS is the study's records folder (``decoder/`` of records.jsonl.gz, unpacked; experiments/regenerate.py does
this), PLOTS the folder for the figure (default RESULTS/plots).

Reads the committed run records (each stores the ranks every module ended with), prints a Markdown table of the
share of trainable LoRA parameters per module type (attention vs MLP; q/k/v/o where a target set has no MLP) and
the largest rank (what vLLM-style servers size adapter slots by), per dataset, and writes PLOTS/allocation.png: parameters per block, one panel per dataset,
one line per method, and below it the split between the seven module types, one stacked bar per method. The
record of each method's lowest seed (0 where it ran) stands for it (the plan methods' ranks depend neither on the
seed nor on the dataset; EVA's and AdaLoRA's depend on both).
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

from adarank.compare.methods import REFERENCE_METHODS

ATTENTION = ("q_proj", "k_proj", "v_proj", "o_proj")
MLP = ("gate_proj", "up_proj", "down_proj")


def module_shapes(plan: dict) -> dict[str, tuple[int, int]]:
    return {m["name"]: tuple(m["shape"]) for m in plan["modules"]}


def main(results: Path, plots: Path | None = None) -> None:
    plan = json.loads((results / "plans" / "all-linear.json").read_text())
    shapes = module_shapes(plan)
    blocks = {m["name"]: m["block"] for m in plan["modules"]}
    by_dataset: dict[str, dict[str, dict]] = defaultdict(dict)
    records = [json.loads(path.read_text()) for path in sorted((results / "runs").glob("*.json"))]
    for rec in sorted(records, key=lambda r: int(r["seed"])):
        if rec["method"] in REFERENCE_METHODS:  # no LoRA ranks: the base model untrained, full fine-tuning
            continue
        # another target set is another setting (the all-linear plan holds every module's shape, so it sizes theirs)
        ts = "" if rec.get("target_set", "all-linear") == "all-linear" else f" · {rec['target_set']}"
        by_dataset[f"{rec['dataset']}{ts} · r̄={rec['rank']}"].setdefault(rec["method"], rec)
    per_block: dict[str, dict[str, dict[int, float]]] = defaultdict(dict)
    per_type: dict[str, dict[str, dict[str, float]]] = defaultdict(dict)
    for dataset, records in by_dataset.items():
        # a set without MLP modules (attention-only) is split by projection instead: attention vs MLP says nothing
        has_mlp = any(n.rsplit(".", 1)[-1] in MLP for r in records.values() for n in r["ranks"])
        groups = (ATTENTION, MLP) if has_mlp else tuple((k,) for k in ATTENTION)
        heads = ["attention q/k/v/o", "MLP gate/up/down"] if has_mlp else [k.removesuffix("_proj") for k in ATTENTION]
        print(f"\n**{dataset}**\n")
        print(f"| method | LoRA params | {' | '.join(heads)} | largest rank | smallest rank |")
        print("|---" * (len(heads) + 4) + "|")
        for method, rec in records.items():
            cost = {n: r * sum(shapes[n]) for n, r in rec["ranks"].items()}
            total = sum(cost.values())
            depth: dict[int, float] = defaultdict(float)
            kinds: dict[str, float] = defaultdict(float)
            for n, c in cost.items():
                depth[blocks[n]] += c / total
                kinds[n.rsplit(".", 1)[-1]] += c / total
            shares = " | ".join(f"{100 * sum(kinds.get(k, 0.0) for k in g):.1f} %" for g in groups)
            ranks = list(rec["ranks"].values())
            print(f"| {method} | {total:,} | {shares} | {max(ranks)} | {min(ranks)} |")
            per_block[dataset][method] = dict(depth)
            per_type[dataset][method] = dict(kinds)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(per_block), figsize=(7 * len(per_block), 9), squeeze=False)
    every = sorted({m for methods in per_block.values() for m in methods})
    line_colour = dict(zip(every, plt.cm.tab10.colors))  # one colour per method in every panel
    for ax, (dataset, methods) in zip(axes[0], sorted(per_block.items())):
        for method in sorted(methods):
            depth = methods[method]
            xs = sorted(depth)
            ax.plot(xs, [100 * depth[x] for x in xs], marker="o", ms=3, label=method, color=line_colour[method])
        ax.set_xlabel("block")
        ax.set_title(f"{dataset}: budget by depth")
        ax.legend(fontsize=7, ncol=2)
    axes[0][0].set_ylabel("share of LoRA parameters (%)")
    # the split between module types, attention first (blues) then MLP (reds), one stacked bar per method
    colours = dict(zip((*ATTENTION, *MLP), (*plt.cm.Blues([0.35, 0.5, 0.65, 0.8]), *plt.cm.Reds([0.4, 0.6, 0.8]))))
    for ax, (dataset, methods) in zip(axes[1], sorted(per_type.items())):
        names = sorted(methods)
        left = [0.0] * len(names)
        for kind in (*ATTENTION, *MLP):
            widths = [100 * methods[m].get(kind, 0.0) for m in names]
            ax.barh(names, widths, left=left, color=colours[kind], label=kind)
            left = [a + b for a, b in zip(left, widths)]
        ax.set_xlim(0, 100)
        ax.set_xlabel("share of LoRA parameters (%)")
        ax.set_title(f"{dataset}: budget by module type")
    axes[1][0].legend(fontsize=7, ncol=7, loc="upper center", bbox_to_anchor=(0.5, -0.15))
    fig.suptitle("Gemma 3 270M, params budget (all-linear unless a panel names its target set)")
    fig.tight_layout()
    out = (plots if plots is not None else results / "plots") / "allocation.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    print(f"\nfigure: {out.parent.name}/{out.name}")  # relative, so the table does not depend on where it ran


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: python experiments/decoder/allocation.py RESULTS [PLOTS]")
    main(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) == 3 else None)
