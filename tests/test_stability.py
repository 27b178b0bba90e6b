"""The pure helpers of benchmarks/stability.py, on hand-made score vectors (no model runs)."""

import json

import numpy as np
import pytest
from conftest import load_benchmark


@pytest.fixture(scope="module")
def stab():
    return load_benchmark("stability")


SCORES = [3.0, 1.0, 4.0, 1.5, 9.0, 2.6, 5.3, 0.8]


def test_identical_vectors_correlate_fully_and_keep_every_rank(stab):
    out = stab.compare_scores(SCORES, list(SCORES))
    assert out["spearman"] == pytest.approx(1.0)
    assert out["modules_changed"] == 0 and out["frac_changed"] == 0.0
    assert out["mean_abs_rank_diff"] == 0.0 and out["max_abs_rank_diff"] == 0


def test_a_rescaled_vector_gives_the_same_plan(stab):
    out = stab.compare_scores(SCORES, [10 * v for v in SCORES])
    assert out["spearman"] == pytest.approx(1.0) and out["modules_changed"] == 0


def test_reversed_order_is_anticorrelated_and_moves_ranks(stab):
    a = np.arange(1.0, 9.0)
    out = stab.compare_scores(a, a[::-1])
    assert out["spearman"] == pytest.approx(-1.0)
    assert out["frac_changed"] > 0.5 and out["mean_abs_rank_diff"] > 1


def test_plans_are_matched_by_module_name_not_position(stab):
    names = [f"layer{i}" for i in range(len(SCORES))]
    a = stab.plan_from_scores(SCORES, names)
    b = stab.plan_from_scores(SCORES[::-1], names[::-1])  # same scores, listed backwards
    assert stab.compare_plans(a, b)["spearman"] == pytest.approx(1.0)
    with pytest.raises(ValueError):
        stab.compare_plans(a, stab.plan_from_scores(SCORES, [n + "x" for n in names]))


def test_ranks_use_the_exact_joint_budget(stab):
    ranks = stab.plan_ranks(stab.plan_from_scores(SCORES))
    assert sum(ranks.values()) == 8 * len(SCORES)  # exact rule spends the whole r̄ = 8 budget


def test_summarise_reports_mean_and_worst(stab):
    rows = [{"spearman": 1.0, "frac_changed": 0.0, "mean_abs_rank_diff": 0.0},
            {"spearman": 0.8, "frac_changed": 0.5, "mean_abs_rank_diff": 1.0}]
    s = stab.summarise(rows)
    assert s["spearman_mean"] == pytest.approx(0.9) and s["spearman_min"] == pytest.approx(0.8)
    assert s["mean_abs_rank_diff_max"] == 1.0 and s["pairs"] == 2


def test_smallest_stable_size_needs_every_larger_size_stable(stab):
    rows = {1: 0.4, 2: 0.7, 3: 0.3, 5: 0.2, 10: 0.0}
    assert stab.smallest_stable({k: {"mean_abs_rank_diff": v} for k, v in rows.items()}) == 3
    assert stab.smallest_stable({1: {"mean_abs_rank_diff": 0.9}, 2: {"mean_abs_rank_diff": 0.6}}) is None


def test_smaller_samples_are_prefixes_of_larger_ones(stab):
    texts = [f"text {i}" for i in range(100)]
    small, large = stab.sample_texts(texts, 16, seed=0), stab.sample_texts(texts, 64, seed=0)
    assert large[:16] == small and len(set(large)) == 64
    assert stab.sample_texts(texts, 16, seed=1) != small


def test_plot_writes_both_figures_from_a_results_dict(stab, tmp_path):
    cmp = {"spearman": 0.99, "frac_changed": 0.1, "modules_changed": 1, "mean_abs_rank_diff": 0.1, "max_abs_rank_diff": 1}
    labels = ["builtin", "trec-n16", "mr-n16"]
    res = {"disagreement": {
        "seeds": {"spearman_mean": 0.99, "mean_abs_rank_diff_mean": 0.2},
        "k": {"reference_k": 20, "other_seed": 100, "vs_same_seed_reference": {"1": cmp, "5": cmp},
              "vs_other_seed_reference": {"1": cmp, "5": cmp, "20": cmp}},
        "probes": {"labels": labels, "spearman_matrix": np.eye(3).clip(0.95).tolist()}}}
    stab.plot(json.loads(json.dumps(res)), tmp_path)
    assert (tmp_path / "stability_k.png").stat().st_size > 0 and (tmp_path / "stability_probes.png").stat().st_size > 0
