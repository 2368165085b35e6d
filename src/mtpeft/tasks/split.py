"""Reproducible document-level train/dev splits of one file (a task's ``split:`` option).

Some public data comes as one annotated file with no official dev set (the 2016 T3 subtask A
"train part 2" file). ``split: {dev_fraction: 0.2, seed: 0}`` on a task holds out a fraction of
the documents of its ``train`` file as its dev set: training reads the rest, evaluation of
``dev`` reads the held-out part and scores it against a gold copy of exactly those documents.

The unit is the document (for 2016/2017 T3 a document is a thread, so no thread is ever on both
sides); ``group_pattern`` (a regular expression searched in the document id) makes coarser units,
e.g. ``"^(ID\\d+)_"`` keeps all notes of one THYME patient on one side.

Which units go to dev is decided by hashing, not by shuffling the file: each unit's key is
``sha256(f"{seed}\\x00{unit}")`` and the ``round(dev_fraction * units)`` units with the smallest
keys (at least one, and never all) are the dev set. Hence the split

* is the same on every machine, Python version and ``PYTHONHASHSEED`` (no ``hash()``, no RNG);
* does not depend on the order of the documents in the file, only on their ids (reordering the
  file, or reading a folder whose files list in another order, gives the same split);
* changes completely with ``seed``, and both parts keep the file's document order.

Written by hand: scikit-learn's ``GroupShuffleSplit`` draws from a seeded RNG over the groups in
input order, so its split changes when the file is reordered, and sklearn is not a dependency.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from mtpeft.errors import ConfigError
from mtpeft.tasks.document import Document

Part = Literal["train", "dev"]
PARTS: tuple[Part, ...] = ("train", "dev")


class SplitOptions(Protocol):
    """What a split needs (``mtpeft.config.SplitConfig`` has these fields)."""

    dev_fraction: float
    seed: int
    group_pattern: str | None


@dataclass(frozen=True)
class SplitSummary:
    """How many units and documents each part holds (written into ``data_report.json``)."""

    dev_fraction: float
    seed: int
    group_pattern: str | None
    units: int
    dev_units: int
    documents: int
    dev_documents: int

    def as_dict(self) -> dict[str, object]:
        return {"dev_fraction": self.dev_fraction, "seed": self.seed, "group_pattern": self.group_pattern,
                "units": self.units, "dev_units": self.dev_units, "documents": self.documents,
                "dev_documents": self.dev_documents, "train_documents": self.documents - self.dev_documents}


def unit_key(unit: str, seed: int) -> bytes:
    """The sort key of a unit: ``sha256(seed NUL unit)`` (stable everywhere, order-free)."""
    return hashlib.sha256(f"{seed}\x00{unit}".encode()).digest()


def dev_count(units: int, dev_fraction: float) -> int:
    """``round(dev_fraction * units)`` (halves up), at least 1 and at most ``units - 1``."""
    if not 0.0 < dev_fraction < 1.0:
        raise ConfigError(f"split.dev_fraction must be in (0, 1), got {dev_fraction}")
    if units < 2:
        raise ConfigError(f"split: {units} unit(s) cannot be split into a train and a dev part (need 2 or more)")
    return min(units - 1, max(1, math.floor(dev_fraction * units + 0.5)))


def dev_units(units: Sequence[str], dev_fraction: float, seed: int) -> set[str]:
    """The units held out as dev: the ``dev_count`` distinct units with the smallest keys."""
    distinct = sorted(set(units))
    ranked = sorted(distinct, key=lambda u: (unit_key(u, seed), u))
    return set(ranked[: dev_count(len(distinct), dev_fraction)])


def unit_of(document: Document, group_pattern: str | None) -> str:
    """The unit a document belongs to: its id, or the first group (else the match) of ``group_pattern``."""
    if not group_pattern:
        return document.id
    match = re.search(group_pattern, document.id)
    if match is None:
        raise ConfigError(f"split.group_pattern {group_pattern!r} does not match document id {document.id!r}"
                          f"{f' ({document.source})' if document.source else ''}; every document needs a group")
    return match.group(1) if match.groups() else match.group(0)


def assign(documents: Sequence[Document], options: SplitOptions) -> tuple[list[Part], SplitSummary]:
    """``"train"`` or ``"dev"`` for each document (in order), and the summary of the split."""
    units = [unit_of(d, options.group_pattern) for d in documents]
    held_out = dev_units(units, options.dev_fraction, options.seed)
    parts: list[Part] = ["dev" if u in held_out else "train" for u in units]
    summary = SplitSummary(options.dev_fraction, options.seed, options.group_pattern, len(set(units)),
                           len(held_out), len(documents), parts.count("dev"))
    return parts, summary


def split_part(documents: Sequence[Document], options: SplitOptions, part: Part) -> tuple[list[Document], SplitSummary]:
    """The documents of ``part`` (``train`` or ``dev``) in file order, and the summary of the split."""
    if part not in PARTS:
        raise ConfigError(f"split part {part!r}: expected one of {', '.join(PARTS)}")
    parts, summary = assign(documents, options)
    return [d for d, p in zip(documents, parts) if p == part], summary


def select(documents: Sequence[Document], options: SplitOptions, part: Part) -> list[Document]:
    """The documents of ``part`` (``train`` or ``dev``), in file order."""
    return split_part(documents, options, part)[0]


Selector = Callable[[Sequence[Document]], list[Document]]
"""Documents as read from a file -> the documents a split uses."""


class TaskSplitSource(Protocol):
    """The fields of a task config the split reads (``mtpeft.config.TaskConfig``)."""

    id: str
    train: str | None
    dev: str | None
    test: str | None
    split: SplitOptions | None


def split_source(task: TaskSplitSource, split: str) -> tuple[str | None, Selector | None]:
    """Where a task's documents of ``split`` (train, dev, test) come from: a path and a selector.

    Without ``task.split`` this is ``(getattr(task, split), None)``. With it, ``train`` and
    ``dev`` are both read from ``task.train`` and the selector keeps that part's documents.
    """
    options = task.split
    if options is None or split not in PARTS:
        return getattr(task, split), None
    if task.train is None:
        raise ConfigError(f"task {task.id!r}: field 'split' needs field 'train' (the file it splits)")

    def selector(documents: Sequence[Document]) -> list[Document]:
        return select(documents, options, split)  # type: ignore[arg-type]

    return task.train, selector
