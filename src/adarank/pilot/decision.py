"""Is a cheaper LoRA configuration not worse than the reference? A fixed-sequence non-inferiority test.

The pilot trains a ladder of arms ordered from most to least expensive and evaluates each on the same
evaluation seeds as the reference (the user's configuration). For every arm the per-seed difference
``d = arm - reference`` (in points of the task's metric) is tested one-sided against the declared margin:

    H0: mean(d) <= -margin      against      H1: mean(d) > -margin

with a paired t-test (the statistic and p of ``scipy.stats.ttest_1samp(d, -margin, alternative="greater")``).
The ladder is tested as a *fixed sequence*: step k is tested only when steps 1..k-1 were all found
non-inferior, each at the full α, and the first failure stops testing. Because a step can only reject
after every earlier null was rejected, the chance of at least one false "non-inferior" over the whole ladder stays at α
without any multiplicity penalty (the closed-testing argument for a pre-ordered hierarchy). The price is
that the order is fixed in advance: a cheap arm after a failed one is never declared non-inferior.

Each comparison also reports the two-sided (1 - 2α) confidence interval of the mean difference, whose
lower end is the one-sided test's bound (non-inferior exactly when it lies above -margin), the smallest
margin these seeds could certify (``certifiable_margin`` = -lower bound), and how many seeds the declared
margin would need at 80 % power given the observed spread (statsmodels' ``TTestPower``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import AdaRankError

NON_INFERIOR = "non-inferior"
NOT_SHOWN = "not shown"
NOT_TESTED = "not tested"
TOO_FEW = "too few seeds"
STATUSES = (NON_INFERIOR, NOT_SHOWN, NOT_TESTED, TOO_FEW)

#: the power at which ``seeds_needed`` is computed
POWER = 0.8
#: no seed count is reported above this (a spread this large relative to the slack is a finding in itself)
MAX_SEEDS = 100_000


@dataclass(frozen=True)
class ArmResult:
    """One arm's evaluation: what it costs and what it scored, per evaluation seed (points)."""

    name: str
    label: str
    trainable_params: int
    max_rank: int
    scores: Mapping[int, float]
    lr: float | None = None

    def mean(self) -> float:
        """Mean score over all its seeds (NaN when it has none)."""
        values = list(self.scores.values())
        return float(np.mean(values)) if values else float("nan")

    def sd(self) -> float:
        """Sample standard deviation over its seeds (NaN with fewer than two)."""
        values = list(self.scores.values())
        return float(np.std(values, ddof=1)) if len(values) >= 2 else float("nan")


@dataclass(frozen=True)
class Comparison:
    """One arm against the reference, paired by seed."""

    arm: str
    n: int
    mean_diff: float
    ci: tuple[float, float]
    p_value: float | None
    status: str
    certifiable_margin: float | None
    seeds_needed: int | None


@dataclass(frozen=True)
class Decision:
    """The outcome of the whole ladder."""

    procedure: str
    margin: float
    alpha: float
    reference: str
    steps: tuple[Comparison, ...]
    cheapest_non_inferior: str | None
    best: str
    warnings: tuple[str, ...]

    def step(self, arm: str) -> Comparison | None:
        """The comparison of ``arm`` (None for the reference or an unknown name)."""
        return next((s for s in self.steps if s.arm == arm), None)


def _check_scores(arm: ArmResult) -> None:
    for seed, value in arm.scores.items():
        try:
            ok = math.isfinite(float(value))
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise AdaRankError(f"arm '{arm.name}' has a non-finite score ({value!r}) for evaluation seed {seed}; "
                               "a failed or diverged run must be re-run or left out of the arm, not scored")


def _validate(reference: ArmResult, ladder: Sequence[ArmResult], margin: float, alpha: float) -> None:
    try:
        margin_ok = math.isfinite(float(margin)) and float(margin) > 0
    except (TypeError, ValueError):
        margin_ok = False
    if not margin_ok:
        raise AdaRankError(f"the non-inferiority margin must be a positive finite number of points, got {margin!r}")
    try:
        alpha_ok = 0 < float(alpha) < 0.5
    except (TypeError, ValueError):
        alpha_ok = False
    if not alpha_ok:
        raise AdaRankError(f"alpha must lie strictly between 0 and 0.5, got {alpha!r}")
    for arm in (reference, *ladder):
        _check_scores(arm)
    if len(reference.scores) < 2:
        raise AdaRankError(f"the reference '{reference.name}' has {len(reference.scores)} evaluation seed(s); "
                           "a paired test needs at least 2 (raise the number of evaluation seeds)")
    names = [a.name for a in ladder]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise AdaRankError(f"ladder arm name(s) {', '.join(duplicates)} appear more than once; every arm needs its own name")


def seeds_needed(mean_diff: float, sd: float, margin: float, alpha: float, power: float = POWER) -> int | None:
    """Seeds a one-sided paired t-test needs to show non-inferiority at ``margin`` with ``power``.

    The effect size is the slack above the margin in units of the spread, ``(mean_diff + margin) / sd``,
    taking the observed mean and spread as the truth; the answer is the smallest whole number of seeds
    whose power (statsmodels' ``TTestPower``, one-sided) reaches ``power`` — ``TTestPower().solve_power``
    rounded up, found by bracketing integers around the normal approximation instead of a root finder,
    which keeps it exact and fast enough for the simulations that check the procedure. ``None`` when
    ``mean_diff <= -margin``: the arm is then at least ``margin`` worse and no number of seeds shows
    otherwise. With ``sd == 0`` (identical differences on every seed) the test is deterministic, so the
    minimum of 2 seeds suffices. Capped at ``MAX_SEEDS``.
    """
    from scipy.stats import norm
    from statsmodels.stats.power import TTestPower

    slack = mean_diff + margin
    if not slack > 0:
        return None
    if sd == 0:
        return 2
    effect = slack / sd
    analysis = TTestPower()

    def enough(n: int) -> bool:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return bool(analysis.power(effect_size=effect, nobs=n, alpha=alpha, alternative="larger") >= power)

    if enough(2):
        return 2
    if not enough(MAX_SEEDS):
        return MAX_SEEDS
    z = norm.ppf(1 - alpha) + norm.ppf(power)
    guess = int(min(MAX_SEEDS, max(3, math.ceil((z / effect) ** 2 + norm.ppf(1 - alpha) ** 2 / 2))))
    lo, hi = 2, MAX_SEEDS  # enough(lo) is False, enough(hi) is True
    step = 1
    if enough(guess):
        hi = guess
        while hi - step > lo and enough(hi - step):
            hi, step = hi - step, step * 2
        lo = max(lo, hi - step)
    else:
        lo = guess
        while lo + step < hi and not enough(lo + step):
            lo, step = lo + step, step * 2
        hi = min(hi, lo + step)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if enough(mid):
            hi = mid
        else:
            lo = mid
    return hi


def _paired(reference: ArmResult, arm: ArmResult) -> np.ndarray:
    seeds = sorted(set(reference.scores) & set(arm.scores))
    return np.array([float(arm.scores[s]) - float(reference.scores[s]) for s in seeds], dtype=float)


def _test(d: np.ndarray, margin: float, alpha: float) -> tuple[float, tuple[float, float], float, float, int | None]:
    """mean, (1-2α) CI, one-sided p, certifiable margin and seeds needed for the paired differences ``d``."""
    from scipy import stats

    n = d.size
    mean = float(d.mean())
    sd = float(d.std(ddof=1))
    if sd == 0 or sd <= 1e-12 * max(1.0, abs(mean)):
        # Identical differences: the t statistic is ±inf (or undefined at the boundary); the answer is
        # deterministic — non-inferior exactly when the common difference lies above -margin.
        sd = 0.0
        p = 0.0 if mean > -margin else 1.0
        lo, hi = mean, mean
    else:
        # scipy.stats.ttest_1samp(d, -margin, alternative="greater") written out: the same statistic and
        # p-value (the tests check it against that call) at a tenth of its overhead, which the
        # simulations of the procedure's error rate need.
        se = sd / math.sqrt(n)
        p = float(stats.t.sf((mean + margin) / se, n - 1))
        half = float(stats.t.ppf(1 - alpha, n - 1)) * se
        lo, hi = mean - half, mean + half
    return mean, (lo, hi), p, -lo, seeds_needed(mean, sd, margin, alpha)


def procedure_sentence(k: int, margin: float, alpha: float) -> str:
    """The one-sentence name of the procedure, as the report prints it."""
    return (f"fixed-sequence test of {k} arm(s) in ladder order (most to least expensive), each a one-sided "
            f"paired t-test by evaluation seed of H0: mean(arm - reference) <= -{margin:g} points at the full "
            f"α={alpha:g}; testing stops at the first arm not shown non-inferior, so the family-wise error "
            f"stays at α")


def decide(reference: ArmResult, ladder: Sequence[ArmResult], margin: float, alpha: float = 0.05) -> Decision:
    """Test ``ladder`` (most to least expensive) against ``reference`` as a fixed sequence.

    Raises ``AdaRankError`` for a margin that is not positive and finite, an alpha outside (0, 0.5), a
    non-finite score (naming arm and seed: a NaN is never silently dropped), a reference with fewer than
    two seeds, or duplicate arm names. An arm with fewer than two seeds paired with the reference cannot
    be tested: its status is "too few seeds" and, like any failure, it stops the sequence. A ladder entry
    named like the reference is the reference itself and is left out of the steps (with a warning).
    """
    _validate(reference, ladder, margin, alpha)
    margin, alpha = float(margin), float(alpha)
    notes: list[str] = []
    arms = [a for a in ladder if a.name != reference.name]
    if len(arms) != len(ladder):
        notes.append(f"the ladder contained the reference '{reference.name}' itself; it is not tested against itself")
    steps: list[Comparison] = []
    passed: list[str] = []
    stopped = False
    for arm in arms:
        d = _paired(reference, arm)
        n = int(d.size)
        unpaired = len(arm.scores) - n
        if unpaired:
            notes.append(f"{arm.name}: {unpaired} seed(s) without a reference score were left out of the pairing")
        if n < 2:
            notes.append(f"{arm.name}: only {n} seed(s) paired with the reference; at least 2 are needed to test it")
            mean = float(d.mean()) if n else float("nan")
            steps.append(Comparison(arm.name, n, mean, (float("nan"), float("nan")), None,
                                    NOT_TESTED if stopped else TOO_FEW, None, None))
            stopped = True
            continue
        mean, ci, p, certifiable, needed = _test(d, margin, alpha)
        if stopped:
            status, p_value = NOT_TESTED, None
        else:
            p_value = p
            status = NON_INFERIOR if p < alpha else NOT_SHOWN
            if status == NON_INFERIOR:
                passed.append(arm.name)
            else:
                stopped = True
                if mean > -margin and certifiable >= margin:
                    need = f"about {needed} seeds" if needed is not None else "more seeds"
                    notes.append(f"{arm.name}: {n} seeds are too few to certify the {margin:g}-point margin "
                                 f"(they certify {certifiable:.3g} points at α={alpha:g}); the margin would "
                                 f"need {need} at {POWER:.0%} power given the observed spread")
        steps.append(Comparison(arm.name, n, mean, ci, p_value, status, certifiable, needed))
    candidates = [reference, *arms]
    means = [a.mean() for a in candidates]
    best = max(range(len(candidates)), key=lambda i: (math.isfinite(means[i]), means[i] if math.isfinite(means[i]) else 0.0, -i))
    return Decision(procedure=procedure_sentence(len(arms), margin, alpha), margin=margin, alpha=alpha,
                    reference=reference.name, steps=tuple(steps),
                    cheapest_non_inferior=passed[-1] if passed else None,
                    best=candidates[best].name, warnings=tuple(notes))
