"""Greedy decoding with and without the first-line stop, on a real model: same answers, fewer tokens.

Why: a generation run decodes up to ``max_new_tokens`` for every row that never emits EOS, and every
built-in metric reads only the first non-blank line (``adarank.compare.tasks.line_stop``). The unit tests
prove that the stop keeps that line for any token texts; this checks it end to end on a real tokenizer and
model (by default Gemma 3 270M untrained, which rambles past its answer: "\\n1.\\n2.\\n3" on PP attachment),
and counts what the stop saves. It decodes the first ``--n`` test prompts of each dataset both ways, in one
process, and records per dataset: whether every first line (``normalise_answer``) and every score agree,
the tokens decoded and the seconds.

    python experiments/decoder-checks/line_stop_check.py --model DIR --data-dir DIR [--datasets ppattach,conll2000-brackets]
        [--n 16] [--batch 16] --out FILE.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from adarank.io import atomic_write_text
from local_model_args import add_local_model_args  # beside this script
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from provenance import run_provenance  # noqa: E402  benchmarks/provenance.py


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    add_local_model_args(p)
    p.add_argument("--datasets", default="ppattach,conll2000-brackets", help="comma-separated built-in datasets")
    p.add_argument("--n", type=int, default=16, help="test prompts per dataset")
    p.add_argument("--batch", type=int, default=16, help="prompts decoded at once")
    p.add_argument("--max-length", type=int, default=512, help="prompt plus decoded tokens")
    p.add_argument("--out", required=True, help="the JSON to write")
    args = p.parse_args()

    import torch

    from adarank.compare.grid import load_task_data
    from adarank.compare.metrics import normalise_answer, score
    from adarank.compare.tasks.generation import Generation, TestPrompts, greedy_decode, eos_id
    from adarank.compare.train import TrainConfig
    from adarank.loading import load_tokenizer

    torch.set_num_threads(args.threads)
    task = Generation()
    tokenizer = load_tokenizer(args.model)
    result = {**run_provenance(), "model": Path(args.model).name, "n": args.n, "batch": args.batch, "datasets": {}}
    model = None
    for name in [d.strip() for d in args.datasets.split(",") if d.strip()]:
        data = load_task_data("generation", name, args.data_dir, 8, args.n)
        model = model or task.load_model(args.model, data, "dtype")
        budget = task.max_new_tokens(data, TrainConfig(), tokenizer)
        prompts = TestPrompts(tokenizer, data.test_prompts, args.max_length, budget)
        cpu = dict(device_type="cpu", dtype=torch.bfloat16, enabled=False)
        runs = {}
        for stop in (False, True):
            counted: list[int] = []
            real = model.generate

            def counting(*a, **k):
                out = real(*a, **k)
                counted.append(int(out.shape[1] - k["input_ids"].shape[1]))  # decoding steps of this batch
                return out

            model.generate = counting
            start = time.perf_counter()
            try:
                texts = greedy_decode(model, tokenizer, prompts, budget, args.batch, torch.device("cpu"), cpu,
                                      stop_at_line_end=stop)
            finally:
                del model.generate
            runs[stop] = {"seconds": round(time.perf_counter() - start, 2), "steps": counted, "texts": texts,
                          "score": score(data.metric, texts, list(data.test_completions))["score"]}
        same = [normalise_answer(a) == normalise_answer(b) for a, b in zip(runs[False]["texts"], runs[True]["texts"])]
        # a batch decodes until its last row stops: a row that wrote no line break after its first text (and no
        # EOS, which leaves no mark in the text) keeps it going
        ended = [len(text.lstrip().splitlines(keepends=True)) > 1 or text.lstrip() != text.lstrip().rstrip("\r\n")
                 for text in runs[True]["texts"]]
        entry = {"metric": data.metric, "max_new_tokens": budget, "prompts": len(prompts),
                 "first_lines_equal": sum(same), "score_without_stop": runs[False]["score"],
                 "score_with_stop": runs[True]["score"],
                 "decoding_steps_without_stop": runs[False]["steps"], "decoding_steps_with_stop": runs[True]["steps"],
                 "seconds_without_stop": runs[False]["seconds"], "seconds_with_stop": runs[True]["seconds"],
                 "examples": [{"without_stop": a[:200], "with_stop": b} for a, b in
                              zip(runs[False]["texts"][:3], runs[True]["texts"][:3])],
                 "rows_with_a_line_break_after_text": sum(ended),
                 "rows_without": [t[:300] for t, e in zip(runs[True]["texts"], ended) if not e],
                 "eos_id": eos_id(tokenizer)}
        result["datasets"][name] = entry
        print(f"{name}: first lines equal {sum(same)}/{len(same)}, score {entry['score_without_stop']:.4f} -> "
              f"{entry['score_with_stop']:.4f}, steps {sum(entry['decoding_steps_without_stop'])} -> "
              f"{sum(entry['decoding_steps_with_stop'])}, {entry['seconds_without_stop']} s -> "
              f"{entry['seconds_with_stop']} s; {sum(ended)} of {len(ended)} rows with a line break after text", flush=True)
    out = atomic_write_text(args.out, json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
