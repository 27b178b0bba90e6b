"""Scoring speed on one GPU: batched+prefix-replay engine vs naive, against the card's matmul peak.

Random-initialised models built from configs (timing needs no pretrained weights): BERT-base, a
Llama-architecture model of about 1B and one of about 7B parameters; all linear modules of every
block; K = 5; 32 probe sequences x 256 tokens; bf16. Writes $BENCH_OUT/scoring_speed.json (BENCH_OUT default: the current folder) and prints a table.

FLOPs the method must do, per module in block l (of L), per trial, per perturbed copy:
  tokens x [ sum over blocks l..L-1 of (2 x block params + 4 x T x d_model)  (matmuls + attention)
             + 2 x d_in x d_out (the noise term) + head FLOPs (2 x d_model x vocab for LMs) ]
plus one clean forward. That is the floor for any implementation that runs the perturbed copies;
the naive engine does more (it recomputes blocks 0..l-1), which the ratio fast/naive shows.

Usage: python benchmarks/scoring_speed.py [--models bert-base,llama-1b,llama-7b] [--naive-blocks 3]
The naive engine is timed on the modules of --naive-blocks evenly spaced blocks (all of them for
bert-base) and the fast engine on the same subset, so the ratio compares like with like; the fast
engine is also timed on every module.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from adarank.probes import ProbeBatch
from adarank.scoring import ScoreConfig, score_modules
from adarank.targets import select_targets
from provenance import run_provenance  # benchmarks/provenance.py, beside this script

MODELS = {
    "bert-base": ("bert", dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072)),
    "llama-1b": ("llama", dict(hidden_size=2048, intermediate_size=5632, num_hidden_layers=22, num_attention_heads=32,
                               num_key_value_heads=4, vocab_size=32000)),
    "llama-7b": ("llama", dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
                               num_key_value_heads=32, vocab_size=32000)),
}


def build(kind: str, cfg: dict, device: str, dtype: torch.dtype):
    import transformers

    torch.manual_seed(0)
    if kind == "bert":
        config = transformers.BertConfig(**cfg)
        cls = transformers.BertModel
    else:
        config = transformers.LlamaConfig(max_position_embeddings=4096, **cfg)
        cls = transformers.LlamaForCausalLM
    prev = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = cls(config)
    finally:
        torch.set_default_dtype(prev)
    return model.eval()


def probes(vocab: int, n: int, length: int, device: str) -> ProbeBatch:
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(10, vocab, (n, length), generator=gen)
    return ProbeBatch({"input_ids": ids.to(device), "attention_mask": torch.ones_like(ids).to(device)}, 0)


def matmul_peak(device: str) -> float:
    a = torch.randn(8192, 8192, device=device, dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    start = time.perf_counter()
    reps = 20
    for _ in range(reps):
        a @ b
    torch.cuda.synchronize()
    return 2 * 8192**3 * reps / (time.perf_counter() - start)


def method_flops(model, targets, n: int, length: int, trials: int, copies: int = 2, replay: bool = True) -> float:
    """The count described in the module docstring; ``replay=False`` counts what the naive engine
    does (every perturbed copy runs all L blocks), so the ratio of the two is the speed-up that
    prefix replay can give at best when both engines run at the same FLOP rate."""
    from adarank.targets import find_block_stack

    _, blocks = find_block_stack(model)
    L = len(blocks)
    d = model.config.hidden_size
    block_params = sum(p.numel() for p in blocks[0].parameters() if p.dim() == 2)
    per_block = 2 * block_params + 4 * length * d
    vocab = getattr(model.config, "vocab_size", 0) if hasattr(model, "lm_head") else 0
    head = 2 * d * vocab
    tokens = n * length
    total = tokens * (L * per_block + head)  # the clean forward
    for t in targets:
        block = t.block or 0
        work = (L - (block if replay else 0)) * per_block + 2 * t.shape[0] * t.shape[1] + head
        total += trials * copies * tokens * work
    return float(total)


def timed(fn):
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    out = fn()
    torch.cuda.synchronize()
    return out, time.perf_counter() - start, torch.cuda.max_memory_allocated() / 2**30


def eva_seconds(model, batch: ProbeBatch, names: list[str], rank: int = 8) -> float | str:
    try:
        from peft import EvaConfig, LoraConfig
        from peft.tuners.lora.eva import get_eva_state_dict
    except ImportError as exc:
        return f"unavailable: {exc}"
    config = LoraConfig(r=rank, target_modules=names, init_lora_weights="eva", eva_config=EvaConfig(rho=2.0))
    ids, mask = batch.inputs["input_ids"], batch.inputs["attention_mask"]
    loader = [{"input_ids": ids[i:i + 8], "attention_mask": mask[i:i + 8]} for i in range(0, len(ids), 8)]
    try:
        _, seconds, _ = timed(lambda: get_eva_state_dict(model, loader, config, show_progress_bar=False))
    except Exception as exc:  # report, do not hide: EVA is the rival, not our code
        return f"failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    return seconds


def header(provenance: dict, peak: float) -> dict:
    """What heads every scoring_speed.json, partial or final: where and how it was measured."""
    return {**provenance, "matmul_peak_tflops": peak / 1e12}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="bert-base,llama-1b,llama-7b")
    ap.add_argument("--naive-blocks", type=int, default=3)
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--length", type=int, default=256)
    ap.add_argument("--max-batch", type=int, default=64)
    ap.add_argument("--eva-models", default="bert-base,llama-1b", help="models on which PEFT's EVA is timed")
    ap.add_argument("--full-models", default="bert-base,llama-1b",
                    help="models on which the fast engine is also timed on every module; for the others the "
                         "all-module time is extrapolated from the subset (time per module is affine in the "
                         "number of blocks it runs, L - l) and labelled as such")
    args = ap.parse_args()
    provenance = run_provenance()
    device, dtype = "cuda", torch.bfloat16
    out_dir = Path(os.environ.get("BENCH_OUT", "."))
    peak = matmul_peak(device)
    rows = []
    print(f"card: {torch.cuda.get_device_name()}  measured bf16 matmul peak: {peak / 1e12:.0f} TFLOP/s", flush=True)
    for name in args.models.split(","):
        kind, cfg = MODELS[name]
        model = build(kind, cfg, device, dtype)
        params = sum(p.numel() for p in model.parameters())
        vocab = model.config.vocab_size
        batch = probes(vocab, args.n, args.length, device)
        targets = select_targets(model, "all-linear")
        blocks = sorted({t.block for t in targets})
        pick = blocks if kind == "bert" else [blocks[round(i * (len(blocks) - 1) / max(1, args.naive_blocks - 1))] for i in range(args.naive_blocks)]
        subset = [t for t in targets if t.block in set(pick)]
        # Warm-up (CUDA context, kernels, allocator) outside every timed region: without it the first
        # engine timed pays for it (the 2026-11-28 run did not have this; see BENCHMARKS.md).
        score_modules(model, batch, subset[:1], ScoreConfig(trials=1, max_batch=args.max_batch), progress=False)
        row = {"model": name, "params": params, "modules": len(targets), "subset_modules": len(subset),
               "subset_blocks": pick, "trials": args.trials, "probe": [args.n, args.length]}
        for engine in ("batched", "naive"):
            cfg_s = ScoreConfig(trials=args.trials, engine=engine, max_batch=args.max_batch)
            _, sec, mem = timed(lambda: score_modules(model, batch, subset, cfg_s, progress=False))
            row[f"{engine}_subset_s"], row[f"{engine}_subset_peak_gib"] = sec, mem
            print(f"{name}: {engine} on {len(subset)} modules: {sec:.1f} s, peak {mem:.1f} GiB", flush=True)
        row["speedup_subset"] = row["naive_subset_s"] / row["batched_subset_s"]
        flops = method_flops(model, targets, args.n, args.length, args.trials)
        row["method_flops"] = flops
        fast_sub = method_flops(model, subset, args.n, args.length, args.trials)
        naive_sub = method_flops(model, subset, args.n, args.length, args.trials, replay=False)
        row["speedup_bound_subset"] = naive_sub / fast_sub
        row["speedup_bound_all"] = method_flops(model, targets, args.n, args.length, args.trials, replay=False) / flops
        row["naive_subset_fraction_of_peak"] = naive_sub / row["naive_subset_s"] / peak
        row["batched_subset_fraction_of_peak"] = fast_sub / row["batched_subset_s"] / peak
        print(f"{name}: fast/naive {row['speedup_subset']:.2f}x measured; FLOP bound of prefix replay "
              f"{row['speedup_bound_subset']:.2f}x on the subset, {row['speedup_bound_all']:.2f}x on all modules", flush=True)
        if name not in args.full_models.split(","):
            # fit time per module = a + b * (L - l) on the subset blocks, timed block by block
            L = len(blocks)
            xs, ys = [], []
            for blk in pick:
                part = [t for t in subset if t.block == blk]
                cfg_s = ScoreConfig(trials=args.trials, engine="batched", max_batch=args.max_batch)
                _, sec, _ = timed(lambda: score_modules(model, batch, part, cfg_s, progress=False))
                xs.append(L - blk)
                ys.append(sec / len(part))
            import numpy as np

            b, a = np.polyfit(xs, ys, 1) if len(set(xs)) > 1 else (0.0, ys[0])
            est = sum(a + b * (L - (t.block or 0)) for t in targets)
            row.update(batched_all_s_extrapolated=est, achieved_tflops_extrapolated=flops / est / 1e12,
                       fraction_of_peak_extrapolated=flops / est / peak, per_module_fit={"a": a, "b": b, "x": xs, "y": ys})
            print(f"{name}: batched on all {len(targets)} modules, EXTRAPOLATED from blocks {pick}: {est:.0f} s, "
                  f"{flops / est / 1e12:.0f} TFLOP/s = {100 * flops / est / peak:.0f}% of peak", flush=True)
        else:
            cfg_s = ScoreConfig(trials=args.trials, engine="batched", max_batch=args.max_batch)
            _, sec, mem = timed(lambda: score_modules(model, batch, targets, cfg_s, progress=False))
            row.update(batched_all_s=sec, batched_all_peak_gib=mem,
                       achieved_tflops=flops / sec / 1e12, fraction_of_peak=flops / sec / peak,
                       tokens_per_s=args.trials * 2 * args.n * args.length * len(targets) / sec)
            print(f"{name}: batched on all {len(targets)} modules: {sec:.1f} s, {flops / sec / 1e12:.0f} TFLOP/s "
                  f"= {100 * flops / sec / peak:.0f}% of peak, peak mem {mem:.1f} GiB", flush=True)
        if name in args.eva_models.split(","):
            row["eva_seconds"] = eva_seconds(model, batch, [t.name for t in targets])
            print(f"{name}: PEFT get_eva_state_dict: {row['eva_seconds']}", flush=True)
        rows.append(row)
        partial = {**header(provenance, peak), "rows": rows}
        (out_dir / "scoring_speed.json").write_text(json.dumps(partial, indent=2))
        model = None  # free this model's memory before the next one is built
        torch.cuda.empty_cache()
    result = {**header(provenance, peak), "rows": rows}
    (out_dir / "scoring_speed.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
