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

from .base import Task
from .registry import TASKS, get_task, register, task_for_data
from . import classification, generation  # noqa: E402,F401  isort: skip  (registers the built-in tasks)

__all__ = ["TASKS", "Task", "get_task", "register", "task_for_data"]
