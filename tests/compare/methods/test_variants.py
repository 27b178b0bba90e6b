"""Plan variants: each allocates from its own scored plan only; file names and task probes."""

from __future__ import annotations

import pytest

from adarank.compare.methods import VARIANT_METHODS, plan_for_method, sample_texts, variant_of
from adarank.errors import AdaRankError

from method_plans import variant_plan, scored  # noqa: F401  (fixture)


@pytest.mark.parametrize("method", VARIANT_METHODS)
def test_variant_methods_allocate_exactly_from_their_own_plan_only(scored, method):
    variant = variant_of(method)
    own = variant_plan(scored, variant.signal, variant.task_texts)
    plan = plan_for_method(method, own, 4, seed=0)
    assert sum(plan.ranks.values()) == 4 * len(scored.modules)
    assert plan.ranks == plan_for_method("adarank-exact", scored, 4, seed=0).ranks  # same scores, same rule
    with pytest.raises(AdaRankError, match=f"method '{method}' needs a plan scored with signal"):
        plan_for_method(method, scored if method != "adarank-task64" else variant_plan(scored, "fisher"), 4, seed=0)
    with pytest.raises(AdaRankError, match="needs a plan scored with signal 'disagreement' on built-in probes"):
        plan_for_method("adarank-exact", own, 4, seed=0)
    for free in ("uniform", "random", "linear-depth"):  # they use the modules, not the scores
        assert plan_for_method(free, own, 4, seed=0).ranks == plan_for_method(free, scored, 4, seed=0).ranks


def test_variant_file_names_and_task_probe_samples():
    assert variant_of("adarank-exact").file_stem("value") == "value"
    assert variant_of("adarank-fisher").file_stem("value") == "value__fisher"
    assert variant_of("adarank-task64").file_stem("attention", "mr") == "attention__task64__mr"
    with pytest.raises(AdaRankError, match="per dataset"):
        variant_of("adarank-task64").file_stem("attention")
    texts = [f"text {i}" for i in range(100)]
    small, large = sample_texts(texts, 16), sample_texts(texts, 64)
    assert large[:16] == small and len(set(large)) == 64 and large != texts[:64]
    assert sample_texts(texts, 64) == large  # seeded
    with pytest.raises(AdaRankError, match="only 100"):
        sample_texts(texts, 256)
