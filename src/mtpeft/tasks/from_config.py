"""Build a task from a config mapping: a registered SemEval task, or a generic-format task.

A registered task::

    {"id": "semeval2014t7", "max_length": 256}

A task of one's own, without Python (``format: generic``)::

    {"id": "my_ner", "format": "generic", "head": "token", "level": 1,
     "labels": ["Drug", "ADE"],          # or "data": "train.jsonl" to infer them
     "scheme": "bio", "max_length": 256}

``head`` picks the task class and the generic format it reads: ``token`` and ``span`` read
``spans``, ``relation`` reads ``relations`` (or ``spans`` with ``mode: typing``, one label per
span), ``ranking`` reads ``ranking``. Every other key is an option of that class.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from pathlib import Path

from mtpeft.errors import ConfigError
from mtpeft.tasks.base import Task
from mtpeft.tasks.generic import GenericFormat, infer_labels
from mtpeft.tasks.ranking_task import RankingTask
from mtpeft.tasks.registry import get_task
from mtpeft.tasks.relation_task import RelationTask
from mtpeft.tasks.span_task import SpanTask
from mtpeft.tasks.token_task import TokenTask
from mtpeft.tasks.typing_task import SpanTypingTask

_GENERIC: dict[tuple[str, str], tuple[type[Task], str]] = {
    ("token", "tagging"): (TokenTask, "spans"),
    ("span", "tagging"): (SpanTask, "spans"),
    ("relation", "pairs"): (RelationTask, "relations"),
    ("relation", "typing"): (SpanTypingTask, "spans"),
    ("ranking", "tagging"): (RankingTask, "ranking"),
}
_RESERVED = ("id", "format", "head", "level", "labels", "data", "mode")
_NOT_OPTIONS = ("self", "id", "level", "labels", "types", "data_format", "keep_relation", "normaliser")


def _class_options(cls: type[Task]) -> list[str]:
    return [name for name in inspect.signature(cls.__init__).parameters if name not in _NOT_OPTIONS]


def task_from_config(config: Mapping[str, object]) -> Task:
    """A :class:`Task` from a config mapping (see the module docstring).

    Raises :class:`ConfigError` naming the field for a missing id, an unknown head, format or
    option, or labels that can neither be read nor inferred.
    """
    config = dict(config)
    task_id = config.get("id")
    if not isinstance(task_id, str) or not task_id:
        raise ConfigError(f"task config: 'id' is {task_id!r}; expected a task id")
    data_format = config.pop("format", "official")
    if data_format == "official":
        config.pop("id")
        return get_task(task_id, **config)
    if data_format != "generic":
        raise ConfigError(f"task {task_id!r}: unknown format {data_format!r}; valid choices: official, generic")
    head = config.get("head")
    mode = config.get("mode", "pairs" if head == "relation" else "tagging")
    if (head, mode) not in _GENERIC:
        raise ConfigError(
            f"task {task_id!r}: head {head!r} with mode {mode!r}; valid: head token, span, ranking, "
            "or relation with mode pairs (default) or typing"
        )
    cls, kind = _GENERIC[(head, mode)]
    options = {k: v for k, v in config.items() if k not in _RESERVED}
    valid = _class_options(cls)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ConfigError(
            f"task {task_id!r}: unknown option(s) {', '.join(unknown)}; valid options: {', '.join(valid)}"
        )
    labels = _labels(task_id, config, kind)
    level = config.get("level", 1)
    if level not in (1, 2):
        raise ConfigError(f"task {task_id!r}: level must be 1 or 2, got {level!r}")
    if cls is TokenTask:
        options.setdefault("scheme", "bio")
    return cls(task_id, level, labels, GenericFormat(kind, labels), **options)


def _labels(task_id: str, config: Mapping[str, object], kind: str) -> list[str]:
    labels = config.get("labels")
    if labels is not None:
        if not isinstance(labels, list) or not labels or not all(isinstance(x, (str, int)) for x in labels):
            raise ConfigError(f"task {task_id!r}: 'labels' is {labels!r}; expected a non-empty list of strings")
        return [str(x) for x in labels]
    data = config.get("data")
    if data is None:
        raise ConfigError(f"task {task_id!r}: no 'labels' and no 'data' to infer them from; give one of them")
    documents = GenericFormat(kind).read(Path(str(data))).documents
    try:
        inferred = infer_labels(documents, kind)
    except ValueError as err:
        raise ConfigError(f"task {task_id!r}: {err}") from None
    if not inferred:
        raise ConfigError(f"task {task_id!r}: no labels found in {data}; give 'labels'")
    return inferred
