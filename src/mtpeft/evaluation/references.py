"""Published reference points (best systems, official baselines) of the tasks with public data.

The numbers live in ``references.yaml`` beside this module, each with its split, its value in
the unit of mtpeft's metric, the number as the source prints it, and the source (citation and
URL). A results table puts them beside mtpeft's rows by split (:func:`split_of_file` names the
official split a run's file belongs to), never a number of one split under another's heading.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mtpeft.errors import FormatError, Location

REFERENCES_FILE = Path(__file__).with_name("references.yaml")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SplitInfo(_Strict):
    description: str
    files: list[str] = Field(default_factory=list)
    """File names (no folder) that make this split as the organisers distribute it."""


class ReferencePoint(_Strict):
    system: str
    split: str
    value: float
    """In the unit of mtpeft's metric (a fraction for MAP and F1)."""
    as_published: str
    source: str
    checked: str


class TaskReferences(_Strict):
    title: str
    metric: str
    """The mtpeft metric the points compare with (the row's headline metric)."""
    metric_name: str
    display_scale: float = 1.0
    """Multiply values by this to print them as the field does (100: MAP in percent)."""
    component_rows: list[str] = Field(default_factory=list)
    """mtpeft rows that are parts of this task's official score (2021 T6 levels), not the score."""
    config_task: str | None = None
    """The configured task whose files the row evaluates, when the row is not a configured task."""
    splits: dict[str, SplitInfo]
    points: list[ReferencePoint]

    @model_validator(mode="after")
    def _known_splits(self) -> TaskReferences:
        unknown = sorted({p.split for p in self.points} - set(self.splits))
        if unknown:
            raise ValueError(f"points name splits {unknown} that 'splits' does not define")
        return self

    def points_by_split(self) -> dict[str, list[ReferencePoint]]:
        """The points grouped by split, in the order of ``splits``."""
        grouped: dict[str, list[ReferencePoint]] = {s: [] for s in self.splits}
        for point in self.points:
            grouped[point.split].append(point)
        return {s: points for s, points in grouped.items() if points}


@dataclass(frozen=True)
class References:
    """Every task's reference points, by the mtpeft row they compare with."""

    tasks: dict[str, TaskReferences] = field(default_factory=dict)

    def for_row(self, row: str) -> TaskReferences | None:
        return self.tasks.get(row)

    def owner_of_component(self, row: str) -> str | None:
        """The task row whose official score ``row`` (e.g. ``semeval2021t6_level2``) is a part of."""
        return next((task for task, refs in self.tasks.items() if row in refs.component_rows), None)


def load_references(path: str | Path = REFERENCES_FILE) -> References:
    """Read and validate a references file; errors name the file and the entry."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise FormatError(Location(str(path)), f"cannot read YAML: {err}", "a references file") from None
    if not isinstance(raw, dict):
        raise FormatError(Location(str(path)), "not a mapping", "{task row: {title, metric, splits, points}}")
    tasks = {}
    for row, entry in raw.items():
        try:
            tasks[row] = TaskReferences.model_validate(entry)
        except ValidationError as err:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
            raise FormatError(Location(str(path), element=row), problems, "the fields of TaskReferences") from None
    return References(tasks)


@lru_cache(maxsize=1)
def default_references() -> References:
    """The references shipped with mtpeft (``references.yaml``), read once."""
    return load_references(REFERENCES_FILE)


def split_of_file(refs: TaskReferences, path: str | Path | None) -> str | None:
    """The official split whose distributed file has ``path``'s name, or None (another file)."""
    if path is None:
        return None
    name = Path(str(path)).name
    return next((split for split, info in refs.splits.items() if name in info.files), None)
