"""``adarank pilot``: its parser is generated from :class:`~adarank.pilot.config.PilotConfig`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ..cli_args import add_dataclass_arguments, dataclass_from_namespace
from ..errors import AdaRankError
from .config import DEMO_OVERRIDES, PilotConfig

DEMO_DIR = Path(__file__).resolve().parent / "demo"


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog or "adarank pilot",
        description="The cheapest LoRA configuration that is not worse than yours, decided with a "
                    "fixed-sequence non-inferiority test over arms ordered by cost, each at its own swept rate.")
    add_dataclass_arguments(parser, PilotConfig, positional=("model",))
    return parser


def config_from_args(ns: argparse.Namespace, given: Sequence[str]) -> PilotConfig:
    """The config; ``--demo`` fills the packaged data and the demo's defaults where no option was given."""
    if ns.demo:
        flags = {a.split("=", 1)[0] for a in given if a.startswith("--")}
        for name, value in DEMO_OVERRIDES.items():
            if "--" + name.replace("_", "-") not in flags:
                setattr(ns, name, value)
        if ns.data is None:
            ns.data, ns.test = str(DEMO_DIR / "train.jsonl"), str(DEMO_DIR / "test.jsonl")
        if "--out" not in flags:
            ns.out = "pilot-demo"
        if "--device" not in flags:
            ns.device = "cpu"
    return dataclass_from_namespace(PilotConfig, ns)


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    from ..compare.processes import Terminated, sigterm_interrupts
    from .runner import run_pilot

    given = list(sys.argv[1:] if argv is None else argv)
    ns = build_parser(prog).parse_args(given)
    try:
        cfg = config_from_args(ns, given)
        with sigterm_interrupts():
            summary = run_pilot(cfg, argv=given)
    except AdaRankError as exc:
        print(f"adarank: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        how = "terminated" if isinstance(exc, Terminated) else "interrupted"
        print(f"adarank: pilot {how}; finished runs are kept, re-run the same command to resume", file=sys.stderr)
        return 143 if isinstance(exc, Terminated) else 130
    return 0 if summary.get("decision") is not None and not summary.get("failed") else 1
