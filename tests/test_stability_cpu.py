"""The comparison helper of benchmarks/stability_cpu.py (no model runs here)."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "stability_cpu.py"


@pytest.fixture(scope="module")
def compare():
    spec = importlib.util.spec_from_file_location("stability_cpu", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.compare


def test_identical_vectors_agree_and_keep_the_plan(compare):
    a = np.array([3.0, 1.0, 4.0, 1.5, 9.0, 2.6])
    out = compare(a, a.copy())
    assert out == {"spearman": pytest.approx(1.0), "modules_changed": 0, "mean_abs_rank_diff": 0.0}


def test_reversed_order_is_anticorrelated_and_moves_ranks(compare):
    a = np.arange(1.0, 7.0)
    out = compare(a, a[::-1].copy())
    assert out["spearman"] == pytest.approx(-1.0)
    assert out["modules_changed"] >= 4 and out["mean_abs_rank_diff"] > 1
