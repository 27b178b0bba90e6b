"""Stability of AdaRank's importance scores : seeds, trial count K, probe sets and tasks.

all-MiniLM-L6-v2 (packaged) by default, ``--targets all-linear`` (36 modules). Every configuration
is one ``predict_ranks`` call; its plan (per-module trial scores and means) is cached as
``OUT/cache/<signal>_<probes>_k<K>_s<seed>.json``, so a re-run is instant and a killed run resumes.
Score vectors (``score_mean`` per module) are compared by Spearman correlation, and plans by
re-allocating the stored scores with ``RankPlan.reallocate`` at r̄ = 8, rule exact, joint group
(fraction of modules whose rank differs, mean |Δrank|). Comparisons:

* seeds 0..4 at K = 5, built-in probes: all pairs (mean, min);
* K in {1, 2, 3, 5, 10} vs K = 20 of seed 0 and vs K = 20 of seed 100. Noise is seeded per
  (module, trial), so the K = 20 seed-0 run contains the K-trial run's draws as its first K trials:
  that reference overlaps with what it is compared to; the seed-100 reference does not;
* built-in sentences vs N texts of each task's training set (TREC, MR, SUBJ; one fixed shuffle
  per task, so smaller N are prefixes of larger N);
* tasks against each other at the same N, and each N against the task's largest N.

The disagreement signal is the subject; fisher (seconds per run) is computed for the same
configurations. Writes OUT/stability.json, OUT/stability_k.png and OUT/stability_probes.png.

Usage: python benchmarks/stability.py --data-dir /work/shared/datasets/nltk_data [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from itertools import combinations
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from scipy.stats import spearmanr

from adarank.compare.methods import sample_texts
from adarank.plan import Budget, ModuleEntry, RankPlan

TASKS = {"trec": "trec-coarse", "mr": "mr", "subj": "subj"}
PLAN_RULE = {"rule": "exact", "groups": "joint"}


# ------------------------------------------------------------------------------ pure helpers

def plan_from_scores(values: Sequence[float], names: Sequence[str] | None = None) -> RankPlan:
    """A RankPlan over hand-made score means (square 384x384 modules); for tests and checks."""
    names = list(names) if names is not None else [f"m{i}" for i in range(len(values))]
    modules = [ModuleEntry(name=n, type="linear", block=None, shape=[384, 384], scores=[float(v)],
                           score_mean=float(v), score_std=0.0, rank=0) for n, v in zip(names, values)]
    return RankPlan.allocate("hand-made", {}, modules, Budget(rank=8, **PLAN_RULE))


def plan_ranks(plan: RankPlan, rank: float = 8) -> dict[str, int]:
    """Module name -> rank at average ``rank`` (exact rule, joint group), from the stored scores."""
    return plan.reallocate(rank=rank, **PLAN_RULE).ranks


def compare_plans(a: RankPlan, b: RankPlan, rank: float = 8) -> dict[str, float]:
    """Spearman of the two score-mean vectors and how the r̄-plan changes between them."""
    names = [m.name for m in a.modules]
    mean_b = {m.name: m.score_mean for m in b.modules}
    if set(names) != set(mean_b):
        raise ValueError("the two plans score different modules")
    va = np.array([m.score_mean for m in a.modules])
    vb = np.array([mean_b[n] for n in names])
    ra, rb = plan_ranks(a, rank), plan_ranks(b, rank)
    diff = np.array([abs(ra[n] - rb[n]) for n in names])
    rho = float(spearmanr(va, vb).statistic) if np.ptp(va) > 0 and np.ptp(vb) > 0 else float("nan")
    return {"spearman": rho, "frac_changed": float((diff > 0).mean()), "modules_changed": int((diff > 0).sum()),
            "mean_abs_rank_diff": float(diff.mean()), "max_abs_rank_diff": int(diff.max())}


def compare_scores(a: Sequence[float], b: Sequence[float], rank: float = 8) -> dict[str, float]:
    """:func:`compare_plans` on two plain score vectors (same module order)."""
    return compare_plans(plan_from_scores(a), plan_from_scores(b), rank)


def summarise(results: Sequence[dict[str, float]]) -> dict[str, float]:
    """Mean and worst case over several comparisons."""
    rho = [r["spearman"] for r in results]
    return {"pairs": len(results), "spearman_mean": float(np.mean(rho)), "spearman_min": float(np.min(rho)),
            "frac_changed_mean": float(np.mean([r["frac_changed"] for r in results])),
            "mean_abs_rank_diff_mean": float(np.mean([r["mean_abs_rank_diff"] for r in results])),
            "mean_abs_rank_diff_max": float(np.max([r["mean_abs_rank_diff"] for r in results]))}


def smallest_stable(by_size: dict[int, dict[str, float]], threshold: float = 0.5) -> int | None:
    """Smallest size from which on every larger size has mean |Δrank| <= threshold (None if none)."""
    found = None
    for size in sorted(by_size, reverse=True):
        if by_size[size]["mean_abs_rank_diff"] > threshold:
            break
        found = size
    return found


def cache_key(signal: str, probes: str, trials: int, seed: int) -> str:
    return f"{signal}_{probes}_k{trials}_s{seed}"


# ------------------------------------------------------------------------------- the runner

class Runner:
    """Scores one configuration at a time, through the JSON cache."""

    def __init__(self, out: Path, model_path: str, targets: str, probe_texts: dict[str, list[str] | None],
                 device: str = "cpu"):
        self.cache = out / "cache"
        self.cache.mkdir(parents=True, exist_ok=True)
        self.model_path, self.targets, self.probe_texts, self.device = model_path, targets, probe_texts, device
        self.model = self.tok = None
        self.seconds: dict[str, float] = {}
        self.fresh_seconds = 0.0

    def _load(self) -> None:
        if self.model is None:
            import torch

            from adarank.loading import load_model, load_tokenizer

            if self.device == "cpu":
                torch.set_num_threads(2)
            # the product's loader: a decoder LLM is scored with its LM head (its logits), as `adarank predict` does
            self.model = load_model(self.model_path, device=self.device).eval()
            self.tok = load_tokenizer(self.model_path)

    def cached(self, signal: str, probes: str, trials: int, seed: int) -> bool:
        return (self.cache / f"{cache_key(signal, probes, trials, seed)}.json").is_file()

    def plan(self, signal: str, probes: str, trials: int, seed: int) -> RankPlan:
        key = cache_key(signal, probes, trials, seed)
        path = self.cache / f"{key}.json"
        if path.is_file():
            data = json.loads(path.read_text())
            self.seconds[key] = data["seconds"]
            return RankPlan.from_dict(data["plan"])
        from adarank.predict import predict_ranks
        from adarank.scoring import ScoreConfig

        self._load()
        start = time.perf_counter()
        plan = predict_ranks(self.model, self.tok, rank=8, targets=self.targets, probes=self.probe_texts[probes],
                             rule="exact", groups="joint", score_config=ScoreConfig(trials=trials, seed=seed),
                             signal=signal, progress=False)
        seconds = time.perf_counter() - start
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"key": key, "seconds": seconds, "plan": plan.to_dict()}))
        os.replace(tmp, path)
        self.seconds[key] = seconds
        self.fresh_seconds += seconds
        print(f"  {key}: {seconds:.1f} s ({plan.settings['probe_examples']} probes)", flush=True)
        return plan


# ------------------------------------------------------------------------------------ study

def study(run: Runner, signals: list[str], seeds: list[int], ks: list[int], k_ref: int, other_seed: int,
          ns: list[int], extra_ns: list[int], budget_s: float, t0: float,
          small_ns: Sequence[int] = ()) -> dict[str, Any]:
    res: dict[str, Any] = {}
    labels = ["builtin"] + [f"{t}-n{n}" for n in ns for t in TASKS]

    # Order: the cheap and the essential first, so a killed run leaves the most useful cache.
    for sig in signals:
        for seed in seeds:
            run.plan(sig, "builtin", 5, seed)
    for sig in signals:
        for seed in (seeds[0], other_seed):
            run.plan(sig, "builtin", k_ref, seed)
    for sig in signals:
        for k in ks:
            run.plan(sig, "builtin", k, seeds[0])
    for sig in signals:
        for label in labels[1:]:
            run.plan(sig, label, 5, seeds[0])
    for sig in signals:  # small N: only for "how small can N be", not in the heatmap
        for n in small_ns:
            for t in TASKS:
                run.plan(sig, f"{t}-n{n}", 5, seeds[0])

    # Optional larger N: only where the projected time (1.5 x linear in N from the largest N so far) fits.
    done_ns = list(ns)
    for n in extra_ns:
        ok = True
        for t in TASKS:
            for sig in signals:
                if run.cached(sig, f"{t}-n{n}", 5, seeds[0]):
                    run.plan(sig, f"{t}-n{n}", 5, seeds[0])  # loads it, and counts its seconds as spent
                    continue
                prev = run.seconds.get(cache_key(sig, f"{t}-n{max(done_ns)}", 5, seeds[0]), 0.0)
                projected = prev * n / max(done_ns) * 1.5
                # Spent = scoring seconds of every configuration so far, cached ones included, so a
                # re-run from the cache takes the same decisions (and stays instant).
                if sum(run.seconds.values()) + projected > budget_s:
                    print(f"  skipping {sig} {t}-n{n}: projected {projected:.0f} s exceeds the time budget", flush=True)
                    ok = False
                    continue
                run.plan(sig, f"{t}-n{n}", 5, seeds[0])
        have = all(run.cached(sig, f"{t}-n{n}", 5, seeds[0]) for t in TASKS for sig in signals)
        if have:
            done_ns.append(n)
            labels += [f"{t}-n{n}" for t in TASKS]
        res.setdefault("skipped_n", [])
        if not ok or not have:
            res["skipped_n"].append(n)
    all_ns = sorted(done_ns)
    # Partially finished extra N (some tasks only) still go into the N-per-task comparison.
    partial = {t: [n for n in extra_ns if n not in done_ns and run.cached("disagreement", f"{t}-n{n}", 5, seeds[0])]
               for t in TASKS}

    for sig in signals:
        r: dict[str, Any] = {}
        base = {s: run.plan(sig, "builtin", 5, s) for s in seeds}
        pairs = {f"{a}-{b}": compare_plans(base[a], base[b]) for a, b in combinations(seeds, 2)}
        r["seeds"] = {"k": 5, "probes": "builtin", "pairs": pairs, **summarise(list(pairs.values()))}

        ref_same = run.plan(sig, "builtin", k_ref, seeds[0])
        ref_other = run.plan(sig, "builtin", k_ref, other_seed)
        by_k = {k: run.plan(sig, "builtin", k, seeds[0]) for k in sorted(set(ks + [5]))}
        vs_same = {k: compare_plans(p, ref_same) for k, p in by_k.items()}
        vs_other = {k: compare_plans(p, ref_other) for k, p in by_k.items()}
        vs_other[k_ref] = compare_plans(ref_same, ref_other)
        # The overlap check: trial k of a K-run is trial k of the K_ref run (same seed).
        overlap = max(abs(a - b) for k, p in by_k.items() for m, mr in zip(p.modules, ref_same.modules)
                      for a, b in zip(m.scores, mr.scores[:k]))
        r["k"] = {"reference_k": k_ref, "vs_same_seed_reference": vs_same, "vs_other_seed_reference": vs_other,
                  "other_seed": other_seed, "max_abs_trial_diff_vs_reference_prefix": overlap,
                  "smallest_k_same_seed": smallest_stable(vs_same), "smallest_k_other_seed": smallest_stable(vs_other)}

        plans = {lab: run.plan(sig, lab, 5, seeds[0]) for lab in labels}
        mat = [[compare_plans(plans[a], plans[b])["spearman"] for b in labels] for a in labels]
        r["probes"] = {"labels": labels, "spearman_matrix": mat,
                       "builtin_vs_task": {lab: compare_plans(plans["builtin"], plans[lab]) for lab in labels[1:]}}
        r["tasks"] = {f"n{n}": {f"{a}-{b}": compare_plans(plans[f"{a}-n{n}"], plans[f"{b}-n{n}"])
                                for a, b in combinations(TASKS, 2)} for n in all_ns}
        by_n: dict[str, Any] = {}
        for t in TASKS:
            sizes = sorted(set(small_ns) | set(all_ns) | {n for n in partial[t] if run.cached(sig, f"{t}-n{n}", 5, seeds[0])})
            top = max(sizes)
            ref = plans.get(f"{t}-n{top}") or run.plan(sig, f"{t}-n{top}", 5, seeds[0])
            cmp_n = {n: compare_plans(plans.get(f"{t}-n{n}") or run.plan(sig, f"{t}-n{n}", 5, seeds[0]), ref)
                     for n in sizes}
            by_n[t] = {"reference_n": top, "vs_reference": cmp_n, "smallest_n": smallest_stable(cmp_n)}
        r["n"] = by_n
        res[sig] = r

    if "fisher" in signals and "disagreement" in signals:
        res["disagreement_vs_fisher"] = {lab: compare_plans(run.plan("disagreement", lab, 5, seeds[0]),
                                                            run.plan("fisher", lab, 5, seeds[0])) for lab in labels}
    return res


# ------------------------------------------------------------------------------------ plots

def plot(res: dict[str, Any], out: Path) -> None:
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    d = res["disagreement"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    k = d["k"]
    for key, label, style in (("vs_other_seed_reference", f"vs K={k['reference_k']}, seed {k['other_seed']} (independent)", "o-"),
                              ("vs_same_seed_reference", f"vs K={k['reference_k']}, seed 0 (overlapping trials)", "s--")):
        rows = {int(x): v for x, v in k[key].items()}  # JSON turns the K keys into strings
        xs = sorted(rows)
        axes[0].plot(xs, [rows[x]["spearman"] for x in xs], style, label=label)
        axes[1].plot(xs, [rows[x]["mean_abs_rank_diff"] for x in xs], style, label=label)
    floor = d["seeds"]
    axes[0].axhline(floor["spearman_mean"], color="grey", lw=0.8, ls=":", label="seed-to-seed at K=5 (mean)")
    axes[1].axhline(floor["mean_abs_rank_diff_mean"], color="grey", lw=0.8, ls=":", label="seed-to-seed at K=5 (mean)")
    axes[1].axhline(0.5, color="red", lw=0.8, ls=":", label="threshold 0.5")
    for ax, title in zip(axes, ("Spearman of module scores", "mean |Δrank| at r̄=8 (exact, joint)")):
        ax.set_xscale("log")
        ax.set_xticks(sorted(int(x) for x in k["vs_other_seed_reference"]))
        ax.set_xticklabels(sorted(int(x) for x in k["vs_other_seed_reference"]))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("trials K")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7)
    name = Path(res.get("setup", {}).get("model", "model")).name
    fig.suptitle(f"AdaRank disagreement, {name}, {res.get('setup', {}).get('targets', 'all-linear')}, 24 built-in probes")
    fig.tight_layout()
    fig.savefig(out / "stability_k.png", dpi=120)
    plt.close(fig)

    sigs = [s for s in ("disagreement", "fisher") if s in res]
    fig, axes = plt.subplots(1, len(sigs), figsize=(6.2 * len(sigs), 5.2), squeeze=False)
    for ax, sig in zip(axes[0], sigs):
        labels, mat = res[sig]["probes"]["labels"], np.array(res[sig]["probes"]["spearman_matrix"])
        low = float(np.floor(mat.min() * 100) / 100)
        im = ax.imshow(mat, vmin=low, vmax=1.0, cmap="viridis")
        ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(len(labels)), labels, fontsize=8)
        for i in range(len(labels)):
            for j in range(len(labels)):
                ax.text(j, i, f"{mat[i, j]:.3f}", ha="center", va="center", fontsize=6,
                        color="white" if mat[i, j] < (low + 1) / 2 else "black")
        ax.set_title(f"{sig}: Spearman between probe sets (K=5, seed 0)", fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(out / "stability_probes.png", dpi=120)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="benchmarks/results/stability")
    ap.add_argument("--data-dir", default="/work/shared/datasets/nltk_data")
    ap.add_argument("--targets", default="all-linear")
    ap.add_argument("--model", default=None, help="model path (default: the packaged all-MiniLM-L6-v2)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--ks", type=int, nargs="+", default=[1, 2, 3, 5, 10])
    ap.add_argument("--k-ref", type=int, default=20)
    ap.add_argument("--other-seed", type=int, default=100)
    ap.add_argument("--n", type=int, nargs="+", default=[16, 64], help="task-probe sizes always run")
    ap.add_argument("--small-n", type=int, nargs="*", default=[4, 8], help="extra small sizes for the N-vs-largest-N comparison only")
    ap.add_argument("--extra-n", type=int, nargs="*", default=[256], help="sizes run only if the time budget allows")
    ap.add_argument("--signals", nargs="+", default=["disagreement", "fisher"])
    ap.add_argument("--budget-s", type=float, default=1500, help="scoring-seconds budget (all runs, cached included) that gates --extra-n")
    ap.add_argument("--sample-seed", type=int, default=0)
    ap.add_argument("--device", default="cpu", help="cpu (2 threads, as on the development machine) or cuda")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    from adarank.compare.data import load_dataset_spec
    from adarank.loading import default_model_path

    model_path = args.model or str(default_model_path())
    probe_texts: dict[str, list[str] | None] = {"builtin": None}
    for short, spec in TASKS.items():
        texts = load_dataset_spec(spec, data_dir=args.data_dir).train_texts
        for n in args.small_n + args.n + args.extra_n:
            probe_texts[f"{short}-n{n}"] = sample_texts(texts, n, args.sample_seed)
    run = Runner(out, model_path, args.targets, probe_texts, args.device)
    res = study(run, args.signals, args.seeds, args.ks, args.k_ref, args.other_seed, args.n, args.extra_n,
                args.budget_s, t0, args.small_n)
    res["setup"] = {"model": model_path, "targets": args.targets, "rank": 8, **PLAN_RULE, "seeds": args.seeds,
                    "ks": args.ks, "k_ref": args.k_ref, "other_seed": args.other_seed, "n": args.n, "small_n": args.small_n,
                    "extra_n": args.extra_n, "sample_seed": args.sample_seed, "device": args.device, "threads": 2 if args.device == "cpu" else None,
                    "threshold_mean_abs_rank_diff": 0.5}
    res["seconds"] = {"per_run": dict(sorted(run.seconds.items())), "fresh_scoring_total": run.fresh_seconds,
                      "wall_this_invocation": time.perf_counter() - t0}
    (out / "stability.json").write_text(json.dumps(res, indent=1))
    plot(res, out)
    print(f"wrote {out / 'stability.json'} ({time.perf_counter() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    sys.exit(main())
