"""Scoring on N GPUs vs one : the same model, probes and seed, timed end to end.

Run once without torchrun (one GPU) and once under ``torchrun --nproc-per-node N``; each writes
``$BENCH_OUT/multi_gpu_<world>.json`` (BENCH_OUT: the output folder, default the current one) with the wall time of ``predict_ranks`` (from a barrier after the
model is built to the gathered plan) and the plan's ranks, so the speed-up and the "same plan on
N devices" property are both read from real output:

    python3 benchmarks/multi_gpu_speed.py --model llama-1b
    torchrun --standalone --nproc-per-node 2 benchmarks/multi_gpu_speed.py --model llama-1b
    python3 benchmarks/multi_gpu_speed.py --compare $BENCH_OUT/multi_gpu_1.json $BENCH_OUT/multi_gpu_2.json

Models and probes are those of ``scoring_speed.py`` (random-initialised from configs, bf16, 32 × 256
random tokens, all linear modules, K = 5).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import run_provenance  # noqa: E402
from scoring_speed import MODELS, build, probes  # noqa: E402

from adarank.distributed import init_if_launched  # noqa: E402
from adarank.predict import predict_ranks  # noqa: E402
from adarank.scoring import ScoreConfig  # noqa: E402


#: a CPU smoke-test size (gloo), to check the script without a GPU
SIZES = {**MODELS, "tiny-llama": ("llama", {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 4,
                                             "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 500})}


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def run(model_name: str, trials: int, n: int, length: int, max_batch: int) -> None:
    provenance = run_provenance()
    gpu = torch.cuda.is_available()
    rank, world = init_if_launched("cuda" if gpu else "cpu")
    device = f"cuda:{torch.cuda.current_device()}" if gpu else "cpu"
    kind, cfg = SIZES[model_name]
    model = build(kind, cfg, device, torch.bfloat16 if gpu else torch.float32)
    batch = probes(model.config.vocab_size, n, length, device)
    config = ScoreConfig(trials=trials, max_batch=max_batch)
    # warm-up outside the timed region: CUDA context, kernels, allocator
    predict_ranks(model, probes=batch, targets=["model.layers.0.mlp.down_proj"] if kind == "llama" else "all-linear",
                  rank=8, score_config=ScoreConfig(trials=1, max_batch=max_batch), progress=False)
    if world > 1:
        dist.barrier()
    _sync()
    start = time.perf_counter()
    plan = predict_ranks(model, probes=batch, targets="all-linear", rank=8, score_config=config, progress=False)
    _sync()
    seconds = time.perf_counter() - start
    if world > 1:
        dist.barrier()
    if rank == 0:
        out = Path(os.environ.get("BENCH_OUT", ".")) / f"multi_gpu_{world}.json"
        out.write_text(json.dumps({
            **provenance, "model": model_name, "world": world, "seconds": seconds,
            "modules": len(plan.modules), "trials": trials, "probe": [n, length],
            "ranks": plan.ranks, "scores": {m.name: m.score_mean for m in plan.modules},
        }, indent=1))
        print(f"{model_name} on {world} GPU(s): {len(plan.modules)} modules in {seconds:.1f} s", flush=True)
    if world > 1:
        dist.destroy_process_group()


def compare(one: Path, many: Path) -> None:
    a, b = json.loads(one.read_text()), json.loads(many.read_text())
    same_ranks = a["ranks"] == b["ranks"]
    worst = max(abs(a["scores"][k] - b["scores"][k]) / max(abs(a["scores"][k]), 1e-30) for k in a["scores"])
    summary = {"inputs": {str(p): {k: r.get(k) for k in ("commit", "date", "command", "card")}
                          for p, r in ((one, a), (many, b))},
               "model": a["model"], "card": a["card"], "seconds_1": a["seconds"], "world": b["world"],
               f"seconds_{b['world']}": b["seconds"], "speedup": a["seconds"] / b["seconds"],
               "same_ranks": same_ranks, "max_relative_score_difference": worst}
    out = Path(os.environ.get("BENCH_OUT", ".")) / "multi_gpu_summary.json"
    out.write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="llama-1b", choices=sorted(SIZES))
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--num-probes", type=int, default=32)
    ap.add_argument("--length", type=int, default=256)
    ap.add_argument("--max-batch", type=int, default=64)
    ap.add_argument("--compare", nargs=2, type=Path, metavar=("ONE_GPU_JSON", "N_GPU_JSON"))
    args = ap.parse_args()
    if args.compare:
        compare(*args.compare)
    else:
        run(args.model, args.trials, args.num_probes, args.length, args.max_batch)


if __name__ == "__main__":
    main()
