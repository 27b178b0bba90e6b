"""The pilot's non-inferiority decision: oracle values, the fixed-sequence rule, its error rate and power."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from scipy import stats

from adarank.errors import AdaRankError
from adarank.pilot.decision import (
    MAX_SEEDS,
    NON_INFERIOR,
    NOT_SHOWN,
    NOT_TESTED,
    TOO_FEW,
    ArmResult,
    decide,
    seeds_needed,
)


def arm(name: str, scores, params: int = 1000, max_rank: int = 8) -> ArmResult:
    return ArmResult(name=name, label=name.replace("-", " "), trainable_params=params, max_rank=max_rank,
                     scores=dict(enumerate(scores)))


REF = arm("ref", [80.0, 82.0, 81.0, 79.0, 83.0], params=16000, max_rank=16)


def oracle(d: np.ndarray, margin: float, alpha: float) -> tuple[float, float, float]:
    """p and the (1-2α) CI from the textbook formulas, written out with numpy."""
    n = d.size
    se = d.std(ddof=1) / math.sqrt(n)
    t = (d.mean() + margin) / se
    p = stats.t.sf(t, n - 1)
    q = stats.t.ppf(1 - alpha, n - 1)
    return p, d.mean() - q * se, d.mean() + q * se


def test_one_arm_matches_the_hand_computed_paired_t() -> None:
    cheap = arm("cheap", [79.5, 81.8, 80.1, 79.4, 82.0])
    d = np.array([79.5 - 80, 81.8 - 82, 80.1 - 81, 79.4 - 79, 82.0 - 83])
    dec = decide(REF, [cheap], margin=1.0, alpha=0.05)
    step = dec.steps[0]
    p, lo, hi = oracle(d, 1.0, 0.05)
    assert step.n == 5
    assert step.mean_diff == pytest.approx(d.mean())
    assert step.p_value == pytest.approx(p, rel=1e-9)
    assert step.ci == pytest.approx((lo, hi), rel=1e-9)
    assert step.certifiable_margin == pytest.approx(-lo)
    assert step.status == (NON_INFERIOR if p < 0.05 else NOT_SHOWN)
    assert (step.status == NON_INFERIOR) == (lo > -1.0)  # the test and its bound agree
    assert dec.cheapest_non_inferior == ("cheap" if p < 0.05 else None)
    assert "fixed-sequence" in dec.procedure and "0.05" in dec.procedure and "-1 points" in dec.procedure


def test_pairing_uses_only_shared_seeds_and_reports_the_rest() -> None:
    ref = ArmResult("ref", "ref", 10, 4, {1: 70.0, 2: 72.0, 3: 71.0, 4: 69.0})
    other = ArmResult("other", "other", 5, 2, {2: 71.0, 3: 71.5, 4: 68.0, 9: 10.0})
    step = decide(ref, [other], margin=2.0).steps[0]
    d = np.array([71.0 - 72.0, 71.5 - 71.0, 68.0 - 69.0])
    assert step.n == 3
    assert step.mean_diff == pytest.approx(d.mean())
    assert step.p_value == pytest.approx(oracle(d, 2.0, 0.05)[0])
    assert any("other" in w and "1 seed" in w for w in decide(ref, [other], margin=2.0).warnings)


def test_fixed_sequence_stops_at_the_first_failure() -> None:
    good = arm("good", [80.1, 82.2, 80.9, 79.1, 83.0])     # ~ +0.06, tiny spread: non-inferior
    bad = arm("bad", [75.0, 78.0, 74.0, 76.0, 77.0])       # ~ -5: not shown
    cheap_good = arm("cheap-good", [80.0, 82.1, 81.0, 79.0, 83.1])  # would pass on its own
    dec = decide(REF, [good, bad, cheap_good], margin=1.0)
    assert [s.status for s in dec.steps] == [NON_INFERIOR, NOT_SHOWN, NOT_TESTED]
    assert dec.steps[2].p_value is None
    assert dec.steps[2].mean_diff == pytest.approx(0.04)   # still described, just not tested
    assert dec.cheapest_non_inferior == "good"
    assert decide(REF, [cheap_good], margin=1.0).steps[0].status == NON_INFERIOR
    # with all three passing, the cheapest is the last of the passed prefix
    dec2 = decide(REF, [good, cheap_good], margin=1.0)
    assert dec2.cheapest_non_inferior == "cheap-good"
    means = {a.name: a.mean() for a in (REF, good, cheap_good)}
    assert dec2.best == max(means, key=means.get)


def test_no_arm_passing_gives_none_and_best_is_the_reference() -> None:
    worse = arm("worse", [70.0, 71.0, 69.0, 72.0, 70.5])
    dec = decide(REF, [worse], margin=1.0)
    assert dec.cheapest_non_inferior is None and dec.best == "ref"
    assert dec.steps[0].seeds_needed is None  # the observed mean is below -margin: no seed count helps


def test_too_few_seeds_is_said_with_certifiable_margin_and_seeds_needed() -> None:
    noisy = arm("noisy", [80.5, 79.0, 83.5, 77.0, 84.0])  # mean diff ~ -0.1, large spread
    dec = decide(REF, [noisy], margin=1.0)
    step = dec.steps[0]
    d = np.array([0.5, -3.0, 2.5, -2.0, 1.0])
    _, lo, _ = oracle(d, 1.0, 0.05)
    assert step.status == NOT_SHOWN
    assert step.certifiable_margin == pytest.approx(-lo) and step.certifiable_margin > 1.0
    from statsmodels.stats.power import TTestPower
    effect = (d.mean() + 1.0) / d.std(ddof=1)
    expected = math.ceil(TTestPower().solve_power(effect_size=effect, alpha=0.05, power=0.8, alternative="larger"))
    assert step.seeds_needed == expected and step.seeds_needed > 5
    assert any("too few" in w and str(expected) in w for w in dec.warnings)
    # the promised power holds at that many seeds and not at one fewer
    power = TTestPower().power
    assert power(effect_size=effect, nobs=expected, alpha=0.05, alternative="larger") >= 0.8
    assert power(effect_size=effect, nobs=expected - 1, alpha=0.05, alternative="larger") < 0.8


def test_identical_differences_are_deterministic() -> None:
    shifted = arm("shifted", [s - 0.5 for s in REF.scores.values()])
    step = decide(REF, [shifted], margin=1.0).steps[0]
    assert step.status == NON_INFERIOR and step.p_value == 0.0
    assert step.ci == pytest.approx((-0.5, -0.5)) and step.certifiable_margin == pytest.approx(0.5)
    assert step.seeds_needed == 2
    far = arm("far", [s - 1.0 for s in REF.scores.values()])  # exactly at the boundary: H0 holds
    step = decide(REF, [far], margin=1.0).steps[0]
    assert step.status == NOT_SHOWN and step.p_value == 1.0 and step.seeds_needed is None
    assert seeds_needed(0.3, 0.0, 1.0, 0.05) == 2
    assert seeds_needed(0.0, 1e6, 1.0, 0.05) == MAX_SEEDS


def test_an_arm_with_one_paired_seed_stops_the_sequence() -> None:
    lonely = ArmResult("lonely", "lonely", 10, 2, {0: 80.0})
    after = arm("after", [80.0, 82.0, 81.0, 79.0, 83.0])
    dec = decide(REF, [lonely, after], margin=1.0)
    assert [s.status for s in dec.steps] == [TOO_FEW, NOT_TESTED]
    assert dec.steps[0].certifiable_margin is None and dec.cheapest_non_inferior is None
    assert any("lonely" in w for w in dec.warnings)


@pytest.mark.parametrize("kwargs, fragment", [
    ({"margin": 0.0}, "margin"), ({"margin": -1.0}, "margin"), ({"margin": float("inf")}, "margin"),
    ({"margin": float("nan")}, "margin"), ({"margin": 1.0, "alpha": 0.5}, "alpha"),
    ({"margin": 1.0, "alpha": 0.0}, "alpha"),
])
def test_bad_margin_or_alpha_is_refused(kwargs, fragment) -> None:
    with pytest.raises(AdaRankError, match=fragment):
        decide(REF, [arm("a", [1.0, 2.0])], **kwargs)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_a_non_finite_score_names_arm_and_seed(bad) -> None:
    broken = ArmResult("broken-arm", "b", 1, 1, {0: 80.0, 7: bad, 2: 81.0})
    with pytest.raises(AdaRankError, match=r"broken-arm.*seed 7"):
        decide(REF, [broken], margin=1.0)
    with pytest.raises(AdaRankError, match=r"ref.*seed 3"):
        decide(ArmResult("ref", "r", 1, 1, {0: 1.0, 3: bad}), [arm("a", [1.0, 2.0])], margin=1.0)


def test_reference_needs_two_seeds_and_names_are_unique() -> None:
    with pytest.raises(AdaRankError, match="at least 2"):
        decide(ArmResult("ref", "r", 1, 1, {0: 1.0}), [arm("a", [1.0, 2.0])], margin=1.0)
    with pytest.raises(AdaRankError, match="more than once"):
        decide(REF, [arm("a", [1.0, 2.0]), arm("a", [1.0, 2.0])], margin=1.0)


def _simulate(true_diffs: list[float], reps: int, n: int, margin: float, alpha: float, sd: float,
              rng: np.random.Generator) -> np.ndarray:
    """How many arms each simulated pilot declared non-inferior."""
    passed = np.zeros(reps, dtype=int)
    for r in range(reps):
        base = rng.normal(80.0, 2.0, n)
        ref = ArmResult("ref", "ref", 100, 16, dict(enumerate(base)))
        ladder = [ArmResult(f"a{k}", f"a{k}", 50, 8, dict(enumerate(base + mu + rng.normal(0.0, sd, n))))
                  for k, mu in enumerate(true_diffs)]
        dec = decide(ref, ladder, margin=margin, alpha=alpha)
        passed[r] = sum(s.status == NON_INFERIOR for s in dec.steps)
    return passed


def test_family_wise_error_stays_within_alpha_on_null_data() -> None:
    """Every arm's true difference is exactly -margin (the boundary of H0): any "non-inferior" is false."""
    rng = np.random.default_rng(20260402)
    alpha, margin, reps = 0.05, 1.0, 4000
    start = time.perf_counter()
    passed = _simulate([-margin] * 3, reps, n=5, margin=margin, alpha=alpha, sd=1.5, rng=rng)
    fwer = float(np.mean(passed > 0))
    se = math.sqrt(alpha * (1 - alpha) / reps)
    assert fwer <= alpha + 3 * se, f"family-wise error {fwer:.4f} exceeds {alpha} + 3 SE"
    assert fwer >= alpha - 4 * se  # at the boundary the test is exact, not merely conservative
    assert time.perf_counter() - start < 10


def test_fixed_sequence_keeps_the_error_when_early_arms_are_truly_fine() -> None:
    """Early arms truly equal (so they pass), later ones at the boundary: false passes still within α."""
    rng = np.random.default_rng(7)
    alpha, reps = 0.05, 1500
    passed = _simulate([0.0, -1.0, -1.0], reps, n=6, margin=1.0, alpha=alpha, sd=0.3, rng=rng)
    false = float(np.mean(passed >= 2))
    assert false <= alpha + 3 * math.sqrt(alpha * (1 - alpha) / reps)
    assert np.mean(passed >= 1) > 0.95  # the truly non-inferior first arm is found


def test_power_true_difference_zero_with_small_noise_is_found() -> None:
    rng = np.random.default_rng(11)
    passed = _simulate([0.0, 0.0], 300, n=5, margin=1.0, alpha=0.05, sd=0.5, rng=rng)
    assert np.mean(passed == 2) > 0.8


def test_p_value_is_scipys_one_sample_t_test() -> None:
    rng = np.random.default_rng(3)
    for n in (2, 3, 5, 10):
        d = rng.normal(-0.3, 1.2, n)
        ref = ArmResult("ref", "ref", 1, 1, {i: 50.0 for i in range(n)})
        step = decide(ref, [ArmResult("x", "x", 1, 1, {i: 50.0 + v for i, v in enumerate(d)})], margin=0.8).steps[0]
        expected = stats.ttest_1samp(d, -0.8, alternative="greater").pvalue
        assert step.p_value == pytest.approx(expected, rel=1e-6, abs=1e-12)


@pytest.mark.parametrize("slack, sd", [(0.2, 1.0), (0.5, 1.0), (1.0, 1.3), (3.0, 1.0), (0.05, 1.0)])
def test_seeds_needed_is_solve_power_rounded_up(slack, sd) -> None:
    from statsmodels.stats.power import TTestPower
    exact = TTestPower().solve_power(effect_size=slack / sd, alpha=0.05, power=0.8, alternative="larger")
    assert seeds_needed(slack - 1.0, sd, 1.0, 0.05) == max(2, math.ceil(exact))
