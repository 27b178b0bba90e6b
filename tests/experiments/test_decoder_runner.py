"""experiments/decoder/run.sh's side lane, traced with the grid stubbed (CPU): the order of its grid calls."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "experiments" / "decoder" / "run.sh"


def _functions(*names: str) -> str:
    """The script's shell functions of those names, as written (each ends at its first line that is ``}``)."""
    lines, out = SCRIPT.read_text(encoding="utf-8").splitlines(), []
    for name in names:
        start = next(i for i, line in enumerate(lines) if line.startswith(f"{name}() {{"))
        end = start if lines[start].rstrip().endswith("}") else next(
            i for i in range(start, len(lines)) if lines[i] == "}")
        out += lines[start:end + 1]
    return "\n".join(out)


def _side_calls(echoed: str, setup: str) -> list[str]:
    """The grid calls of the script's side lane after ``setup`` (shell assignments), the sweep and evaluate
    functions stubbed to print their name and ``echoed`` (a quoted shell word of their arguments)."""
    trace = "\n".join([
        _functions("maxlen", "maxtest", "evalbs", "groups", "side"),
        f"enough() {{ true; }}; sweep() {{ echo sweep {echoed}; }}; evaluate() {{ echo evaluate {echoed}; }}",
        setup,
        "side",
    ])
    done = subprocess.run(["bash", "-c", trace], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_the_side_lane_finishes_each_length_group_before_the_next_one_starts():
    """A run cut short must leave the short tasks' r̄ = 2 settings complete: their sweep and evaluation come
    before CoNLL-2000's (a group of its own, at 512 tokens), not all sweeps before all evaluations."""
    calls = _side_calls('"$1 $4"', "side_sets=(subj trec-fine conll2000-brackets); side_ranks=2; side_workers=10")
    assert calls == ["sweep 256 subj,trec-fine", "evaluate 256 subj,trec-fine",
                     "sweep 512 conll2000-brackets", "evaluate 512 conll2000-brackets"]


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_the_side_lane_passes_its_own_target_set_and_budget_to_every_grid_call():
    """SIDE_TARGETS=attention-proj at SIDE_RANKS=8 beside an all-linear grid: each of the side lane's calls must
    name its target set after the common options (the grid keeps the last one given)."""
    calls = _side_calls('"$*"', "side_sets=(trec-fine); side_ranks=8; side_workers=5; side_targets=attention-proj")
    assert [c.split()[0] for c in calls] == ["sweep", "evaluate"]
    for call in calls:
        assert call.endswith("--ranks 8 --workers 5 --target-sets attention-proj"), call
