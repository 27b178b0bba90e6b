"""Several processes (gloo on CPU) give the plan one process gives."""

import json
import os
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_two_processes_match_one(tiny_bert_dir, tmp_path):
    base = ["-m", "adarank", "predict", str(tiny_bert_dir), "--targets", "all-linear", "--trials", "2",
            "--rank", "4", "--rule", "exact", "--quiet", "--device", "cpu"]
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    one = subprocess.run([sys.executable, *base, "--out", str(tmp_path / "one")], env=env, capture_output=True,
                         text=True, timeout=300)
    assert one.returncode == 0, one.stderr
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                          *base, "--out", str(tmp_path / "two")], env=env, capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stderr
    a = json.loads((tmp_path / "one" / "plan.json").read_text())
    b = json.loads((tmp_path / "two" / "plan.json").read_text())
    assert b["settings"]["world_size"] == 2 and a["settings"]["world_size"] == 1
    assert a["modules"] == b["modules"]
    assert a["budget"] == b["budget"]
    assert not list((tmp_path / "two").glob(".adarank-checkpoint*"))


def test_closing_leaves_the_group_after_success_and_failure_and_is_a_no_op_outside_one(tmp_path):
    import torch.distributed as dist

    from adarank.distributed import close_process_group

    close_process_group(finished=True)  # no group: nothing to do, no error
    for finished in (True, False):
        store = dist.FileStore(str(tmp_path / f"store-{finished}"), 1)
        dist.init_process_group("gloo", store=store, rank=0, world_size=1)
        assert dist.is_initialized()
        close_process_group(finished=finished)
        assert not dist.is_initialized()
