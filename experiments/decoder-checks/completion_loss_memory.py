"""Memory and time of one LoRA training step: the model's own loss vs logits at the completion's tokens only.

Why: with Gemma 3's 262,144-token vocabulary, the model's own causal-LM loss builds batch x length x vocab
logits. That is what ran the decoder study's SUBJ runs out of GPU memory when 12 of them shared an H200. The generation
task now computes logits only where the loss is (``adarank.compare.tasks.completion_loss``). This script measures
what that saves, on the CPU, where a process's peak resident memory can be read back exactly.

Each path runs in a fresh process, so that neither sees the other's allocations:
- load the model the way the grid does;
- wrap it in PEFT LoRA on all linear modules at rank 8;
- tokenise the first BATCH training pairs of DATASET;
- read the resident memory;
- run one forward and backward;
- read the peak.

A third path, ``completion-only-unchunked``, computes the completion-only loss in one piece however many tokens
are labelled: the training path splits more than ``CHUNK_TOKENS`` of them into checkpointed chunks, and on long
completions (``--dataset conll2000-brackets``, about 66 labelled tokens an example) the two differ. ``--paths``
picks which run (the full loss on CoNLL-2000 at batch 32 needs more memory than the development machine has).

``--bf16`` runs the step under bf16 autocast, as the GPU grid trains: the backbone's activations then take half
the memory they take in float32, and the loss's float32 copies of the logits a larger share of the peak.

``step_peak_mib`` is the peak minus the memory before the step, which is what the step itself allocated. Both
paths' losses on that batch are recorded too: they must agree. A process's peak on the CPU can move from run to
run: two single runs here, before ``--repeats`` existed, differed by 12 % and 26 %. So each path runs
``--repeats`` times, alternating, and every reading is kept; the summary gives each path's median and range.

    python experiments/decoder-checks/completion_loss_memory.py --model DIR --data-dir DIR [--dataset subj] [--batch 8]
        [--repeats 3] [--paths full,completion-only] [--max-length 256] [--bf16]
        --out FILE.json
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from adarank.io import atomic_write_text
from local_model_args import add_local_model_args  # beside this script
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from provenance import run_provenance  # noqa: E402  benchmarks/provenance.py

PATHS = ("full", "completion-only", "completion-only-unchunked")


def rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def child(args: argparse.Namespace) -> dict:
    import torch
    from peft import LoraConfig, get_peft_model

    from adarank.compare.grid import load_task_data
    from adarank.compare.tasks.completion_loss import CHUNK_TOKENS, completion_loss
    from adarank.compare.tasks.generation import Generation, TrainingPairs
    from adarank.loading import load_tokenizer

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    task = Generation()
    data = load_task_data("generation", args.dataset, args.data_dir, args.batch, None)
    model = task.load_model(args.model, data, "dtype")
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", task_type="CAUSAL_LM"))
    tokenizer = load_tokenizer(args.model)
    pairs = TrainingPairs(tokenizer, data.train_prompts[:args.batch], data.train_completions[:args.batch],
                          args.max_length)
    batch = pairs.batch(list(range(len(pairs))), torch.device("cpu"))
    model.train()
    before, peak_before = rss_mib(), peak_mib()
    start = time.perf_counter()
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16, enabled=args.bf16):
        if args.child == "completion-only-unchunked":
            loss = completion_loss(model, batch, chunk=max(CHUNK_TOKENS, int((batch["labels"] != -100).sum())))
        else:
            loss = task.training_loss(model, batch, logits=args.child)
    loss.backward()
    seconds = time.perf_counter() - start
    peak = peak_mib()
    return {"path": args.child, "loss": float(loss.detach()), "batch": list(batch["input_ids"].shape),
            "labelled_tokens": int((batch["labels"] != -100).sum()), "rss_before_mib": round(before, 1),
            "peak_before_step_mib": round(peak_before, 1), "peak_mib": round(peak, 1),
            "step_peak_mib": round(peak - before, 1), "step_raised_the_peak": peak > peak_before,
            "step_seconds": round(seconds, 2), "chunk_tokens": CHUNK_TOKENS, "bf16_autocast": args.bf16}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    add_local_model_args(p)
    p.add_argument("--dataset", default="subj", help="a built-in generation dataset")
    p.add_argument("--batch", type=int, default=8, help="training pairs in the batch")
    p.add_argument("--repeats", type=int, default=3, help="fresh processes per path, alternating")
    p.add_argument("--paths", default="full,completion-only", help=f"comma-separated loss paths of {', '.join(PATHS)}")
    p.add_argument("--max-length", type=int, default=256, help="tokens per training example after truncation")
    p.add_argument("--bf16", action="store_true", help="run the step under bf16 autocast, as the GPU grid does")
    p.add_argument("--out", required=True, help="the JSON to write")
    p.add_argument("--child", choices=PATHS, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(args)))
        return
    paths = [x.strip() for x in args.paths.split(",") if x.strip()]
    unknown = sorted(set(paths) - set(PATHS))
    if unknown or len(paths) < 2:
        p.error(f"--paths needs two or more of {', '.join(PATHS)}; got {args.paths!r}")
    result = {**run_provenance(), "model": Path(args.model).name, "dataset": args.dataset, "batch": args.batch,
              "max_length": args.max_length, "bf16_autocast": args.bf16, "lora": "r=8, all-linear", "runs": []}
    for _ in range(args.repeats):
        for path in paths:
            cmd = [sys.executable, __file__, "--child", path, "--model", args.model, "--data-dir", args.data_dir,
                   "--dataset", args.dataset, "--batch", str(args.batch), "--threads", str(args.threads),
                   "--max-length", str(args.max_length)] + (["--bf16"] if args.bf16 else [])
            done = subprocess.run(cmd, check=True, capture_output=True, text=True)
            run = json.loads(done.stdout.strip().splitlines()[-1])
            result["runs"].append(run)
            print(f"{path:16s} step peak {run['step_peak_mib']:8.1f} MiB  loss {run['loss']:.6f}  "
                  f"{run['step_seconds']:.1f} s  batch {run['batch']}")
    summary = {}
    for path in paths:
        peaks = sorted(r["step_peak_mib"] for r in result["runs"] if r["path"] == path)
        times = sorted(r["step_seconds"] for r in result["runs"] if r["path"] == path)
        summary[path] = {"step_peak_mib_median": statistics.median(peaks), "step_peak_mib_range": [peaks[0], peaks[-1]],
                         "step_seconds_median": statistics.median(times)}
    losses = {r["path"]: r["loss"] for r in result["runs"]}
    first, rest = paths[0], paths[1:]
    result["summary"] = summary
    result["loss_rel_diff"] = {f"{first} vs {other}": abs(losses[first] - losses[other]) / abs(losses[first])
                               for other in rest}
    result["step_peak_ratio_median"] = {f"{first} / {other}": round(summary[first]["step_peak_mib_median"]
                                                                     / summary[other]["step_peak_mib_median"], 2)
                                        for other in rest}
    out = atomic_write_text(args.out, json.dumps(result, indent=1) + "\n")
    print(f"step peak ratios (medians): {result['step_peak_ratio_median']}; loss relative differences "
          f"{result['loss_rel_diff']}; written to {out}")


if __name__ == "__main__":
    main()
