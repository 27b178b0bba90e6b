"""Training tasks of the comparison harness, one registry: how a model is built, fed and scored.

A task turns a dataset into a model to adapt (with its task head, if any), batches to train on and
one test score. ``classification`` puts a new head on the pooled / last token and scores accuracy;
``generation`` fine-tunes a causal LM on (prompt, completion) pairs, loss on the completion only,
and scores greedy decodes with the dataset's metric. Everything else in a run (the methods' ranks,
the optimiser, the schedule, the seeds) is shared, in :mod:`adarank.compare.train`.

Adding a task is adding one file that defines a :class:`~adarank.compare.tasks.base.Task` and calls
:func:`register`.
"""

from __future__ import annotations

from typing import Any

from ...errors import AdaRankError
from .base import Task

TASKS: dict[str, Task] = {}


def register(task: Task) -> Task:
    if task.name in TASKS:
        raise ValueError(f"task {task.name!r} is registered twice")
    TASKS[task.name] = task
    return task


def get_task(name: str) -> Task:
    try:
        return TASKS[name]
    except KeyError:
        raise AdaRankError(f"unknown task {name!r}; choose one of: {', '.join(TASKS)}") from None


def task_for_data(data: Any) -> Task:
    """The task whose data type ``data`` is (each task names the dataset type it trains on)."""
    for task in TASKS.values():
        if isinstance(data, task.data_type()):
            return task
    raise AdaRankError(f"no task trains on {type(data).__name__}; expected one of "
                       + ", ".join(t.data_type().__name__ for t in TASKS.values()))


from . import classification, generation  # noqa: E402,F401  (registers the built-in tasks)

__all__ = ["TASKS", "Task", "get_task", "register", "task_for_data"]
