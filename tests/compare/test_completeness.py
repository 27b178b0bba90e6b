"""Which settings of a grid are complete: every allocation method has every seed that another has."""

from __future__ import annotations

from adarank.compare.completeness import describe, missing_runs


def _rec(method: str, seed: int, dataset: str = "conll2000-brackets", rank: int = 8) -> dict:
    return {"dataset": dataset, "target_set": "all-linear", "rank": rank, "method": method, "seed": seed}


def test_a_setting_cut_short_is_incomplete_and_names_what_it_lacks():
    runs = [_rec("uniform", s) for s in (0, 1, 2)] + [_rec("adarank-floor", s) for s in (1, 2)]
    runs += [_rec("eva", s) for s in (0, 2)] + [_rec("uniform", s, "ppattach") for s in (0, 1)]
    runs += [_rec("eva", s, "ppattach") for s in (0, 1)]
    gaps = missing_runs(runs)
    assert gaps == {("conll2000-brackets", "all-linear", 8): {"adarank-floor": [0], "eva": [1]}}
    assert describe(gaps[("conll2000-brackets", "all-linear", 8)]) == "adarank-floor seed 0; eva seed 1"


def test_a_diverged_run_counts_as_run_and_references_keep_their_own_seeds():
    runs = [_rec("uniform", s) for s in range(5)] + [_rec("adarank-floor", s) for s in (0, 1, 3, 4)]
    runs += [_rec("full-ft", s) for s in range(3)] + [_rec("base-model", 0)]
    assert missing_runs(runs) == {("conll2000-brackets", "all-linear", 8): {"adarank-floor": [2]}}
    assert missing_runs(runs, ["conll2000-brackets__all-linear__r8__adarank-floor__s2"]) == {}
    # a diverged key of another setting, or one that is not an evaluation key, changes nothing
    assert missing_runs(runs, ["ppattach__all-linear__r8__adarank-floor__s2", "nonsense"]) != {}


def test_runs_at_a_rate_from_a_sweep_that_lost_a_run_exclude_their_setting(tmp_path):
    import json

    from adarank.compare.completeness import excluded_settings, rates_unvouched

    runs = [_rec(m, s) for m in ("uniform", "adarank-exact") for s in (0, 1)]
    assert excluded_settings(tmp_path, runs) == {}
    sweep = tmp_path / "lr-sweep-validation"
    (sweep / "runs").mkdir(parents=True)
    (sweep / "errors.jsonl").write_text(json.dumps({"key": "conll2000-brackets__all-linear__r8__adarank-exact__lr0.003__s100",
                                                    "error": "CUDA error: out of memory"}) + "\n")
    assert rates_unvouched(tmp_path, runs) == {("conll2000-brackets", "all-linear", 8): ["adarank-exact"]}
    assert excluded_settings(tmp_path, runs) == {("conll2000-brackets", "all-linear", 8):
                                                 "rates from an incomplete sweep: adarank-exact"}
    # the lost rate ran again and left its record: the sweep is whole
    (sweep / "runs" / "conll2000-brackets__all-linear__r8__adarank-exact__lr0.003__s100.json").write_text("{}")
    assert excluded_settings(tmp_path, runs) == {}
