"""The best-mean decision rule on synthetic grid records."""

from __future__ import annotations

import pytest

from adarank.compare.decision import PAPER, decide, decision_markdown, decision_report, main
from adarank.errors import AdaRankError


def _records(gains: dict[str, list[float]], settings: int = 3) -> list[dict]:
    """uniform at 80 %; each method at 80 % + its per-seed gain (pp), the same in every setting."""
    runs = []
    for s in range(settings):
        for method, per_seed in {"uniform": [0.0] * 5, **gains}.items():
            for seed, gain in enumerate(per_seed):
                runs.append({"dataset": f"d{s}", "target_set": "value", "rank": 2, "method": method, "seed": seed,
                             "test_accuracy": 0.80 + gain / 100})
    return runs


def test_a_variant_replaces_the_paper_rule_only_when_its_gain_over_it_is_clear():
    clear = decide(_records({PAPER: [0.2, -0.1, 0.0, 0.1, 0.3], "adarank-fisher": [1.0, 1.2, 0.9, 1.1, 1.3]}),
                   candidates=[PAPER, "adarank-fisher"])
    assert clear.best == "adarank-fisher" and clear.default == "adarank-fisher"
    assert "CI above zero" in clear.reason
    noisy = decide(_records({PAPER: [0.2, -0.1, 0.0, 0.1, 0.3], "adarank-fisher": [3.0, -2.5, 2.0, -1.5, 1.0]}),
                   candidates=[PAPER, "adarank-fisher"])
    assert noisy.best == "adarank-fisher" and noisy.default == PAPER
    assert "does not exclude zero" in noisy.reason
    assert "the default stays `adarank-floor`" in decision_markdown(noisy)


def test_the_paper_rule_stays_when_it_is_best_and_missing_runs_are_an_error(tmp_path, capsys):
    kept = decide(_records({PAPER: [1.0, 1.1, 0.9, 1.0, 1.2], "adarank-power-2": [0.1, 0.0, 0.2, -0.1, 0.0]}),
                  candidates=[PAPER, "adarank-power-2", "adarank-task64"])
    assert kept.best == PAPER and kept.default == PAPER
    assert [c.method for c in kept.candidates] == [PAPER, "adarank-power-2"]  # task64 has no runs
    with pytest.raises(AdaRankError, match="paper's rule"):
        decide(_records({"adarank-fisher": [1.0] * 5}))
    assert main(["--results", str(tmp_path)]) == 2
    assert "no run records" in capsys.readouterr().err


def test_collapsed_runs_get_a_sensitivity_check_beside_the_verdict():
    runs = _records({PAPER: [0.2, -0.1, 0.0, 0.1, 0.3], "adarank-fisher": [0.3, 0.0, 0.1, 0.2, 0.4]})
    plain = decision_report(runs, [PAPER, "adarank-fisher"])
    assert "Sensitivity check" not in plain
    runs[-1]["test_accuracy"] = 0.50  # adarank-fisher, last setting, seed 4: collapsed
    text = decision_report(runs, [PAPER, "adarank-fisher"])
    verdict, sensitivity = text.split("**Sensitivity check, not the decision:**")
    assert "**Decision:" in verdict and "**Decision:" not in sensitivity
    assert "without the 1 collapsed run(s)" in sensitivity and "d2 · value · r̄=2: 1" in sensitivity
    # the pair with the collapse is gone: 14 pairs vs uniform for fisher, 15 for the paper's rule
    assert "| adarank-fisher (best) | 14 |" in sensitivity and f"| {PAPER} | 15 |" in sensitivity
    assert "| adarank-fisher | 15 |" in verdict and "default stays" in verdict
    assert "Decision without them (not applied): the default becomes `adarank-fisher`" in sensitivity


def _varied(gains_by_setting: dict[str, list[list[float]]]) -> list[dict]:
    """uniform at 80 %; method m in setting s at 80 % + gains_by_setting[m][s][seed] (pp)."""
    runs = []
    settings = len(next(iter(gains_by_setting.values())))
    for s in range(settings):
        for method, per_setting in {"uniform": [[0.0] * 5] * settings, **gains_by_setting}.items():
            for seed, gain in enumerate(per_setting[s]):
                runs.append({"dataset": f"d{s}", "target_set": "value", "rank": 2, "method": method, "seed": seed,
                             "test_accuracy": 0.80 + gain / 100})
    return runs


def test_two_level_rule_needs_both_the_pooled_and_the_setting_level_ci_above_zero(tmp_path, capsys):
    from adarank.compare.decision import decide_two_level, two_level_markdown

    steady = [0.9, 1.1, 1.0, 1.2, 0.8]
    # fisher: +1 pp in every setting, and +1 pp over the paper's rule (which ties uniform): it wins
    runs = _varied({PAPER: [[0.1, -0.1, 0.0, 0.1, -0.1]] * 3, "adarank-fisher": [steady] * 3})
    won = decide_two_level(runs)
    assert won.default == "adarank-fisher" and won.rows["adarank-fisher"][0].above
    assert won.rows["adarank-fisher"][0].setting_level.n == 3
    # eva: a large, tight gain in one setting and small losses in the two others; pooled over 15 pairs
    # the CI stays above zero, over the 3 settings it does not: not better, and the paper's rule stays
    runs = _varied({PAPER: [[0.1, -0.1, 0.0, 0.1, -0.1]] * 3,
                    "eva": [[6.0, 6.2, 5.9, 6.1, 6.0], [-0.2, -0.3, -0.1, -0.2, -0.3], [-0.3, -0.1, -0.2, -0.2, -0.1]]})
    kept = decide_two_level(runs)
    eva = kept.rows["eva"][0]
    assert eva.pooled.lo > 0 and eva.setting_level.lo < 0 and not eva.above
    assert kept.default == PAPER and "no method" in kept.reason
    text = two_level_markdown(kept)
    assert "the default stays `adarank-floor`" in text and "| eva |" in text
    # better than uniform by both CIs, but not than the paper's rule (which gains as much): the paper's rule stays
    runs = _varied({PAPER: [steady] * 3, "adarank-exact": [steady[::-1]] * 3})
    tied = decide_two_level(runs)
    assert tied.default == PAPER and "none also better" in tied.reason
    # the CLI
    from adarank.io import atomic_write_json

    for i, r in enumerate(runs):
        atomic_write_json(tmp_path / "runs" / f"r{i}.json", r)
    assert main(["--results", str(tmp_path), "--rule", "two-level"]) == 0
    assert "pooled and setting-level CIs both above zero" in capsys.readouterr().out


def test_the_cli_decides_on_complete_settings_and_names_the_incomplete_ones(tmp_path, capsys):
    from adarank.io import atomic_write_json

    steady = [0.9, 1.1, 1.0, 1.2, 0.8]
    runs = _records({PAPER: steady, "adarank-fisher": steady}, settings=2)
    # a third setting cut short, where fisher's two runs would be a large loss: seeds 0-2 of uniform, 0-1 of fisher
    runs += [{"dataset": "cut", "target_set": "value", "rank": 2, "method": m, "seed": s, "test_accuracy": acc}
             for m, accs in (("uniform", [0.8, 0.8, 0.8]), ("adarank-fisher", [0.5, 0.5]), (PAPER, [0.8, 0.8, 0.8]))
             for s, acc in enumerate(accs)]
    for i, r in enumerate(runs):
        atomic_write_json(tmp_path / "runs" / f"r{i}.json", r)
    assert main(["--results", str(tmp_path), "--rule", "two-level"]) == 0
    out = capsys.readouterr().out
    assert "Left out as incomplete" in out and "cut · value · r̄=2 (missing: adarank-fisher seed 2)" in out
    fisher = next(line for line in out.splitlines() if line.startswith("| adarank-fisher"))
    assert "+1.00" in fisher  # the cut setting's -30 pp pairs are not in it
    # every setting cut short: an error in one line, exit 2
    only = tmp_path / "only"
    for i, r in enumerate(r for r in runs if r["dataset"] == "cut"):
        atomic_write_json(only / "runs" / f"r{i}.json", r)
    assert main(["--results", str(only), "--rule", "two-level"]) == 2
    assert "every setting" in capsys.readouterr().err


def test_target_sets_reads_part_of_a_grid_and_an_unknown_set_is_exit_2(tmp_path, capsys):
    from adarank.io import atomic_write_json

    steady = [0.9, 1.1, 1.0, 1.2, 0.8]
    runs = _records({PAPER: steady, "adarank-fisher": steady}, settings=2)
    # a second target set where fisher loses 5 pp: it moves the whole grid's reading, not the first set's
    attn = _records({PAPER: steady, "adarank-fisher": [-5.0] * 5}, settings=2)
    for r in attn:
        r["target_set"] = "attention"
    for i, r in enumerate(runs + attn):
        atomic_write_json(tmp_path / "runs" / f"r{i}.json", r)

    def fisher_row(*extra: str) -> str:
        assert main(["--results", str(tmp_path), "--rule", "two-level", *extra]) == 0
        return next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| adarank-fisher"))

    assert "+1.00" in fisher_row("--target-sets", "value") and "(n=10)" in fisher_row("--target-sets", "value")
    assert "-2.00" in fisher_row() and "(n=20)" in fisher_row()
    assert main(["--results", str(tmp_path), "--rule", "two-level", "--target-sets", "value"]) == 0
    assert "Read: the records of target set(s) value only." in capsys.readouterr().out
    # a set with no records is an error, also beside one that has them (a typo must not narrow the reading)
    for sets in ("mlp", "value,mlp"):
        assert main(["--results", str(tmp_path), "--rule", "two-level", "--target-sets", sets]) == 2
        err = capsys.readouterr().err
        assert "no records for target set(s) mlp in" in err and "attention, value" in err
