"""The pilot's runs: every arm's learning-rate sweep on held-out training data, its evaluation on the test
split, the fixed-sequence decision, the report and the recommended adapter.

Order. Arms are taken most expensive first: the current config's sweep (which gives its tuned rate), its
evaluation at that rate and at the user's rate, then each cheaper arm's sweep and evaluation. A pilot cut by
``--budget-minutes`` therefore holds complete arms at the top of the ladder, which is the prefix the
fixed-sequence test can still decide.

Rates. Each arm's sweep starts at the user's rate x sqrt(r_current / r_arm) and tries three rates a factor 3
apart around it. The start is only where the search begins: a choice at an edge of the tried rates gets one
more rate beyond that edge (up to ``lr_extend`` times), so a poor start costs runs, not the choice. The
square root follows the pattern that, with alpha / r fixed, smaller adapters tend to want larger rates
(fewer directions share the same optimiser steps), without assuming the full 1/r of a linear rule: a 16x
cheaper arm starts 4x higher, a little over one sweep step.

Records. Each run is one JSON file ``runs/<arm>__<phase>__lr<lr>__s<seed>.json`` written atomically, so a
killed pilot resumes where it stopped; ``pilot.json`` holds the settings the runs were made with, and a
resumed pilot with other settings is refused.
"""

from __future__ import annotations

import heapq
import json
import math
import os
import shutil
import statistics
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import AdaRankError
from ..io import atomic_write_json
from .arms import (
    ALPHA_CONVENTION,
    Arm,
    CurrentConfig,
    build_arms,
    current_modules,
    model_modules,
    parse_current,
)
from .config import PilotConfig

#: sweep rates are this factor apart
LR_STEP = 3.0
#: rates tried around the start before any extension: start / 3, start, start x 3
LR_SPAN = 1
#: fewest examples left to train on, and to validate on, after the validation split is held out: below them a
#: sweep's choice is decided by one or two examples
MIN_TRAIN = 8
MIN_VALIDATION = 4
SETTINGS_FILE = "pilot.json"
SCORED_PLAN = "scored_plan.json"


def lr_key(lr: float) -> str:
    return format(float(lr), ".4g")


def run_name(arm: str, phase: str, lr: float, seed: int) -> str:
    return f"{arm}__{phase}__lr{lr_key(lr)}__s{seed}"


def start_rate(user_lr: float, r_current: int, r_arm: int) -> float:
    """Where an arm's sweep starts (see the module docstring for why the square root)."""
    return float(lr_key(user_lr * math.sqrt(r_current / r_arm)))


def rate_grid(start: float) -> list[float]:
    return [float(lr_key(start * LR_STEP ** k)) for k in range(-LR_SPAN, LR_SPAN + 1)]


# ------------------------------------------------------------------------------------------ data
_DATA_CACHE: dict[Any, Any] = {}


def load_data(task: str, data: str, test: str | None, data_dir: str | None, max_train: int | None) -> Any:
    """The data through compare's own loaders (a separate test file only for a local training file)."""
    key = (task, data, test, data_dir, max_train)
    if key not in _DATA_CACHE:
        if test is None:
            from ..compare.grid import load_task_data

            _DATA_CACHE[key] = load_task_data(task, data, data_dir, max_train, None)
        elif task == "generation":
            from ..compare.datasets import load_generation_spec

            _DATA_CACHE[key] = load_generation_spec(data, data_dir=data_dir, max_train=max_train, test_file=test)
        else:
            from ..compare.data import load_dataset_spec

            _DATA_CACHE[key] = load_dataset_spec(data, data_dir=data_dir, max_train=max_train, test_file=test)
    return _DATA_CACHE[key]


def validation_data(task: str, data: Any) -> Any:
    key = ("validation", id(data))
    if key not in _DATA_CACHE:
        from ..compare.grid import hold_out_task_data

        _DATA_CACHE[key] = hold_out_task_data(task, data)
    return _DATA_CACHE[key]


def check_data(task: str, data: Any) -> tuple[Any, Any]:
    """The task and the validation split, or one clear error when the data cannot feed the pilot."""
    from ..compare.tasks import task_for_data

    kind = task_for_data(data)
    if kind.name != task:
        raise AdaRankError(f"the data is {kind.name} data but --task is {task}")
    n_train, n_test = kind.sizes(data)
    if n_test < 2:
        raise AdaRankError(f"the test split has {n_test} example(s); the pilot needs a test split to score arms on")
    labels = getattr(data, "train_labels", None)
    if labels is not None and len(set(labels)) < 2:
        raise AdaRankError("the training data has a single label; accuracy needs at least two classes")
    try:
        val = validation_data(task, data)
    except AdaRankError as exc:
        raise AdaRankError(f"too few training examples ({n_train}) to hold out a validation split: {exc}") from None
    v_train, v_test = kind.sizes(val)
    if v_train < MIN_TRAIN or v_test < MIN_VALIDATION:
        raise AdaRankError(f"too few training examples ({n_train}) to hold out a validation split "
                           f"({v_train} left to train on, {v_test} to validate on); give more data")
    return kind, val


# ------------------------------------------------------------------------------------------ runs
def execute_job(job: dict[str, Any]) -> dict[str, Any]:
    """One run (picklable in and out, for worker processes): train with ``run_one``, write its record."""
    start = time.perf_counter()
    try:
        from ..compare.train import TrainConfig, run_one
        from ..plan import RankPlan

        data = load_data(job["task"], job["data"], job["test"], job["data_dir"], job["max_train"])
        if job["phase"] == "sweep":
            data = validation_data(job["task"], data)
        plan = RankPlan.from_dict(job["plan"])
        record = run_one(job["model"], data, method=job["method"], plan=plan, targets=[m.name for m in plan.modules],
                         rank=job["rank"], config=TrainConfig(**job["config"]), seed=job["seed"], device=job["device"],
                         progress=False)
        record = dict(record)
        record.update({"arm": job["arm"], "phase": job["phase"], "lr": job["lr"], "pilot_key": job["key"]})
        atomic_write_json(job["out_path"], record)
        return {"key": job["key"], "ok": True, "seconds": time.perf_counter() - start}
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - a failing run is reported; the pilot goes on
        return {"key": job["key"], "ok": False, "seconds": time.perf_counter() - start,
                "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}


class Progress:
    """One live line on stderr (rewritten in place on a terminal, plain lines otherwise)."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = time.monotonic()

    def show(self, done: int, left: int, seconds: Sequence[float], best: str) -> None:
        elapsed = time.monotonic() - self.start
        eta = statistics.median(seconds) * left if seconds else float("nan")
        line = (f"pilot: {done} runs done, {left} left, {elapsed / 60:.1f} min elapsed, "
                f"~{eta / 60:.1f} min to go" if math.isfinite(eta) else
                f"pilot: {done} runs done, {left} left, {elapsed / 60:.1f} min elapsed") + (f", best: {best}" if best else "")
        if self.tty:
            self.stream.write("\r\033[K" + line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


@dataclass
class Prepared:
    """Everything checked before the first write."""

    cfg: PilotConfig
    model: str
    current: CurrentConfig
    user_lr: float
    task_type: str
    arms: list[Arm]
    train_config: dict[str, Any]
    modules_current: list[Any]
    modules_all: list[Any]


def train_config(cfg: PilotConfig, ratio: float) -> dict[str, Any]:
    from ..compare.train import TrainConfig

    conf = TrainConfig(epochs=cfg.epochs, max_steps=cfg.max_steps, batch_size=cfg.batch_size, max_length=cfg.max_length,
                       lora_alpha_ratio=ratio)
    return asdict(conf)


def prepare(cfg: PilotConfig) -> Prepared:
    """Validate everything (settings, data, model, the current config against its modules, the arms)."""
    from ..cli_args import split_list
    from ..loading import default_model_path, load_model
    from ..plan import Budget, ModuleEntry, RankPlan

    model_path = cfg.model or default_model_path()
    current = parse_current(cfg.current, cfg.lr)
    user_lr = current.lr if current.lr is not None else 2e-4
    kind, _ = check_data(cfg.task, load_data(cfg.task, cfg.data, cfg.test, cfg.data_dir, cfg.max_train))
    try:
        model = load_model(model_path, device="cpu")
    except AdaRankError:
        raise
    except Exception as exc:  # noqa: BLE001 - one line for any load failure
        raise AdaRankError(f"model '{model_path}' cannot be loaded: {exc}") from None
    all_mods = model_modules(model)
    cur_mods = current_modules(model, current)
    del model
    # the arms with equal scores stand in for the scored plan, so names and budgets are checked before scoring
    stand_in = RankPlan(model=model_path, settings={}, modules=[
        ModuleEntry(m.name, m.type, m.block, list(m.shape), [1.0], 1.0, 0.0, current.r) for m in cur_mods],
        budget=Budget(rank=current.r, unit="params", rule="exact", groups="joint"))
    add = split_list(cfg.arms) if cfg.arms else []
    drop = split_list(cfg.drop_arms) if cfg.drop_arms else []
    arms = build_arms(current, all_mods, cur_mods, stand_in, add, drop)
    return Prepared(cfg, model_path, current, user_lr, kind.peft_task_type, arms, train_config(cfg, current.ratio),
                    cur_mods, all_mods)


def check_out(out: Path, fingerprint: dict[str, Any], force: bool) -> None:
    settings = out / SETTINGS_FILE
    if settings.is_file():
        try:
            stored = json.loads(settings.read_text(encoding="utf-8")).get("settings")
        except (OSError, json.JSONDecodeError):
            stored = None
        if stored != fingerprint and not force:
            diff = sorted(k for k in set(fingerprint) | set(stored or {})
                          if (stored or {}).get(k) != fingerprint.get(k))
            raise AdaRankError(f"'{out}' holds a pilot made with other settings ({', '.join(diff[:5])} differ); "
                               "use another --out, or --force to start over there")
    elif out.exists() and any(out.iterdir()) and not force:
        raise AdaRankError(f"'{out}' is not empty and holds no pilot; use another --out, or --force")


def scored_plan(prep: Prepared, out: Path, log: Callable[[str], None]) -> Any:
    """AdaRank's plan on the current targets, scored once (built-in probes) and kept in ``out``."""
    from ..plan import RankPlan

    path = out / SCORED_PLAN
    names = [m.name for m in prep.modules_current]
    if path.is_file():
        plan = RankPlan.load(path)
        if [m.name for m in plan.modules] == names:
            return plan
    from ..loading import load_model, load_tokenizer
    from ..predict import predict_ranks

    start = time.perf_counter()
    model = load_model(prep.model, device=prep.cfg.device if prep.cfg.device != "auto" else None).eval()
    plan = predict_ranks(model, load_tokenizer(prep.model), rank=prep.current.r, targets=names, rule="exact",
                         unit="params", groups="joint", progress=False, extra_settings={"pilot": True})
    plan.save(path)
    log(f"pilot: scored {len(names)} modules in {time.perf_counter() - start:.1f} s -> {path}")
    return plan


class Pilot:
    """Runs the arms' jobs, resuming from ``out/runs``.

    With workers, one process pool serves the whole pilot: every arm's sequence (sweep, any edge extension,
    evaluation) runs in its own thread and queues its jobs with the arm's place in the ladder as priority, so
    the workers stay busy while the top of the ladder still goes first (a ``--budget-minutes`` cut leaves a
    prefix of it). The first jobs are launched only once every arm has queued its first batch, so the first
    wave is the same on every run. A run's result depends only on its job, and every choice only on the
    records, so the records and the decision do not depend on the order in which runs finish.
    """

    def __init__(self, prep: Prepared, out: Path, log: Callable[[str], None], stop_after: int | None = None) -> None:
        self.prep, self.out, self.log = prep, out, log
        self.cfg = prep.cfg
        self.runs = out / "runs"
        self.durations: list[float] = []
        self.failed: list[str] = []
        self.done = self.launched = 0
        self.stop_after = stop_after  # tests: stop after this many new runs, as a killed pilot would
        self.deadline = time.monotonic() + self.cfg.budget_minutes * 60 if self.cfg.budget_minutes else None
        self.cut = False
        self.progress = Progress()
        self.best = ""
        self.planned = 0
        # the shared pool (workers > 0) and its queue
        self.lock = threading.Condition()
        self.pool: Any = None
        self.queue: list[tuple[int, int, dict[str, Any]]] = []
        self.state: dict[str, str] = {}
        self.running = 0
        self.order = 0
        self.expected = 0  # threads that must queue (or end) before the first launch
        self.arrived: set[threading.Thread] = set()
        self.error: BaseException | None = None

    # --- one job
    def job(self, arm: Arm, phase: str, lr: float, seed: int) -> dict[str, Any]:
        key = run_name(arm.name, phase, lr, seed)
        config = dict(self.prep.train_config, lr=lr)
        return {"key": key, "arm": arm.name, "phase": phase, "lr": lr, "seed": seed, "model": self.prep.model,
                "task": self.cfg.task, "data": self.cfg.data, "test": self.cfg.test, "data_dir": self.cfg.data_dir,
                "max_train": self.cfg.max_train, "plan": arm.plan(self.prep.model, self.prep.current.ratio).to_dict(),
                "method": arm.method, "rank": arm.base_r, "config": config, "device": self.cfg.device,
                "out_path": str(self.runs / f"{key}.json")}

    def record(self, key: str) -> dict[str, Any] | None:
        path = self.runs / f"{key}.json"
        if not path.is_file():
            return None
        return json.loads(path.read_text(encoding="utf-8"))

    def may_launch(self) -> bool:
        if self.stop_after is not None and self.launched >= self.stop_after:
            self.cut = True
            return False
        if self.deadline is None:
            return True
        from ..compare.grid import launch_allowed

        if launch_allowed(time.monotonic(), self.deadline, self.durations):
            return True
        self.cut = True
        return False

    def execute(self, jobs: list[dict[str, Any]], priority: int = 0) -> None:
        """Run the jobs whose records are missing, and return once each has finished or will never start."""
        todo = [j for j in jobs if not Path(j["out_path"]).is_file()]
        if not todo:
            return
        if self.pool is None:
            for job in todo:
                if not self.may_launch():
                    return
                self.launched += 1
                self.finish(execute_job(job), len(todo))
            return
        keys = [j["key"] for j in todo]
        with self.lock:
            for job in todo:
                if self.state.get(job["key"]) not in ("queued", "running"):
                    self.state[job["key"]] = "queued"
                    heapq.heappush(self.queue, (priority, self.order, job))
                    self.order += 1
            self._arrive()
            while not all(self.state[k] in ("done", "dropped") for k in keys):
                if self.error is not None:
                    raise AdaRankError("the pilot stopped") from self.error
                self._pump()
                self.lock.wait(1.0)

    def _arrive(self) -> None:
        self.arrived.add(threading.current_thread())
        self.lock.notify_all()

    def _pump(self) -> None:
        """Launch queued jobs while workers are free (the lock is held)."""
        if len(self.arrived) < self.expected:
            return
        while self.queue and self.running < self.cfg.workers:
            if not self.may_launch():
                for _, _, job in self.queue:
                    self.state[job["key"]] = "dropped"
                self.queue.clear()
                self.lock.notify_all()
                return
            _, _, job = heapq.heappop(self.queue)
            self.launched += 1
            self.running += 1
            self.state[job["key"]] = "running"
            try:
                future = self.pool.submit(execute_job, job)
            except BrokenProcessPool:  # a worker died (out of memory, killed): the next runs get a new pool
                self._replace_pool()
                future = self.pool.submit(execute_job, job)
            future.add_done_callback(lambda f, job=job: self._done(job, f))

    def _done(self, job: dict[str, Any], future: Any) -> None:
        try:
            outcome = future.result()
        except BaseException as exc:  # noqa: BLE001 - a dead worker fails its run
            outcome = {"key": job["key"], "ok": False, "seconds": 0.0, "error": repr(exc)}
        with self.lock:
            self.running -= 1
            self.state[job["key"]] = "done"
            try:
                self.finish(outcome, len(self.queue) + self.running)
            except BaseException as exc:  # noqa: BLE001 - e.g. a full disk: every waiting arm stops on it
                self.error = exc
            self.lock.notify_all()

    # --- the pool and the arms' threads
    def _new_pool(self) -> Any:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        from ..compare.grid import _init_worker

        threads = max(1, (os.cpu_count() or 1) // self.cfg.workers)
        return ProcessPoolExecutor(max_workers=self.cfg.workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_init_worker, initargs=(threads,))

    def _replace_pool(self) -> None:
        old, self.pool = self.pool, self._new_pool()
        old.shutdown(wait=False, cancel_futures=True)

    def run_all(self, tasks: Sequence[Callable[[], Any]]) -> list[Any]:
        """Each task (one arm's whole sequence), in threads sharing the pool, or one after another without
        workers; their return values in task order."""
        if self.cfg.workers <= 0:
            return [task() for task in tasks]
        from ..compare.processes import stop_workers

        results: list[Any] = [None] * len(tasks)

        def body(i: int, task: Callable[[], Any]) -> None:
            try:
                results[i] = task()
            except BaseException as exc:  # noqa: BLE001 - raised again in the main thread
                with self.lock:
                    self.error = self.error or exc
            finally:
                with self.lock:
                    self._arrive()

        self.pool = self._new_pool()
        self.expected = len(tasks)
        threads = [threading.Thread(target=body, args=(i, t), daemon=True) for i, t in enumerate(tasks)]
        try:
            for thread in threads:
                thread.start()
            for thread in threads:
                while thread.is_alive():
                    thread.join(0.5)
                    with self.lock:
                        self._pump()
        except BaseException:
            with self.lock:
                self.error = self.error or KeyboardInterrupt()
                self.lock.notify_all()
            stop_workers(self.pool)
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = None
            raise
        self.pool.shutdown(wait=True)
        self.pool = None
        if self.error is not None:
            raise self.error
        return results

    def finish(self, outcome: dict[str, Any], left: int) -> None:
        self.done += 1
        if outcome["ok"]:
            self.durations.append(outcome["seconds"])
        else:
            self.failed.append(outcome["key"])
            with open(self.out / "errors.jsonl", "a", encoding="utf-8") as fh:
                fh.write(json.dumps(outcome) + "\n")
            self.log(f"pilot: run {outcome['key']} failed: {outcome.get('error')}")
        self.progress.show(self.done, max(self.planned - self.done, left - 1, 0), self.durations, self.best)

    # --- scores
    def scores(self, arm: str, phase: str, lr: float, seeds: Sequence[int]) -> dict[int, float]:
        out = {}
        for seed in seeds:
            rec = self.record(run_name(arm, phase, lr, seed))
            if rec is not None and math.isfinite(rec.get("test_score", float("nan"))):
                out[seed] = 100.0 * float(rec["test_score"])
        return out

    def sweep(self, arm: Arm, start: float, priority: int = 0) -> tuple[float | None, dict[float, list[float]], str | None]:
        """The arm's chosen rate (None: no rate finished), every rate's validation scores, and a note when
        the choice is not robust."""
        seeds = self.cfg.sweep_seed_list
        rates = rate_grid(start)
        extensions = 0
        while True:
            self.execute([self.job(arm, "sweep", lr, s) for lr in rates for s in seeds], priority)
            table = {lr: self.scores(arm.name, "sweep", lr, seeds) for lr in rates}
            complete = {lr: v for lr, v in table.items() if len(v) == len(seeds)}
            if self.cut and len(complete) < len(rates):
                return None, {lr: list(v.values()) for lr, v in table.items()}, None
            if not complete:
                return None, {lr: list(v.values()) for lr, v in table.items()}, None
            # a tie (a validation split at its ceiling) goes to the rate nearest the start, not to an edge
            best = max(sorted(complete), key=lambda lr: (statistics.fmean(complete[lr].values()),
                                                         -abs(math.log(lr / start))))
            ordered = sorted(rates)
            edge = best == ordered[0] or best == ordered[-1]
            if not edge or extensions >= self.cfg.lr_extend:
                break
            extensions += 1
            beyond = best / LR_STEP if best == ordered[0] else best * LR_STEP
            rates = sorted([*rates, float(lr_key(beyond))])
            with self.lock:
                self.planned += len(seeds)
        note = self.robustness(arm, best, complete)
        if edge:
            note = (note + "; " if note else "") + (f"{arm.name}: the chosen rate {best:g} is still at an edge of the "
                                                     f"sweep after {extensions} extension(s)")
        return best, {lr: list(v.values()) for lr, v in table.items()}, note

    @staticmethod
    def robustness(arm: Arm, best: float, table: dict[float, dict[int, float]]) -> str | None:
        others = [lr for lr in table if lr != best]
        if not others:
            return None
        mean = {lr: statistics.fmean(v.values()) for lr, v in table.items()}
        runner = max(others, key=lambda lr: mean[lr])
        diffs = [table[best][s] - table[runner][s] for s in table[best] if s in table[runner]]
        if len(diffs) < 2:
            return (f"{arm.name}: rate {best:g} chosen over {runner:g} by {mean[best] - mean[runner]:.2f} points on "
                    "one sweep seed (no standard error)")
        se = statistics.stdev(diffs) / math.sqrt(len(diffs))
        if mean[best] - mean[runner] <= se:
            return (f"{arm.name}: rate {best:g} is not robust: the runner-up {runner:g} is "
                    f"{mean[best] - mean[runner]:.2f} points behind, within one standard error ({se:.2f})")
        return None

    def evaluate(self, arm: Arm, lr: float, priority: int = 0) -> dict[int, float]:
        seeds = self.cfg.eval_seeds
        self.execute([self.job(arm, "eval", lr, s) for s in seeds], priority)
        return self.scores(arm.name, "eval", lr, seeds)


def run_pilot(cfg: PilotConfig, *, log: Callable[[str], None] | None = None, stop_after: int | None = None,
              argv: Sequence[str] | None = None) -> dict[str, Any]:
    """The whole pilot; returns the decision summary also written to ``out/decision.json``."""
    from ..version import __version__

    log = log or (lambda line: print(line, file=sys.stderr))
    wall = time.monotonic()
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # per-run load reports would bury the progress line
    hf_logging.disable_progress_bar()
    out = Path(cfg.out)
    prep = prepare(cfg)
    fingerprint = cfg.fingerprint()
    check_out(out, fingerprint, cfg.force)
    # --- from here on, files are written
    if cfg.force and out.exists():
        for name in ("runs", SETTINGS_FILE, SCORED_PLAN, "errors.jsonl", "decision.json", "recommended"):
            target = out / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    (out / "runs").mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / SETTINGS_FILE, {"settings": fingerprint, "adarank_version": __version__})
    from ..cli_args import split_list

    plan = scored_plan(prep, out, log)
    arms = build_arms(prep.current, prep.modules_all, prep.modules_current, plan,
                      split_list(cfg.arms) if cfg.arms else [], split_list(cfg.drop_arms) if cfg.drop_arms else [])
    pilot = Pilot(prep, out, log, stop_after)
    n_sweep = len(cfg.sweep_seed_list) * (2 * LR_SPAN + 1)
    pilot.planned = n_sweep * (len(arms) - 1) + len(cfg.eval_seeds) * len(arms)
    pilot.planned = max(pilot.planned - sum(1 for _ in (out / "runs").glob("*.json")), 0)

    by_name = {a.name: a for a in arms}
    sweeps: dict[str, dict[float, list[float]]] = {}
    chosen: dict[str, float] = {}
    lr_notes: list[str] = []
    results: dict[str, Any] = {}
    from .decision import ArmResult, decide

    def result(arm: Arm, lr: float, scores: dict[int, float]) -> ArmResult:
        return ArmResult(arm.name, arm.label, arm.trainable_params, arm.max_rank, dict(scores), lr)

    # the reference: the current config at the better (on validation) of the user's rate and its tuned rate
    def reference_task() -> dict[str, Any]:
        tuned = by_name["current-tuned"]
        best_lr, table, note = pilot.sweep(tuned, prep.user_lr, 0)
        got: dict[str, Any] = {"sweeps": {"current-tuned": table}, "note": note, "chosen": {}, "results": {}}
        if best_lr is None:
            return got
        user_key = float(lr_key(prep.user_lr))
        user_val = table.get(user_key, [])
        if "current" in by_name and user_val and statistics.fmean(user_val) >= statistics.fmean(table[best_lr]):
            best_lr = user_key  # a tie goes to the user's own rate
        got["chosen"]["current-tuned"] = best_lr
        scores = pilot.evaluate(tuned, best_lr, 0)
        if len(scores) == len(cfg.eval_seeds):
            got["results"]["current-tuned"] = result(tuned, best_lr, scores)
            with pilot.lock:
                pilot.best = pilot.best or f"current-tuned {statistics.fmean(scores.values()):.1f}"
        if "current" in by_name:
            cur = by_name["current"]
            got["chosen"]["current"] = user_key
            got["sweeps"]["current"] = {user_key: user_val}
            if user_key == best_lr and "current-tuned" in got["results"]:
                got["results"]["current"] = result(cur, user_key, scores)
            else:
                s2 = pilot.evaluate(cur, user_key, 0)
                if len(s2) == len(cfg.eval_seeds):
                    got["results"]["current"] = result(cur, user_key, s2)
        return got

    def arm_task(arm: Arm, priority: int) -> tuple[float | None, dict, str | None, dict[int, float] | None]:
        lr, table, note = pilot.sweep(arm, start_rate(prep.user_lr, prep.current.r, arm.base_r), priority)
        if lr is None:
            return lr, table, note, None
        scores = pilot.evaluate(arm, lr, priority)
        with pilot.lock:
            if scores and (not pilot.best or statistics.fmean(scores.values()) > float(pilot.best.rsplit(" ", 1)[1])):
                pilot.best = f"{arm.name} {statistics.fmean(scores.values()):.1f}"
        return lr, table, note, scores

    cheaper = [(i, a) for i, a in enumerate(arms) if a.name not in ("current", "current-tuned")]
    tasks: list[Callable[[], Any]] = [reference_task]
    tasks += [lambda a=a, i=i: arm_task(a, i) for i, a in cheaper]
    # without workers the cheaper arms wait for the reference (they are not needed if it fails); with
    # workers they run beside it, so that the workers are busy from the start
    if cfg.workers <= 0:
        ref_out = reference_task()
        outputs = [ref_out] + (pilot.run_all(tasks[1:]) if ref_out["results"].get("current-tuned") else [])
    else:
        outputs = pilot.run_all(tasks)
    ref_out = outputs[0]
    sweeps.update(ref_out["sweeps"])
    chosen.update(ref_out["chosen"])
    results.update(ref_out["results"])
    if ref_out["note"]:
        lr_notes.append(ref_out["note"])
    complete_ladder: list[ArmResult] = []
    reference = results.get("current-tuned")
    if reference is not None:
        for (_, arm), (lr, table, note, scores) in zip(cheaper, outputs[1:]):
            sweeps[arm.name] = table
            if note:
                lr_notes.append(note)
            if lr is None:
                if pilot.cut:
                    break
                lr_notes.append(f"{arm.name}: every sweep run failed; the arm is left out")
                continue
            chosen[arm.name] = lr
            if len(scores) < len(cfg.eval_seeds) and pilot.cut:
                break
            results[arm.name] = result(arm, lr, scores)
            complete_ladder.append(results[arm.name])
    pilot.progress.close()

    budget_note = None
    if pilot.cut:
        budget_note = (f"the time budget ({cfg.budget_minutes:g} min) cut the pilot: {len(complete_ladder)} of "
                       f"{len(arms) - 2} cheaper arms were decided" if cfg.budget_minutes else
                       f"stopped after {stop_after} new runs: {len(complete_ladder)} of {len(arms) - 2} cheaper arms")
    summary: dict[str, Any] = {"complete": reference is not None and not pilot.cut, "budget_note": budget_note,
                               "chosen_lr": chosen, "lr_notes": lr_notes, "failed": list(pilot.failed)}
    if reference is None:
        summary["decision"] = None
        atomic_write_json(out / "decision.json", summary)
        log("pilot: the reference did not finish; re-run the same command to resume")
        return summary
    decision = decide(reference, complete_ladder, cfg.margin, cfg.alpha)
    summary["decision"] = _jsonable(asdict(decision))
    summary["arms"] = [_jsonable(asdict(a)) for a in results.values()]
    cheapest_name = decision.cheapest_non_inferior or reference.name
    from .recommend import write_recommended

    recommended = write_recommended(out / "recommended", adapter_choice(by_name[cheapest_name], chosen[cheapest_name],
                                                                        prep),
                                    adapter_choice(by_name[decision.best], chosen[decision.best], prep))
    summary["recommended"] = _jsonable(recommended)
    meta = {"model": prep.model, "data": cfg.data, "task": cfg.task, "metric": _metric(out),
            "current": prep.current.describe(), "alpha_convention": ALPHA_CONVENTION,
            "eval_seeds": list(cfg.eval_seeds), "sweep_seeds": list(cfg.sweep_seed_list),
            "command": "adarank pilot " + " ".join(argv or []), "adarank_version": __version__,
            "wall_seconds": round(time.monotonic() - wall, 1), "runs": sum(1 for _ in (out / "runs").glob("*.json")),
            "runs_failed": len(pilot.failed), "budget_note": budget_note, "recommended": recommended,
            "lr_notes": lr_notes}
    atomic_write_json(out / "decision.json", summary)
    write_report_files(out, decision, list(results.values()), sweeps, meta)
    log(f"pilot: cheapest not worse than the current config: {cheapest_name}"
        + ("" if decision.cheapest_non_inferior else " (no cheaper arm was shown non-inferior)")
        + f"; report in {out / 'report.md'}")
    return summary


def _metric(out: Path) -> str | None:
    for path in sorted((out / "runs").glob("*__eval__*.json"))[:1]:
        return json.loads(path.read_text(encoding="utf-8")).get("metric")
    return None


def write_report_files(out: Path, decision: Any, arms: list[Any], sweeps: dict, meta: dict) -> None:
    """report.md and the self-contained report.html (:mod:`adarank.pilot.report`)."""
    from .report import write_report

    write_report(out, decision, arms, sweeps, meta)


def adapter_choice(arm: Arm, lr: float, prep: Prepared) -> Any:
    """The arm as the LoRA configuration a user trains with (names as PEFT matches them)."""
    from ..peft_export import pattern_key
    from .recommend import AdapterChoice

    ratio = prep.current.ratio
    current = prep.current
    same_targets = arm.target_set == "current" and set(arm.ranks) == {m.name for m in prep.modules_current}
    if same_targets and isinstance(current.targets, list):
        targets = list(current.targets)
    else:
        targets = list(arm.ranks)
    rank_pattern = {pattern_key(n): r for n, r in arm.ranks.items() if r != arm.base_r}
    alpha_pattern = {k: ratio * r for k, r in rank_pattern.items()}
    return AdapterChoice(arm.name, arm.base_r, ratio * arm.base_r, targets, rank_pattern, alpha_pattern, lr,
                         prep.task_type)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
