"""The benchmark grid: every (dataset, target set, r̄, method, seed) fine-tuning run, resumable.

``python -m adarank.compare.grid --data-dir ~/nltk_data --results benchmarks/results/grid`` first
scores one AdaRank plan per target set on the base model (``DIR/plans/<target-set>.json`` and a
heatmap next to it; re-used when present), then runs every missing run in a pool of worker
processes. Each run's record is written atomically to ``DIR/runs/<key>.json`` with
``key = <dataset>__<target-set>__r<rank>__<method>__s<seed>`` (a dataset file or hub name enters as
:func:`~adarank.compare.data.dataset_slug`, without path separators), so a finished run is never repeated
and a killed one (no file) runs again on the next call. A run that raises is appended to
``DIR/errors.jsonl`` and the grid goes on; the exit code is 1 when any run failed. A run that ran out of
accelerator memory (several workers share one GPU) goes to the back of the queue instead, up to three times,
and the pool keeps one slot fewer open from then on (never fewer than half the workers). A resumed grid
refuses finished runs made with other training options or data sizes than the call's, rather than mixing them.

Runs are ordered seed-major, then dataset, target set and r̄, with the methods innermost: the
methods of one (dataset, target set, r̄, seed) are launched one after another and finish close
together, and a grid stopped early by ``--timeout-minutes`` holds complete paired seeds for as many
settings as possible instead of all seeds of a few settings.

``--lr-sweep 1e-4,3e-4,1e-3`` runs only ``uniform`` over those learning rates (keys get
``__lr<lr>`` before the seed); it shares ``DIR/plans``. By default (``--sweep-on validation``) each
sweep run trains on 90 % of the training set and is scored on the other 10 % (stratified, seed 0),
into ``DIR/lr-sweep-validation/``, so the test set never picks a hyper-parameter.
``--sweep-on test`` scores the sweep on the test split instead, into ``DIR/lr-sweep/`` (how the
published grid was tuned). ``--lr-from-sweep`` reads the sweep that ``--sweep-on`` names.

Beyond the core package and the method registry, only the standard library is imported at module
level: spawned workers import this module first, and the training libraries are loaded where they
are used.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import gc
import json
import multiprocessing
import os
import statistics
import sys
import time
import traceback
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from ..cli_args import split_list
from ..errors import AdaRankError
from ..io import atomic_write_json
from ..version import __version__, source_commit
from .completeness import incomplete_sweeps
from .data import dataset_slug, is_builtin_corpus
from .methods import CORE_METHODS, METHODS, TASK_PROBE_SEED, PlanVariant, sample_texts, variant_of
from .records import SWEEP_DIRS, diverged_keys, unfinished_keys

TARGET_SETS: dict[str, "list[str] | str"] = {
    "value": ["value"],
    "query": ["query"],
    "key": ["key"],
    "attn-out": ["attention.output.dense"],
    "attention": ["query", "key", "value", "attention.output.dense"],
    # every Linear / Conv1D inside the block stack of any architecture (for BERT: the six above; for a
    # Llama / Gemma / Qwen decoder: q, k, v, o, gate, up, down), as `adarank predict --targets all-linear`
    "all-linear": "all-linear",
    # a decoder's attention projections
    "attention-proj": ["q_proj", "k_proj", "v_proj", "o_proj"],
}
#: the training tasks (adarank.compare.tasks); a dataset name is read as that task's data
TASK_NAMES = ("classification", "generation")
#: what a sweep's best rate is chosen for: each method its own (the fair protocol), or uniform's for all
LR_CHOICES = ("per-method", "shared")
DEFAULT_DATASETS = ("trec-coarse", "mr", "subj")
PLAN_RANK = 8
PLAN_GROUPS = "joint"
DEFAULT_RESULTS = "benchmarks/results/grid"


# ------------------------------------------------------------------------------------- runs
#: the validation split of a --sweep-on validation run: this share of the training set, stratified
VALIDATION_FRACTION = 0.1
VALIDATION_SEED = 0

@dataclass(frozen=True)
class RunSpec:
    """One cell of the grid. ``lr`` is set only in the learning-rate sweep."""

    dataset: str
    target_set: str
    rank: int
    method: str
    seed: int
    lr: float | None = None

    @property
    def key(self) -> str:
        lr = f"__lr{format_lr(self.lr)}" if self.lr is not None else ""
        return f"{dataset_slug(self.dataset)}__{self.target_set}__r{self.rank}__{self.method}{lr}__s{self.seed}"


def format_lr(lr: float) -> str:
    return format(float(lr), "g")


def plan_grid(datasets: Sequence[str], target_sets: Sequence[str], ranks: Sequence[int],
              methods: Sequence[str], seeds: Sequence[int], lrs: Sequence[float] | None = None) -> list[RunSpec]:
    """All runs in launch order: seed-major, methods (or learning rates) innermost."""
    runs: list[RunSpec] = []
    for seed in seeds:
        for dataset in datasets:
            for target_set in target_sets:
                for rank in ranks:
                    if lrs is None:
                        runs.extend(RunSpec(dataset, target_set, rank, m, seed) for m in methods)
                    else:
                        runs.extend(RunSpec(dataset, target_set, rank, m, seed, lr) for m in methods for lr in lrs)
    return runs


@dataclass
class Job:
    """Everything a worker process needs for one run (plain, picklable values only)."""

    spec: RunSpec
    model: str
    data_dir: str | None  # None: the loader reads $NLTK_DATA
    max_train: int | None
    plan_path: str
    out_path: str
    config: dict[str, Any]
    device: str
    groups: str
    extra: dict[str, Any] = field(default_factory=dict)
    validation: bool = False  # score on a held-out part of the training set instead of the test split
    task: str = "classification"
    max_test: int | None = None


@dataclass
class Outcome:
    key: str
    ok: bool
    seconds: float
    error: str | None = None
    error_type: str | None = None
    traceback: str | None = None


_CACHE: dict[Any, Any] = {}


def _cached(key: Any, make: Callable[[], Any]) -> Any:
    if key not in _CACHE:
        _CACHE[key] = make()
    return _CACHE[key]


def _init_worker(threads: int | None) -> None:
    """Worker start: end with the grid, a share of the CPU threads, and no per-run load reports over the
    progress bar."""
    from .processes import die_with_parent

    die_with_parent()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    import warnings

    import torch
    from transformers.utils import logging as hf_logging

    warnings.filterwarnings("ignore", category=FutureWarning)  # library deprecation notes, once per worker
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    if threads:
        torch.set_num_threads(threads)


def execute_run(job: Job) -> Outcome:
    """Run one grid cell and write its record; never raises for a failing run (it reports it)."""
    start = time.perf_counter()
    try:
        from ..plan import RankPlan
        from .methods import plan_for_method
        from .train import TrainConfig, run_one

        spec = job.spec
        where = (job.task, spec.dataset, job.data_dir, job.max_train, job.max_test)
        data = _cached(("data", *where), lambda: load_task_data(job.task, spec.dataset, job.data_dir, job.max_train,
                                                                 job.max_test))
        if job.validation:
            data = _cached(("validation", *where), lambda: hold_out_task_data(job.task, data))
        scored = _cached(("plan", job.plan_path), lambda: RankPlan.load(job.plan_path))
        plan = plan_for_method(spec.method, scored, spec.rank, spec.seed, groups=job.groups)
        config = TrainConfig(**job.config)
        # run_one wants the full base-model names of the scored plan (for eva/adalora too)
        targets = [m.name for m in scored.modules]
        record = run_one(job.model, data, method=spec.method, plan=plan, targets=targets,
                         rank=spec.rank, config=config, seed=spec.seed, device=job.device, progress=False,
                         extra=dict(job.extra))
        record = dict(record)
        # the grid knows a dataset by its spec (what keys, sweeps and reports match on); the loader's name stays too
        record["dataset_name"], record["dataset"] = record["dataset"], spec.dataset
        record.update(job.extra)
        record["key"] = spec.key
        record["timestamp"] = _now()
        atomic_write_json(job.out_path, record)
        return Outcome(spec.key, True, time.perf_counter() - start)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - a failing run is reported, the grid goes on
        return Outcome(job.spec.key, False, time.perf_counter() - start, error=str(exc) or repr(exc),
                       error_type=type(exc).__name__, traceback=traceback.format_exc())
    finally:
        gc.collect()
        _empty_cuda_cache()


def _empty_cuda_cache() -> None:
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def git_commit(where: Path | None = None) -> str | None:
    """The commit of the checkout adarank runs from (``where``: another package folder), or None when it does
    not run from one; see :func:`adarank.version.source_commit`. Never the commit of the working directory:
    a grid started from inside another repository must not name that repository's HEAD."""
    return source_commit(where)


# ---------------------------------------------------------------------------------- parsing
def _ints(text: str, what: str, minimum: int) -> list[int]:
    try:
        values = [int(t) for t in split_list(text)]
    except ValueError:
        raise AdaRankError(f"--{what} must be comma-separated integers, got '{text}'") from None
    if not values:
        raise AdaRankError(f"--{what} is empty")
    if any(v < minimum for v in values):
        raise AdaRankError(f"--{what} values must be >= {minimum}, got '{text}'")
    return list(dict.fromkeys(values))


def _floats(text: str, what: str) -> list[float]:
    try:
        values = [float(t) for t in split_list(text)]
    except ValueError:
        raise AdaRankError(f"--{what} must be comma-separated numbers such as 1e-4,3e-4, got '{text}'") from None
    if not values or any(not v > 0 for v in values):
        raise AdaRankError(f"--{what} needs numbers > 0, got '{text}'")
    return list(dict.fromkeys(values))


def load_task_data(task: str, spec: str, data_dir: str | None, max_train: int | None, max_test: int | None) -> Any:
    """Dataset ``spec`` in the form ``task`` trains on (classification data or prompt/completion pairs)."""
    if task == "generation":
        from .datasets import load_generation_spec

        return load_generation_spec(spec, data_dir=data_dir, max_train=max_train, max_test=max_test)
    from .data import load_dataset_spec

    if max_test is not None:
        raise AdaRankError("--max-test applies to generation tasks only (their evaluation decodes); "
                           "classification scores the whole test split")
    return load_dataset_spec(spec, data_dir=data_dir, max_train=max_train)


def hold_out_task_data(task: str, data: Any) -> Any:
    """``data`` with the sweep's validation split (VALIDATION_FRACTION of training, stratified) as its test set."""
    if task == "generation":
        from .datasets import hold_out_validation
    else:
        from .data import hold_out_validation
    return hold_out_validation(data, VALIDATION_FRACTION, VALIDATION_SEED)


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog or "python -m adarank.compare.grid",
        description="Resumable benchmark grid: LoRA fine-tuning under several rank-allocation methods, "
                    "datasets, target sets, budgets and seeds; one JSON record per run.",
    )
    p.add_argument("--model", default=None, help="model folder or hub id to fine-tune and score "
                   "(default: the packaged all-MiniLM-L6-v2)")
    p.add_argument("--data-dir", default=None, help="NLTK data directory holding corpora/qc.zip, "
                   "corpora/sentence_polarity.zip, corpora/subjectivity.zip (default: $NLTK_DATA; needed only for "
                   "those built-in corpora, not for your own .csv/.tsv/.jsonl files)")
    p.add_argument("--datasets", default=",".join(DEFAULT_DATASETS), help="comma-separated dataset specs "
                   "(default: %(default)s)")
    p.add_argument("--target-sets", default="value,attention", help="comma-separated target sets out of "
                   + ", ".join(TARGET_SETS) + " (default: %(default)s)")
    p.add_argument("--task", choices=TASK_NAMES, default="classification",
                   help="classification: a new head, accuracy; generation: causal-LM SFT on prompt -> completion "
                        "pairs, scored by greedy decoding with the dataset's metric (default: %(default)s)")
    p.add_argument("--unit", choices=("ranks", "params"), default="ranks",
                   help="budget of the scored plans (and so of every plan method): equal rank units, or equal "
                        "trainable parameters as uniform r̄ (use params when module shapes differ, e.g. all-linear "
                        "on a decoder; default: %(default)s)")
    p.add_argument("--ranks", default="2,8", help="comma-separated average ranks r̄ (default: %(default)s)")
    p.add_argument("--methods", default=None, help="comma-separated rank-allocation methods "
                   "(default: adarank.compare.methods.CORE_METHODS; the others, e.g. adarank-power-2, by name)")
    p.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated training seeds (default: %(default)s)")
    p.add_argument("--workers", type=int, default=1, help="training processes running at once on the one "
                   "device (0: run in this process, for debugging; default: %(default)s)")
    p.add_argument("--results", default=DEFAULT_RESULTS, help="results folder: plans/, runs/, errors.jsonl "
                   "(default: %(default)s)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default: %(default)s)")
    p.add_argument("--lr", type=float, default=None, help="learning rate of the LoRA factors "
                   "(default: TrainConfig's)")
    p.add_argument("--epochs", type=float, default=None, help="training epochs (default: TrainConfig's)")
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many optimizer steps "
                   "(default: TrainConfig's)")
    p.add_argument("--batch-size", type=int, default=None, help="training batch size (default: TrainConfig's)")
    p.add_argument("--max-length", type=int, default=None, help="truncate texts to this many tokens; for "
                   "generation, an evaluation prompt plus its decoding budget must fit too (default: TrainConfig's)")
    p.add_argument("--max-train", type=int, default=None, help="use at most this many training examples "
                   "per dataset (default: all)")
    p.add_argument("--max-test", type=int, default=None, help="generation: evaluate on a seeded subsample of at "
                   "most this many test examples, the same for every method (default: all)")
    p.add_argument("--max-new-tokens", type=int, default=None, help="generation: cap on decoded tokens "
                   "(default: the dataset's own)")
    p.add_argument("--eval-batch-size", type=int, default=None, help="evaluation batch size "
                   "(default: TrainConfig's)")
    p.add_argument("--chat-template", action="store_true", help="generation: wrap prompts in the tokenizer's "
                   "chat template")
    p.add_argument("--lr-from-sweep", action="store_true",
                   help="run each method at the learning rate with its best mean score in the sweep that --sweep-on "
                        "names (run that first with --lr-sweep); see --lr-choice")
    p.add_argument("--lr-choice", choices=LR_CHOICES, default="per-method",
                   help="with --lr-from-sweep: 'per-method' (default; each method its own best rate, and the sweep "
                        "seeds must not be evaluation seeds) or 'shared' (uniform's best rate for every method, as "
                        "the published MiniLM grid did)")
    p.add_argument("--lr-sweep", default=None, help="comma-separated learning rates, e.g. 1e-4,3e-4,1e-3: run "
                   "the --methods over them on the --seeds given (use a sweep seed that is not an evaluation "
                   "seed, e.g. --seeds 100), into the sweep folder that --sweep-on names")
    p.add_argument("--extend-edges", type=int, default=0, metavar="N",
                   help="with --lr-sweep: where a method's best rate is the largest or smallest it tried, run "
                        "one more rate past it (1e-2 -> 3e-2, 3e-4 -> 1e-4), and again while the choice stays on "
                        "an edge, at most N times (default 0: the rates given only)")
    p.add_argument("--sweep-on", choices=tuple(SWEEP_DIRS), default="validation",
                   help="what the learning-rate sweep is scored on: 'validation' (default; 10%% of the training "
                        "set held out, stratified, seed 0; RESULTS/lr-sweep-validation) or 'test' (the test split; "
                        "RESULTS/lr-sweep, as the published grid was tuned)")
    p.add_argument("--timeout-minutes", type=float, default=None, help="launch no new run that would not "
                   "finish within this many minutes of the command's start, judged by the median time of the runs "
                   "finished so far; runs already started finish and are kept (default: no limit)")
    p.add_argument("--retry-diverged", action="store_true",
                   help="run again the runs whose training diverged (non-finite loss, listed in errors.jsonl); by "
                        "default they are final, so that a setting is not retried until a lucky seed trains")
    p.add_argument("--dry-run", action="store_true", help="list the runs (done or to do) and exit; "
                   "nothing is scored or trained")
    return p


@dataclass
class GridOptions:
    model: str
    data_dir: str | None
    datasets: list[str]
    target_sets: list[str]
    ranks: list[int]
    methods: list[str]
    seeds: list[int]
    workers: int
    results: Path
    device: str
    config: dict[str, Any]
    max_train: int | None
    lrs: list[float] | None
    timeout_minutes: float | None
    dry_run: bool
    lr_from_sweep: bool = False
    extend_edges: int = 0  # sweep: rounds of one more rate past each choice on an edge of the tried rates
    retry_diverged: bool = False
    sweep_on: str = "validation"  # a key of SWEEP_DIRS
    task: str = "classification"
    unit: str = "ranks"
    lr_choice: str = "per-method"
    max_test: int | None = None
    argv: list[str] = field(default_factory=list)  # the command line, kept in invocations.jsonl

    @property
    def sweep_dir(self) -> Path:
        return self.results / SWEEP_DIRS[self.sweep_on]

    @property
    def out_dir(self) -> Path:
        return self.sweep_dir if self.lrs is not None else self.results


def options_from_args(args: argparse.Namespace) -> GridOptions:
    datasets = list(dict.fromkeys(split_list(args.datasets)))
    if not datasets:
        raise AdaRankError("--datasets is empty; e.g. --datasets trec-coarse,mr,subj")
    target_sets = list(dict.fromkeys(split_list(args.target_sets)))
    unknown = [t for t in target_sets if t not in TARGET_SETS]
    if unknown or not target_sets:
        raise AdaRankError(f"unknown target set(s) {unknown}; choose from {', '.join(TARGET_SETS)}")
    known = tuple(METHODS)
    methods = list(dict.fromkeys(split_list(args.methods))) if args.methods else list(CORE_METHODS)
    bad = [m for m in methods if m not in known]
    if bad or not methods:
        raise AdaRankError(f"unknown method(s) {bad}; choose from {', '.join(known)}")
    if args.workers < 0:
        raise AdaRankError(f"--workers must be >= 0, got {args.workers}")
    if args.timeout_minutes is not None and not args.timeout_minutes > 0:
        raise AdaRankError(f"--timeout-minutes must be > 0, got {args.timeout_minutes}")
    for name in ("max_steps", "batch_size", "max_length", "max_train", "max_test", "max_new_tokens",
                 "eval_batch_size"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise AdaRankError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    for name in ("lr", "epochs"):
        value = getattr(args, name)
        if value is not None and not value > 0:
            raise AdaRankError(f"--{name} must be > 0, got {value}")
    # Without --data-dir the data loader reads $NLTK_DATA itself (it may list several folders).
    # Only the built-in corpora read it: a user's own files and hub datasets need no data folder.
    data_dir = args.data_dir or None
    builtin = [d for d in datasets if is_builtin_corpus(d)]
    if data_dir is None and builtin and not os.environ.get("NLTK_DATA", "").strip() and not args.dry_run:
        raise AdaRankError(f"no data directory for the built-in corpora {', '.join(builtin)}: pass --data-dir "
                           "(an NLTK data folder with corpora/*.zip) or set NLTK_DATA")
    if data_dir is not None and not args.dry_run and not Path(data_dir).expanduser().is_dir():
        raise AdaRankError(f"--data-dir '{data_dir}' is not a folder")
    if args.model:
        local = Path(args.model).expanduser()
        model = str(local.resolve()) if local.exists() else args.model  # one spelling for plans and workers
    else:
        from ..loading import default_model_path

        model = default_model_path()
    config = {k: getattr(args, k) for k in ("lr", "epochs", "max_steps", "batch_size", "max_length",
                                            "max_new_tokens", "eval_batch_size")
              if getattr(args, k) is not None}
    if args.chat_template:
        config["chat_template"] = True
    if args.extend_edges < 0:
        raise AdaRankError(f"--extend-edges must be >= 0, got {args.extend_edges}")
    if args.extend_edges and not args.lr_sweep:
        raise AdaRankError("--extend-edges extends a learning-rate sweep; give it with --lr-sweep")
    return GridOptions(
        model=model, data_dir=str(Path(data_dir).expanduser()) if data_dir else None, datasets=datasets,
        target_sets=target_sets, ranks=_ints(args.ranks, "ranks", 1),
        methods=methods, seeds=_ints(args.seeds, "seeds", 0), workers=args.workers,
        results=Path(args.results), device=args.device, config=config, max_train=args.max_train,
        lrs=_floats(args.lr_sweep, "lr-sweep") if args.lr_sweep else None,
        timeout_minutes=args.timeout_minutes, dry_run=args.dry_run, lr_from_sweep=args.lr_from_sweep,
        extend_edges=args.extend_edges, retry_diverged=args.retry_diverged, sweep_on=args.sweep_on, task=args.task,
        unit=args.unit,
        lr_choice=args.lr_choice, max_test=args.max_test,
    )


# ---------------------------------------------------------------------------------- scoring
#: (target set, plan variant name, dataset or None): one scored plan of the grid
PlanKey = tuple[str, str, "str | None"]


def plan_path(results: Path, target_set: str, variant: PlanVariant | None = None, dataset: str | None = None) -> Path:
    slug = dataset_slug(dataset) if dataset else dataset
    return results / "plans" / f"{(variant or PlanVariant()).file_stem(target_set, slug)}.json"


def plan_key(spec: RunSpec) -> PlanKey:
    """The scored plan a run allocates from (see :mod:`adarank.compare.methods.variants`)."""
    variant = variant_of(spec.method)
    return (spec.target_set, variant.name, spec.dataset if variant.per_dataset else None)


def needed_plans(opts: GridOptions) -> dict[PlanKey, tuple[PlanVariant, Path]]:
    """Every scored plan the grid's runs allocate from, in a stable order."""
    methods = opts.methods
    needed: dict[PlanKey, tuple[PlanVariant, Path]] = {}
    for ts in opts.target_sets:
        for method in methods:
            variant = variant_of(method)
            for dataset in (opts.datasets if variant.per_dataset else [None]):
                key = (ts, variant.name, dataset)
                needed.setdefault(key, (variant, plan_path(opts.results, ts, variant, dataset)))
    return needed


def _plan_label(key: PlanKey) -> str:
    return " ".join(part for part in key if part)


def ensure_plans(opts: GridOptions, log: Callable[[str], None] = print) -> dict[PlanKey, Path]:
    """Score (or re-use) every plan the runs need: r̄ = 8, joint group, default ScoreConfig, the
    variant's signal and probes (one plan per target set; per dataset too for task probes)."""
    from ..plan import RankPlan
    from ..plotting import plot_plan

    needed = needed_plans(opts)
    missing = []
    for key, (variant, path) in needed.items():
        if path.is_file():
            plan = RankPlan.load(path)
            stored = plan.settings.get("targets")
            made = PlanVariant.of_plan(plan.settings)
            if (stored != TARGET_SETS[key[0]] or plan.settings.get("grid_model") not in (None, opts.model)
                    or made != variant or plan.budget.unit != opts.unit):
                raise AdaRankError(
                    f"plan '{path}' was made for targets {stored} of model {plan.settings.get('grid_model')!r} "
                    f"({made.describe()}, budget in {plan.budget.unit}), not {TARGET_SETS[key[0]]} of {opts.model!r} "
                    f"({variant.describe()}, budget in {opts.unit}); "
                    "delete it or use another --results"
                )
            log(f"plan {_plan_label(key)}: re-using {path}")
            if not path.with_suffix(".png").is_file():
                plot_plan(plan, path.with_suffix(".png"), title=_plan_title(plan, key))
        else:
            missing.append(key)
    if not missing:
        return {key: path for key, (_, path) in needed.items()}

    from ..loading import load_model, load_tokenizer
    from ..predict import predict_ranks
    from ..scoring import ScoreConfig

    model = load_model(opts.model, device=opts.device).eval()
    tokenizer = load_tokenizer(opts.model)
    for key in missing:
        variant, path = needed[key]
        ts, _, dataset = key
        extra: dict[str, Any] = {"target_set": ts, "grid_model": opts.model}
        probes = None
        if variant.per_dataset:
            assert dataset is not None and variant.task_texts is not None
            data = load_task_data(opts.task, dataset, opts.data_dir, opts.max_train, opts.max_test)
            texts = data.train_prompts if opts.task == "generation" else data.train_texts
            probes = sample_texts(texts, variant.task_texts)
            extra.update(task_texts=variant.task_texts, task_dataset=dataset, task_probe_seed=TASK_PROBE_SEED)
        start = time.perf_counter()
        plan = predict_ranks(model, tokenizer, rank=PLAN_RANK, targets=TARGET_SETS[ts], groups=PLAN_GROUPS, unit=opts.unit,
                             probes=probes, signal=variant.signal, score_config=ScoreConfig(), progress=False,
                             extra_settings=extra)
        plan.save(path)
        plot_plan(plan, path.with_suffix(".png"), title=_plan_title(plan, key))
        log(f"plan {_plan_label(key)}: scored {len(plan.modules)} modules in "
            f"{time.perf_counter() - start:.1f} s -> {path}")
    del model
    gc.collect()
    _empty_cuda_cache()
    return {key: path for key, (_, path) in needed.items()}


def _plan_title(plan: Any, key: PlanKey) -> str:
    return f"{Path(plan.model).name or plan.model} — target set {_plan_label(key)}"


# ------------------------------------------------------------------------------------ grid
@dataclass
class GridSummary:
    total: int
    done: int = 0
    skipped: int = 0
    failed: int = 0
    not_started: int = 0
    seconds: float = 0.0
    failed_keys: list[str] = field(default_factory=list)
    diverged: int = 0  # earlier runs that diverged, not run again
    held_back: int = 0  # runs whose rate would come from an incomplete sweep, not started
    durations: list[float] = field(default_factory=list)  # seconds of each run finished in this call

    def line(self) -> str:
        again = f", {self.diverged} diverged before (not retried)" if self.diverged else ""
        waiting = f" ({self.held_back} waiting for an incomplete sweep)" if self.held_back else ""
        return (f"grid: {self.total} runs: {self.done} done, {self.skipped} skipped (already done){again}, "
                f"{self.failed} failed, {self.not_started} not started{waiting}; wall {_duration(self.seconds)}")


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


def _log_error(path: Path, outcome: Outcome) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"key": outcome.key, "timestamp": _now(), "error_type": outcome.error_type,
                       "error": outcome.error, "seconds": round(outcome.seconds, 3),
                       "traceback": outcome.traceback})
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(line + "\n")
        fh.flush()


#: (dataset, target set, r̄, method) -> the learning rate the sweep chose for it
SweptRates = dict[tuple[str, str, int, str], float]


def sweep_rows(sweep_dir: Path) -> list[Any]:
    """The sweep folder ``sweep_dir`` summarised: one :class:`~adarank.compare.report.SweepRow` per
    setting, method and rate, the best of each marked ``chosen`` (rates where a run diverged excluded)."""
    from .report import load_records, summarize_sweep

    return summarize_sweep(load_records(sweep_dir / "runs").runs, diverged=diverged_keys(sweep_dir / "errors.jsonl"),
                           unfinished=unfinished_keys(sweep_dir))


def held_back(opts: GridOptions, runs: Sequence[RunSpec]) -> dict[str, str]:
    """Runs that take their rate from a sweep that is incomplete: ``{key: why}``. They are not started (the rate
    the sweep never scored might have been the best), and run once the sweep is finished."""
    if not opts.lr_from_sweep or opts.lrs is not None:
        return {}
    gaps = incomplete_sweeps(opts.sweep_dir)
    out: dict[str, str] = {}
    for spec in runs:
        method = spec.method if opts.lr_choice == "per-method" else "uniform"
        rates = gaps.get((dataset_slug(spec.dataset), spec.target_set, spec.rank, method))
        if rates:
            out[spec.key] = f"{method}'s sweep lost lr {', '.join(format(lr, 'g') for lr in rates)}"
    return out


def swept_learning_rates(sweep_dir: Path) -> SweptRates:
    """The chosen lr of every method of every setting in the sweep folder ``sweep_dir``, keyed by dataset
    slug (see :func:`chosen_lr`)."""
    return {(dataset_slug(r.dataset), r.target_set, r.rank, r.method): r.lr for r in sweep_rows(sweep_dir)
            if r.chosen}


def sweep_seeds(sweep_dir: Path) -> set[int]:
    from .report import load_records

    return {int(rec["seed"]) for rec in load_records(sweep_dir / "runs").runs}


def chosen_lr(swept: SweptRates, spec: RunSpec, choice: str) -> float | None:
    """The rate ``spec`` runs at: its method's own (``per-method``) or uniform's (``shared``). Datasets match by
    slug, so ``./my/train.csv`` and ``my/train.csv`` are one dataset."""
    method = spec.method if choice == "per-method" else "uniform"
    return swept.get((dataset_slug(spec.dataset), spec.target_set, spec.rank, method))


def stale_runs(opts: GridOptions, runs: Sequence[RunSpec]) -> dict[str, float]:
    """Finished runs whose learning rate is not the one the sweep chooses now: ``{key: old lr}``.

    The sweep's choice can move when learning rates are added to it; a run trained at the old
    choice would otherwise be skipped as done and mixed with runs at the new one. Only with
    ``--lr-from-sweep`` (without it the lr is the command line's, which the record does not bind).
    """
    if not opts.lr_from_sweep or opts.lrs is not None:
        return {}
    swept = swept_learning_rates(opts.sweep_dir)
    stale: dict[str, float] = {}
    for spec in runs:
        path = opts.out_dir / "runs" / f"{spec.key}.json"
        chosen = chosen_lr(swept, spec, opts.lr_choice)
        if chosen is None or not path.is_file():
            continue
        try:
            used = float(json.loads(path.read_text(encoding="utf-8"))["hparams"]["lr"])
        except (OSError, ValueError, KeyError, TypeError):
            continue  # an unreadable record is the report's problem, not a reason to retrain
        if abs(used - chosen) > 1e-9 * max(abs(chosen), 1e-30):
            stale[spec.key] = used
    return stale


#: record fields a resumed grid must agree with; the learning rate is left to :func:`stale_runs`
UNBOUND_HPARAMS = frozenset({"lr"})


def mismatched_runs(opts: GridOptions, runs: Sequence[RunSpec]) -> dict[str, str]:
    """Finished runs made with other training options or data sizes than this call's: ``{key: what differs}``.

    Resuming would skip them as done and mix them with runs made under these options, a table whose rows
    were trained differently. Only fields present in both are compared, so records written before a field
    existed still resume.
    """
    from .train import TrainConfig

    try:
        wanted = {k: v for k, v in asdict(TrainConfig(**opts.config)).items() if k not in UNBOUND_HPARAMS}
    except (TypeError, AdaRankError):
        return {}  # _preflight reports a config that does not fit, in its own words
    sizes = {"max_train": opts.max_train, "max_test": opts.max_test}
    found: dict[str, str] = {}
    for spec in runs:
        path = opts.out_dir / "runs" / f"{spec.key}.json"
        if not path.is_file():
            continue
        try:
            rec = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        hparams = rec.get("hparams") if isinstance(rec.get("hparams"), dict) else {}
        split = rec.get("split") if isinstance(rec.get("split"), dict) else {}
        diffs = [f"{k} {v!r} on this command line, {hparams[k]!r} in the record" for k, v in wanted.items()
                 if k in hparams and hparams[k] != v]
        diffs += [f"{k} {v!r} on this command line, {split[k]!r} in the record" for k, v in sizes.items()
                  if k in split and split[k] != v]
        if diffs:
            found[spec.key] = "; ".join(diffs)
    return found


def supersede(out: Path, stale: dict[str, float]) -> Path:
    """Move stale run records to ``out/superseded/`` (kept, never deleted) so they run again."""
    dest = out / "superseded"
    dest.mkdir(parents=True, exist_ok=True)
    for key, lr in stale.items():
        os.replace(out / "runs" / f"{key}.json", dest / f"{key}__lr{lr:g}.json")
    return dest


def make_jobs(opts: GridOptions, runs: Sequence[RunSpec], plans: dict[PlanKey, Path], commit: str | None) -> list[Job]:
    jobs = []
    use_sweep = opts.lr_from_sweep and opts.lrs is None
    swept = swept_learning_rates(opts.sweep_dir) if use_sweep else {}
    if use_sweep and opts.lr_choice == "per-method":
        reused = sorted(sweep_seeds(opts.sweep_dir) & set(opts.seeds))
        if reused:
            raise AdaRankError(f"--lr-choice per-method: sweep seed(s) {reused} are also evaluation seeds, so a "
                               "method's best sweep run would be scored again as one of its seeds; sweep on another "
                               "seed (e.g. --seeds 100 with --lr-sweep) or use --lr-choice shared")
    for spec in runs:
        config = dict(opts.config)
        extra: dict[str, Any] = {"target_set": spec.target_set, "grid_commit": commit,
                                 "adarank_version": __version__}
        if use_sweep:  # an empty or missing sweep is an error too, not a silent fall-back to the default lr
            chosen = chosen_lr(swept, spec, opts.lr_choice)
            if chosen is None:
                whose = spec.method if opts.lr_choice == "per-method" else "uniform"
                raise AdaRankError(f"--lr-from-sweep: no sweep result for {whose} at {spec.dataset}/{spec.target_set}/"
                                   f"r{spec.rank} in '{opts.sweep_dir}' (or every rate diverged); run the --lr-sweep "
                                   f"(with the same --sweep-on) for {whose} in that setting first")
            config["lr"] = chosen
            extra.update({"lr_source": "sweep", "lr_swept_on": opts.sweep_on, "lr_choice": opts.lr_choice})
        validation = spec.lr is not None and opts.sweep_on == "validation"
        if spec.lr is not None:
            config["lr"] = spec.lr
            extra.update({"lr": spec.lr, "lr_sweep": True, "evaluated_on": opts.sweep_on})
        jobs.append(Job(spec=spec, model=opts.model, data_dir=opts.data_dir, max_train=opts.max_train,
                        plan_path=str(plans[plan_key(spec)]),
                        out_path=str(opts.out_dir / "runs" / f"{spec.key}.json"), config=config,
                        device=opts.device, groups=PLAN_GROUPS, extra=extra, validation=validation,
                        task=opts.task, max_test=opts.max_test))
    return jobs


def _preflight(opts: GridOptions) -> None:
    """Fail in one line before any work when a compare module or a dataset cannot be loaded."""
    try:
        from .methods import plan_for_method  # noqa: F401
        from .train import TrainConfig, run_one  # noqa: F401
    except ImportError as exc:
        raise AdaRankError(f"a benchmark module cannot be imported ({exc})") from None
    try:
        TrainConfig(**opts.config)
    except TypeError as exc:
        raise AdaRankError(f"training options do not fit TrainConfig: {exc}") from None
    for name in opts.datasets:
        try:
            load_task_data(opts.task, name, opts.data_dir, opts.max_train, opts.max_test)
        except AdaRankError:
            raise
        except Exception as exc:  # noqa: BLE001 - every run would fail the same way
            raise AdaRankError(f"dataset '{name}' cannot be loaded from '{opts.data_dir}': {exc}") from None


def run_grid(opts: GridOptions, log: Callable[[str], None] = print) -> GridSummary:
    start = time.monotonic()
    runs = plan_grid(opts.datasets, opts.target_sets, opts.ranks, opts.methods, opts.seeds, opts.lrs)
    out = opts.out_dir
    mismatched = mismatched_runs(opts, runs)
    if mismatched:
        key, why = next(iter(mismatched.items()))
        raise AdaRankError(f"{len(mismatched)} finished run(s) in '{out}' were made with other options than this "
                           f"call's (first: {key}: {why}); they would be "
                           "skipped as done and mixed with these. Give this grid its own --results folder, or the "
                           "options those runs were made with")
    stale = stale_runs(opts, runs)
    exists = [(out / "runs" / f"{r.key}.json").is_file() and r.key not in stale for r in runs]
    diverged = set() if opts.retry_diverged else diverged_keys(out / "errors.jsonl")
    final = [not e and r.key in diverged for r, e in zip(runs, exists)]
    todo = [r for r, e, f in zip(runs, exists, final) if not e and not f]
    summary = GridSummary(total=len(runs), skipped=sum(exists), diverged=sum(final))
    held = held_back(opts, todo)
    if held:
        todo = [r for r in todo if r.key not in held]
        summary.held_back = len(held)
        summary.not_started += len(held)
        log(f"warning: {len(held)} run(s) not started: their learning rate would come from an incomplete sweep "
            f"({'; '.join(sorted(set(held.values())))}; see errors.jsonl and invocations.jsonl in "
            f"{opts.sweep_dir}). Run the --lr-sweep again to finish it, then this command")

    if opts.dry_run:
        for r, e, f in zip(runs, exists, final):
            state = ('done' if e else 'diverged' if f else 'held' if r.key in held else 'stale' if r.key in stale
                     else 'todo')
            log(f"{state}  {r.key}")
        needs = [_plan_label(k) for k, (_, path) in needed_plans(opts).items() if not path.is_file()]
        if needs:
            log(f"plans to score first: {', '.join(needs)}")
        for r in edge_runs(opts, runs):
            log(f"edge  {r.key}")
        log(f"dry run: {len(runs)} runs, {len(todo)} to run, {summary.skipped} already done"
            + (f", {summary.diverged} diverged before (not retried)" if summary.diverged else ""))
        summary.not_started = len(todo) + len(held)
        summary.seconds = time.monotonic() - start
        return summary

    from ..io import ensure_writable_dir

    ensure_writable_dir(out / "runs")
    _preflight(opts)
    if stale:
        moved = supersede(out, stale)
        log(f"{len(stale)} finished run(s) used another learning rate than the sweep now chooses; "
            f"moved to {moved} and queued again")
    plans = ensure_plans(opts, log)  # the sweep needs them too: uniform ranks are built on the plan's modules
    commit = git_commit()
    log_requested(out, opts, commit, runs, todo=len(todo))
    log(f"grid: {len(runs)} runs, {len(todo)} to run, {summary.skipped} already done, "
        f"{max(opts.workers, 1)} worker(s), results in {out}")
    jobs = make_jobs(opts, todo, plans, commit)
    deadline = start + opts.timeout_minutes * 60 if opts.timeout_minutes else None
    _execute(jobs, opts, summary, out / "errors.jsonl", deadline, log)
    for _ in range(opts.extend_edges if opts.lrs is not None else 0):
        extra = [] if summary.not_started else edge_runs(opts, runs)
        if not extra:
            break
        log(f"sweep: {len(extra)} run(s) one rate past an edge choice: {', '.join(r.key for r in extra[:6])}"
            + (" ..." if len(extra) > 6 else ""))
        summary.total += len(extra)
        log_requested(out, opts, commit, extra, edge_extensions=True)
        _execute(make_jobs(opts, extra, plans, commit), opts, summary, out / "errors.jsonl", deadline, log)
        runs = [*runs, *extra]
    summary.seconds = time.monotonic() - start
    return summary


def log_requested(out: Path, opts: GridOptions, commit: str | None, runs: Sequence[RunSpec], **extra: Any) -> None:
    """Append this call, and the keys of the runs it was asked for, to ``out/invocations.jsonl`` before any
    starts: a run asked for that leaves neither a record nor a divergence (a time limit, a killed machine) is
    then known to be missing (:func:`~adarank.compare.records.unfinished_keys`), and a sweep missing it
    chooses no rate."""
    entry = {"timestamp": _now(), "argv": opts.argv, "commit": commit, "adarank_version": __version__,
             "model": opts.model, "runs": len(runs), **extra, "keys": [r.key for r in runs]}
    with open(out / "invocations.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry) + "\n")


def edge_runs(opts: GridOptions, runs: Sequence[RunSpec]) -> list[RunSpec]:
    """Sweep runs one rate past each edge choice (:mod:`~adarank.compare.sweep_edges`) of the settings and
    methods in ``runs``, on this call's seeds, that have no record yet; none unless ``--extend-edges``."""
    if opts.lrs is None or not opts.extend_edges:
        return []
    from .sweep_edges import edge_extensions

    folder = opts.sweep_dir
    beyond = {(dataset_slug(d), t, r, m): lr for (d, t, r, m), lr in edge_extensions(sweep_rows(folder)).items()}
    cells = dict.fromkeys((r.dataset, r.target_set, r.rank, r.method) for r in runs)
    extra = []
    for dataset, target_set, rank, method in cells:
        lr = beyond.get((dataset_slug(dataset), target_set, rank, method))
        if lr is None:
            continue
        for seed in opts.seeds:
            spec = RunSpec(dataset, target_set, rank, method, seed, lr)
            if not (folder / "runs" / f"{spec.key}.json").is_file():
                extra.append(spec)
    return extra


#: how often one run that ran out of accelerator memory is queued again before it counts as failed
OOM_RETRIES = 3


def out_of_memory(outcome: Outcome) -> bool:
    """A run that failed only because the processes sharing the accelerator left it too little memory.

    cuBLAS reports an allocation it could not make as a failed execution, so that counts too, and a kernel
    launch that could not allocate raises ``AcceleratorError: CUDA error: out of memory`` (seen on an H200
    with 15 runs sharing it), not ``OutOfMemoryError``."""
    if outcome.ok:
        return False
    text = f"{outcome.error_type} {outcome.error}"
    return ("OutOfMemoryError" in text or "CUDA out of memory" in text
            or "CUDA error: out of memory" in text or "cudaErrorMemoryAllocation" in text
            or "CUBLAS_STATUS_ALLOC_FAILED" in text or "CUBLAS_STATUS_EXECUTION_FAILED" in text)


def launch_allowed(now: float, deadline: float | None, durations: Sequence[float]) -> bool:
    """Whether a run started ``now`` is expected to end before ``deadline``: by the median of the finished runs'
    durations (none finished yet: any time before the deadline). A call with a hard wall-clock limit (a batch
    job, a rented GPU) then stops launching in time for its last runs to finish, instead of being killed in them."""
    if deadline is None:
        return True
    expected = float(statistics.median(durations)) if durations else 0.0
    return now + expected < deadline


def _execute(jobs: list[Job], opts: GridOptions, summary: GridSummary, errors: Path,
             deadline: float | None, log: Callable[[str], None]) -> None:
    from tqdm.auto import tqdm

    pending = deque(jobs)
    bar = tqdm(total=len(jobs), desc="grid", unit="run", dynamic_ncols=True)

    def record(outcome: Outcome) -> None:
        if outcome.ok:
            summary.done += 1
            summary.durations.append(outcome.seconds)
        else:
            summary.failed += 1
            summary.failed_keys.append(outcome.key)
            _log_error(errors, outcome)
            bar.write(f"FAILED {outcome.key}: {outcome.error_type}: {outcome.error}")
        bar.set_postfix(failed=summary.failed)
        bar.update(1)

    def may_launch() -> bool:
        return launch_allowed(time.monotonic(), deadline, summary.durations)

    try:
        if opts.workers == 0:
            while pending and may_launch():
                record(execute_run(pending.popleft()))
        else:
            _execute_pool(pending, opts, record, may_launch, bar.write)
    finally:
        bar.close()
    summary.not_started = len(pending)
    if pending:
        log(f"timeout: {len(pending)} run(s) not started after {opts.timeout_minutes:g} min")


def _execute_pool(pending: deque, opts: GridOptions, record: Callable[[Outcome], None],
                  may_launch: Callable[[], bool], log: Callable[[str], None] = print) -> None:
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    threads = max(1, (os.cpu_count() or 1) // opts.workers)

    def new_pool() -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=opts.workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_init_worker, initargs=(threads,))

    pool = new_pool()
    running: dict[Any, Job] = {}
    # runs that ran out of memory go to the back of the queue, and one slot fewer stays open (down to half the
    # workers), so that a grid that packed too many runs onto one accelerator settles where they fit
    slots, retries = opts.workers, Counter()
    try:
        while pending or running:
            while pending and len(running) < slots and may_launch():
                job = pending.popleft()
                running[pool.submit(execute_run, job)] = job
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            broken = False
            for future in finished:
                job = running.pop(future)
                try:
                    outcome = future.result()
                except BrokenProcessPool as exc:
                    broken = True
                    outcome = _crashed(job, exc)
                except Exception as exc:  # noqa: BLE001 - e.g. an unpicklable result
                    outcome = _crashed(job, exc)
                if out_of_memory(outcome) and retries[job.spec.key] < OOM_RETRIES:
                    retries[job.spec.key] += 1
                    slots = max(slots - 1, (opts.workers + 1) // 2)
                    pending.append(job)
                    log(f"out of memory: {job.spec.key} queued again ({retries[job.spec.key]} of {OOM_RETRIES}), "
                        f"{slots} run(s) at a time from now on")
                    continue
                record(outcome)
            if broken:  # a worker died (killed, out of memory): every run in that pool is lost
                for future in list(running):
                    job = running.pop(future)
                    record(_crashed(job, BrokenProcessPool("a worker process died while this run was in it")))
                pool.shutdown(wait=True, cancel_futures=True)
                pool = new_pool()
    except BaseException:
        from .processes import stop_workers

        stop_workers(pool)  # a busy worker would otherwise finish its run after the grid is gone
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _crashed(job: Job, exc: BaseException) -> Outcome:
    return Outcome(job.spec.key, False, 0.0, error=str(exc) or repr(exc), error_type=type(exc).__name__,
                   traceback="".join(traceback.format_exception(exc)))


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    from .processes import Terminated, sigterm_interrupts

    args = build_parser(prog).parse_args(argv)
    try:
        opts = options_from_args(args)
        opts.argv = list(sys.argv[1:] if argv is None else argv)
        with sigterm_interrupts():
            summary = run_grid(opts)
    except AdaRankError as exc:
        print(f"adarank.compare.grid: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        how = "terminated" if isinstance(exc, Terminated) else "interrupted"
        print(f"adarank.compare.grid: {how}; finished runs are kept, re-run the same command to resume",
              file=sys.stderr)
        return 143 if isinstance(exc, Terminated) else 130
    if not opts.dry_run:
        print(summary.line())
        if summary.failed:
            print(f"failed runs are listed in {opts.out_dir / 'errors.jsonl'}: " + ", ".join(summary.failed_keys[:10])
                  + (" ..." if summary.failed > 10 else ""))
    return 0 if summary.failed == 0 and summary.held_back == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
