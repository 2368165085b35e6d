"""Read and encode each task's training data once, and report everything the encoding lost."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from mtpeft.config import RunConfig
from mtpeft.errors import ConfigError
from mtpeft.tasks.base import Task
from mtpeft.tasks.features import Features
from mtpeft.tasks.split import split_part


@dataclass
class TaskData:
    task: Task
    train: list[Features]
    dev_path: str | None
    report: dict = field(default_factory=dict)


def load_task_data(config: RunConfig, tasks: dict[str, Task], tokenizer) -> dict[str, TaskData]:
    """Features of every task's training split; skipped records and encoding losses are counted."""
    data = {}
    for tc in config.tasks:
        task = tasks[tc.id]
        if tc.train is None:
            raise ConfigError(f"task {tc.id!r}: field 'train' is required for training")
        read = task.read(tc.train, lenient=tc.lenient)
        documents, split = read.documents, None
        if tc.split is not None:  # the rest is the dev set (mtpeft.tasks.split)
            documents, split = split_part(read.documents, tc.split, "train")
        documents = documents[: tc.limit] if tc.limit else documents
        encoded = task.encode(documents, tokenizer)
        if not encoded.features:
            raise ConfigError(f"task {tc.id!r}: {tc.train} gave no training examples")
        data[tc.id] = TaskData(
            task=task,
            train=encoded.features,
            dev_path=tc.dev,
            report={
                "train": tc.train,
                "documents": len(documents),
                "examples": len(encoded.features),
                "skipped_records": [str(s) for s in read.skipped],
                "encoding_losses": encoded.loss_counts(),
                "counts": dict(encoded.counts),
                **({"split": split.as_dict()} if split else {}),
            },
        )
    return data


def write_data_report(data: dict[str, TaskData], path: Path) -> None:
    """``data_report.json``: per task, what was read, encoded, skipped and lost."""
    path.write_text(json.dumps({t: d.report for t, d in data.items()}, indent=2, sort_keys=True))
