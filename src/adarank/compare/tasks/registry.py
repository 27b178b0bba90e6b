"""The task registry (see :mod:`adarank.compare.tasks`)."""

from __future__ import annotations

from typing import Any

from ...errors import AdaRankError
from ...registries import add_unique, lookup
from .base import Task

TASKS: dict[str, Task] = {}


def register(task: Task) -> Task:
    return add_unique(TASKS, task, "task")


def get_task(name: str) -> Task:
    return lookup(TASKS, name, "task")


def task_for_data(data: Any) -> Task:
    """The task whose data type ``data`` is (each task names the dataset type it trains on)."""
    for task in TASKS.values():
        if isinstance(data, task.data_type()):
            return task
    raise AdaRankError(f"no task trains on {type(data).__name__}; expected one of "
                       + ", ".join(t.data_type().__name__ for t in TASKS.values()))
