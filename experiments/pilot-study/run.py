"""The pilot study's one runner: ``adarank pilot`` end to end per case, then the confirmation on fresh seeds.

    python experiments/pilot-study/run.py --model MODEL_DIR --data-dir NLTK_DIR [--cases a,b] [--workers 12]
    python experiments/pilot-study/run.py --summary-only          # the tables from the records already there

Each case (task x current config, listed in ``config.json``) runs the pilot exactly as a user would, through
the command line (``python -m adarank pilot ...``), into ``results/<case>/pilot``. Once its decision exists,
the reference (the current config at the rate its pilot chose) and the recommended arm (the cheapest arm the
pilot called not worse, at its chosen rate) are trained again on the confirmation seeds, which the pilot never
used, into ``results/<case>/confirm``; the upheld rule in ``config.json`` (fixed before any run) judges them.

Everything resumes: the pilot from its own run records, the confirmation from its own, so a killed runner
started again with the same arguments finishes the same work and gives the same tables. ``timing.json`` per
case lists each pilot invocation's wall time, so a resumed pilot's time to decision is the sum of its parts.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(REPO / "src"))  # the study runs this repository's adarank, in-process and in the pilots


def load_config(path: Path = HERE / "config.json") -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def case_settings(conf: dict[str, Any], case: dict[str, Any]) -> dict[str, Any]:
    """The pilot's settings for one case, as :class:`adarank.pilot.config.PilotConfig` fields."""
    training = {**conf["training"], **case.get("training", {})}
    test = conf["test"]
    return {"task": conf["task"], "data": case["data"], "current": conf["currents"][case["current"]],
            "margin": test["margin"], "alpha": test["alpha"], "seeds": test["seeds"],
            "sweep_seeds": test["sweep_seeds"], "lr_extend": test["lr_extend"], "drop_arms": conf["drop_arms"],
            **training}


def pilot_argv(model: str, settings: dict[str, Any], data_dir: str | None, out: Path, workers: int,
               device: str) -> list[str]:
    argv = [model]
    for key, value in {**settings, "data_dir": data_dir, "out": str(out), "workers": workers,
                       "device": device}.items():
        if value is not None:
            argv += ["--" + key.replace("_", "-"), str(value)]
    return argv


def write_json(path: Path, value: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(value, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def decided(pilot_out: Path) -> dict[str, Any] | None:
    summary = read_json(pilot_out / "decision.json")
    return summary if summary and summary.get("complete") and summary.get("decision") else None


def run_case_pilot(model: str, settings: dict[str, Any], args: argparse.Namespace, case_dir: Path) -> int:
    """One pilot invocation (skipped when its decision exists); its wall time appended to timing.json."""
    pilot_out = case_dir / "pilot"
    if decided(pilot_out):
        return 0
    case_dir.mkdir(parents=True, exist_ok=True)
    argv = pilot_argv(model, settings, args.data_dir, pilot_out, args.workers, args.device)
    timing_path = case_dir / "timing.json"
    timing = read_json(timing_path) or {"invocations": []}
    start, wall = time.time(), time.monotonic()
    with open(case_dir / "pilot.log", "a", encoding="utf-8") as log:
        rc = subprocess.call([sys.executable, "-m", "adarank", "pilot", *argv], stdout=log, stderr=log,
                             cwd=REPO, env={**os.environ, "PYTHONUNBUFFERED": "1",
                                  "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])})
    timing["invocations"].append({"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start)),
                                  "wall_seconds": round(time.monotonic() - wall, 1), "returncode": rc,
                                  "workers": args.workers, "device": args.device})
    timing["command"] = "adarank pilot " + " ".join(argv)
    write_json(timing_path, timing)
    return rc


def confirm_case(model: str, settings: dict[str, Any], conf: dict[str, Any], args: argparse.Namespace,
                 case_dir: Path) -> dict[str, Any] | None:
    """Train the reference and the recommended arm on the confirmation seeds; None when no call was made."""
    from adarank.cli_args import split_list
    from adarank.pilot.arms import build_arms
    from adarank.pilot.config import PilotConfig
    from adarank.pilot.runner import Pilot, prepare, scored_plan
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    summary = decided(case_dir / "pilot")
    if summary is None:
        return None
    decision = summary["decision"]
    reference, recommended = decision["reference"], decision["cheapest_non_inferior"]
    if recommended is None:
        return {"call": False}
    out = case_dir / "confirm"
    (out / "runs").mkdir(parents=True, exist_ok=True)
    cfg = PilotConfig(model=model, data_dir=args.data_dir, out=str(out), workers=args.workers, device=args.device,
                      **{**settings, "seeds": conf["confirmation_seeds"]})
    prep = prepare(cfg)
    plan = scored_plan(prep, case_dir / "pilot", print)  # the pilot's own scored plan, never scored again
    arms = {a.name: a for a in build_arms(prep.current, prep.modules_all, prep.modules_current, plan, [],
                                          split_list(cfg.drop_arms) if cfg.drop_arms else [])}
    pilot = Pilot(prep, out, print)
    lrs = summary["chosen_lr"]
    pilot.run_all([lambda name=name, i=i: pilot.execute([pilot.job(arms[name], "confirm", float(lrs[name]), s)
                                                          for s in cfg.eval_seeds], i)
                   for i, name in enumerate((reference, recommended))])
    pilot.progress.close()
    return {"call": True, "scores": {name: pilot.scores(name, "confirm", float(lrs[name]), cfg.eval_seeds)
                                     for name in (reference, recommended)}}


# ------------------------------------------------------------------------------------------ tables
def upheld(reference: str, recommended: str, scores: dict[str, dict], lrs: dict[str, float], margin: float,
           alpha: float) -> dict[str, Any]:
    """The upheld rule of config.json: the same paired test the pilot uses, on the confirmation seeds."""
    from adarank.pilot.decision import NON_INFERIOR, ArmResult, decide

    ref = ArmResult(reference, reference, 0, 0, {int(k): v for k, v in scores[reference].items()}, lrs[reference])
    rec = ArmResult(recommended, recommended, 0, 0, {int(k): v for k, v in scores[recommended].items()},
                    lrs[recommended])
    step = decide(ref, [rec], margin, alpha).steps[0]
    return {"n": step.n, "mean_diff": step.mean_diff, "ci": list(step.ci), "p_value": step.p_value,
            "upheld": step.status == NON_INFERIOR, "status": step.status}


def case_row(conf: dict[str, Any], case: dict[str, Any], results: Path) -> dict[str, Any]:
    case_dir = results / case["name"]
    row: dict[str, Any] = {"case": case["name"], "data": case["data"], "current": case["current"]}
    summary = decided(case_dir / "pilot")
    if summary is None:
        row["status"] = "not decided"
        return row
    arms = {a["name"]: a for a in summary["arms"]}
    decision = summary["decision"]
    ref, cheap, best = decision["reference"], decision["cheapest_non_inferior"], decision["best"]
    runs = [read_json(p) for p in sorted((case_dir / "pilot" / "runs").glob("*.json"))]
    timing = read_json(case_dir / "timing.json") or {"invocations": []}
    wall = sum(i["wall_seconds"] for i in timing["invocations"])
    row.update({
        "status": "decided", "reference": ref, "reference_lr": summary["chosen_lr"][ref],
        "reference_mean": statistics.fmean(arms[ref]["scores"].values()),
        "reference_sd": statistics.stdev(arms[ref]["scores"].values()),
        "cheapest_non_inferior": cheap, "best": best,
        "steps": [{k: s[k] for k in ("arm", "n", "mean_diff", "ci", "p_value", "status")} for s in decision["steps"]],
        "runs": len(runs), "run_seconds": round(sum(r.get("wall_seconds", 0.0) for r in runs), 1),
        "wall_seconds": round(wall, 1), "invocations": len(timing["invocations"]),
        "runs_per_hour": round(len(runs) / wall * 3600, 1) if wall else None,
        "failed": summary.get("failed", []), "lr_notes": summary.get("lr_notes", []),
    })
    if cheap:
        row["params_ratio"] = arms[cheap]["trainable_params"] / arms[ref]["trainable_params"]
        row["max_rank_ratio"] = arms[cheap]["max_rank"] / arms[ref]["max_rank"]
    confirm_runs = sorted((case_dir / "confirm" / "runs").glob("*.json"))
    if cheap and confirm_runs:
        lrs = summary["chosen_lr"]
        scores: dict[str, dict[int, float]] = {ref: {}, cheap: {}}
        for path in confirm_runs:
            rec = read_json(path)
            if rec["arm"] in scores and math.isfinite(rec.get("test_score", float("nan"))):
                scores[rec["arm"]][int(rec["seed"])] = 100.0 * rec["test_score"]
        want = len(conf["confirmation_seeds"].split(","))
        if all(len(v) == want for v in scores.values()):
            row["confirmation"] = upheld(ref, cheap, scores, lrs, conf["test"]["margin"], conf["test"]["alpha"])
    return row


def table(rows: list[dict[str, Any]], conf: dict[str, Any]) -> str:
    lines = ["| case | reference (lr) | ref. mean ± sd | cheapest not worse | params ratio | max-rank ratio | best |"
             " runs | wall min | run-s | confirmation Δ [lower bound] | upheld |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    calls = held = 0
    for r in rows:
        if r["status"] != "decided":
            lines.append(f"| {r['case']} | not decided | | | | | | | | | | |")
            continue
        c = r.get("confirmation")
        if r["cheapest_non_inferior"]:
            ratio = f"{r['params_ratio']:.3f} | {r['max_rank_ratio']:.3f}"
        else:
            ratio = "– | –"
        conf_cell = (f"{c['mean_diff']:+.2f} [{c['ci'][0]:+.2f}]" if c else
                     ("no call" if not r["cheapest_non_inferior"] else "not run"))
        up = "yes" if c and c["upheld"] else ("no" if c else "–")
        if c:
            calls += 1
            held += int(c["upheld"])
        lines.append(f"| {r['case']} | {r['reference']} ({r['reference_lr']:g}) | {r['reference_mean']:.2f} ± "
                     f"{r['reference_sd']:.2f} | {r['cheapest_non_inferior'] or 'none'} | {ratio} | {r['best']} | "
                     f"{r['runs']} | {r['wall_seconds'] / 60:.1f} | {r['run_seconds']:.0f} | {conf_cell} | {up} |")
    lines += ["", f"'Not worse' calls confirmed on fresh seeds: {held} of {calls} upheld "
              f"(margin {conf['test']['margin']:g} points, one-sided α = {conf['test']['alpha']:g}, seeds "
              f"{conf['confirmation_seeds']})."]
    return "\n".join(lines) + "\n"


def write_tables(conf: dict[str, Any], results: Path) -> list[dict[str, Any]]:
    rows = [case_row(conf, case, results) for case in conf["cases"] if (results / case["name"]).is_dir()]
    write_json(results / "summary.json", rows)
    (results / "table.md").write_text(table(rows, conf), encoding="utf-8")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="the model folder (or .gguf) every case fine-tunes")
    parser.add_argument("--data-dir", help="NLTK data directory holding the built-in corpora")
    parser.add_argument("--results", default=str(HERE / "results"))
    parser.add_argument("--config", default=str(HERE / "config.json"), help="the study's settings (a smaller "
                        "copy of the same layout makes a quick check)")
    parser.add_argument("--cases", help="comma-separated case names (default: every case of config.json)")
    parser.add_argument("--workers", type=int, default=12, help="worker processes per pilot")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--skip-confirm", action="store_true", help="run the pilots only")
    parser.add_argument("--summary-only", action="store_true", help="only rebuild summary.json and table.md")
    args = parser.parse_args(argv)
    conf = load_config(Path(args.config))
    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    cases = conf["cases"]
    if args.cases:
        wanted = args.cases.split(",")
        unknown = sorted(set(wanted) - {c["name"] for c in cases})
        if unknown:
            parser.error(f"unknown case(s) {unknown}; config.json lists {[c['name'] for c in cases]}")
        cases = [c for c in cases if c["name"] in wanted]
    if not args.summary_only:
        if not args.model:
            parser.error("--model is needed to run cases (or give --summary-only)")
        for case in cases:
            settings = case_settings(conf, case)
            rc = run_case_pilot(args.model, settings, args, results / case["name"])
            print(f"{case['name']}: pilot exit {rc}", flush=True)
            if rc == 0 and not args.skip_confirm:
                outcome = confirm_case(args.model, settings, conf, args, results / case["name"])
                print(f"{case['name']}: confirmation {'done' if outcome and outcome['call'] else 'no call'}",
                      flush=True)
            write_tables(conf, results)
    rows = write_tables(conf, results)
    print((results / "table.md").read_text(encoding="utf-8"))
    return 0 if all(r["status"] == "decided" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
