"""The task registry: ``get_task("semeval2014t7", max_length=256)`` builds a task by id.

Importing this module registers the six SemEval tasks (``mtpeft.tasks.semeval``); a task of
one's own is added with ``@TASKS.register("my_task")`` on a factory, or without Python through
a generic-format config (:func:`mtpeft.tasks.generic.task_from_config`).
"""

from __future__ import annotations

import inspect

from mtpeft.errors import ConfigError
from mtpeft.tasks import semeval  # noqa: F401  (registers the SemEval tasks)
from mtpeft.tasks.base import TASKS, Task

__all__ = ["TASKS", "get_task", "task_options"]


def task_options(task_id: str) -> dict[str, object]:
    """The options of a registered task and their defaults."""
    factory = TASKS.get(task_id)
    return {name: p.default for name, p in inspect.signature(factory).parameters.items()}


def get_task(task_id: str, **options: object) -> Task:
    """Build the task registered as ``task_id`` with ``options`` (its factory's keyword arguments).

    An unknown id raises :class:`~mtpeft.registry.UnknownNameError` listing the valid ids; an
    unknown option raises :class:`ConfigError` listing the task's options.
    """
    valid = task_options(task_id)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        listed = ", ".join(valid) or "(none)"
        raise ConfigError(f"unknown option(s) {', '.join(unknown)} for task {task_id!r}; valid options: {listed}")
    return TASKS.get(task_id)(**options)
