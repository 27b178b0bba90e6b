"""adarank.compare.records: what a grid folder's logs say is missing."""

from __future__ import annotations

import json

from adarank.compare.records import requested_keys, unfinished_keys
from adarank.compare.train import DIVERGED_MESSAGE


def test_a_run_asked_for_or_failed_is_unfinished_until_it_has_a_record_and_a_diverged_one_never_is(tmp_path):
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "done.json").write_text("{}")
    (tmp_path / "invocations.jsonl").write_text(
        json.dumps({"argv": [], "keys": ["done", "cut", "nan"]}) + "\n"
        + '{"torn": \n'  # a line cut short by a killed machine is skipped, not fatal
        + json.dumps({"argv": [], "runs": 3}) + "\n")  # a call logged before keys were: names none
    (tmp_path / "errors.jsonl").write_text(
        json.dumps({"key": "nan", "error": f"{DIVERGED_MESSAGE} at step 4"}) + "\n"
        + json.dumps({"key": "oom", "error": "CUDA error: out of memory"}) + "\n"
        + json.dumps({"key": "done", "error": "CUDA error: out of memory"}) + "\n")  # retried since, recorded
    assert requested_keys(tmp_path / "invocations.jsonl") == {"done", "cut", "nan"}
    assert unfinished_keys(tmp_path) == {"cut", "oom"}
    assert unfinished_keys(tmp_path / "nowhere") == set()
