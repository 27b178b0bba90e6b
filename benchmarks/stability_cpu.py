"""How stable are AdaRank's importance scores? Spearman correlations on CPU (issue 6, first pass).

all-MiniLM-L6-v2 (packaged), all 36 linear modules, disagreement signal, pair mode, 24 built-in
probes unless stated. Compares score vectors (per-module means) across:
  * seeds 0..4 at K = 5;
  * K in {1, 2, 3, 5, 10} against K = 20 of an independent seed (100) -- the K-trial means of seed 0
    are read off one K = 20 run of seed 0, since trial k's noise does not depend on K;
  * probe sets: built-in sentences vs N = 16 and N = 64 training texts of TREC, MR and SUBJ;
and, for each, how many modules' ranks change at r̄ = 8 (exact rule, joint group), re-allocated from
the stored scores. Writes OUT/stability_cpu.json and OUT/stability_cpu.png.

Usage: python benchmarks/stability_cpu.py --data-dir ../shared/datasets/nltk_data [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from itertools import combinations
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr
from transformers import AutoModel, AutoTokenizer

from adarank.allocation import allocate_ranks
from adarank.bench.data import load_dataset_spec
from adarank.loading import default_model_path
from adarank.probes import builtin_probes, probes_from_texts, tokenize_probes
from adarank.scoring import ScoreConfig, score_modules
from adarank.targets import select_targets


def compare(a: np.ndarray, b: np.ndarray, rank: int = 8) -> dict:
    """Spearman of two score vectors and how the joint exact r̄-plan changes between them."""
    ra = np.array(allocate_ranks(list(a), rank, rule="exact").ranks)
    rb = np.array(allocate_ranks(list(b), rank, rule="exact").ranks)
    return {"spearman": float(spearmanr(a, b).statistic), "modules_changed": int((ra != rb).sum()),
            "mean_abs_rank_diff": float(np.abs(ra - rb).mean())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--out", default="benchmarks/results/stability")
    args = ap.parse_args()
    torch.set_num_threads(2)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = default_model_path()
    model, tok = AutoModel.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)
    targets = select_targets(model, "all-linear")
    timings: dict[str, float] = {}

    def run(name: str, probes, trials: int, seed: int) -> np.ndarray:
        start = time.perf_counter()
        res, _ = score_modules(model, tokenize_probes(tok, probes), targets, ScoreConfig(trials=trials, seed=seed),
                               progress=False)
        timings[name] = round(time.perf_counter() - start, 1)
        print(f"{name}: {timings[name]} s", flush=True)
        return np.array([r.scores for r in res])  # modules x trials

    builtin = builtin_probes()
    k20 = run("seed0-K20", builtin, 20, 0)
    ref = run("seed100-K20", builtin, 20, 100).mean(1)
    seeds = {0: k20[:, :5].mean(1)}
    for s in range(1, 5):
        seeds[s] = run(f"seed{s}-K5", builtin, 5, s).mean(1)
    result: dict = {"model": "sentence-transformers/all-MiniLM-L6-v2", "modules": len(targets), "timings_s": timings}
    result["across_seeds_K5"] = [dict(pair=[i, j], **compare(seeds[i], seeds[j])) for i, j in combinations(seeds, 2)]
    result["K_vs_K20_seed100"] = {k: compare(k20[:, :k].mean(1), ref) for k in (1, 2, 3, 5, 10, 20)}
    result["K_vs_K20_same_seed"] = {k: compare(k20[:, :k].mean(1), k20.mean(1)) for k in (1, 2, 3, 5, 10)}
    probe_vectors = {"builtin": seeds[0]}
    for task in ("trec-coarse", "mr", "subj"):
        texts = load_dataset_spec(task, data_dir=args.data_dir).train_texts
        for n in (16, 64):
            sample = random.Random(0).sample(texts, n)
            probe_vectors[f"{task}-{n}"] = run(f"{task}-N{n}-K5", probes_from_texts(sample, task), 5, 0).mean(1)
    names = list(probe_vectors)
    result["probe_sets"] = {f"{a} vs {b}": compare(probe_vectors[a], probe_vectors[b]) for a, b in combinations(names, 2)}
    matrix = np.array([[compare(probe_vectors[a], probe_vectors[b])["spearman"] for b in names] for a in names])
    (out / "stability_cpu.json").write_text(json.dumps(result, indent=2))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 5), constrained_layout=True)
    ks = [1, 2, 3, 5, 10, 20]
    axes[0].plot(ks, [result["K_vs_K20_seed100"][k]["spearman"] for k in ks], "o-", label="Spearman vs K=20 (seed 100)")
    axes[0].plot(ks, [result["K_vs_K20_seed100"][k]["mean_abs_rank_diff"] for k in ks], "s--", label="mean |Δrank| at r̄=8")
    axes[0].set_xscale("log")
    axes[0].set_xticks(ks, [str(k) for k in ks])
    axes[0].set_xlabel("trials K (seed 0)")
    axes[0].legend()
    axes[0].set_title("stability across K")
    im = axes[1].imshow(matrix, vmin=0, vmax=1, cmap="viridis")
    axes[1].set_xticks(range(len(names)), names, rotation=45, ha="right")
    axes[1].set_yticks(range(len(names)), names)
    for (i, j), v in np.ndenumerate(matrix):
        axes[1].text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="white" if v < 0.6 else "black")
    fig.colorbar(im, ax=axes[1])
    axes[1].set_title("Spearman between probe sets (K=5, seed 0)")
    fig.savefig(out / "stability_cpu.png", dpi=110)
    print(json.dumps({k: v for k, v in result.items() if k != "probe_sets"}, indent=1))


if __name__ == "__main__":
    main()
