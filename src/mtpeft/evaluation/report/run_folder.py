"""Read run folders (layout: docs/run-folder.md) and group the seeds of one configuration.

Only files are read, never a model. A folder without ``final_metrics.json`` (an unfinished run)
is skipped and counted, not silently dropped; malformed files raise FormatError naming the file
and line.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mtpeft.errors import FormatError, Location
from mtpeft.tasks.document import Skipped

# Config keys that differ between the seeds of one configuration without changing what it is.
_PER_RUN_KEYS = ("seed", "output_dir")


def read_json(path: Path, expected: str) -> Any:
    """Parse a JSON file; failures raise FormatError naming the file and what was expected."""
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise FormatError(Location(str(path)), f"cannot read JSON: {err}", expected) from None


def read_jsonl(path: Path, expected: str) -> list[dict]:
    """One JSON object per non-empty line; a bad line raises FormatError naming file and line."""
    records = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise FormatError(Location(str(path), line=number), f"invalid JSON: {err}", expected) from None
        if not isinstance(record, dict):
            raise FormatError(Location(str(path), line=number), "not a JSON object", expected)
        records.append(record)
    return records


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _metric_table(value: Any, path: Path, what: str) -> dict[str, dict[str, float]]:
    expected = '{"task": {"metric": number}}'
    if not isinstance(value, dict):
        raise FormatError(Location(str(path), element=what), "not an object", expected)
    table: dict[str, dict[str, float]] = {}
    for task, metrics in value.items():
        if not isinstance(metrics, dict) or not all(_number(v) for v in metrics.values()):
            raise FormatError(Location(str(path), element=f"{what}.{task}"), "metrics must map names to numbers", expected)
        table[task] = {name: float(v) for name, v in metrics.items()}
    return table


@dataclass
class RunRecord:
    """What the report needs from one finished run folder."""

    path: Path
    config: dict
    tasks: tuple[str, ...]  # the tasks it was trained on (config order)
    strategy: str
    seed: int
    split: str
    step: int | None
    metrics: dict[str, dict[str, float]]  # final_metrics.json "tasks"
    before_training: dict[str, dict[str, float]] = field(default_factory=dict)
    environment: dict = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)  # params.json
    train_log: list[dict] = field(default_factory=list)
    conflicts: list[dict] = field(default_factory=list)
    probing: dict[str, dict[str, float]] | None = None

    @property
    def group_key(self) -> str:
        """The configuration without its per-run keys (seed, output folder): equal for seeds of one setup."""
        return json.dumps({k: v for k, v in self.config.items() if k not in _PER_RUN_KEYS}, sort_keys=True, default=str)

    @property
    def tokens_per_s(self) -> float | None:
        """Median of the logged ``tokens_per_s`` (the median ignores the slow first steps)."""
        values = sorted(float(r["tokens_per_s"]) for r in self.train_log if _number(r.get("tokens_per_s")))
        if not values:
            return None
        middle = len(values) // 2
        return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2

    @property
    def peak_memory_mb(self) -> float | None:
        """The largest logged ``peak_memory_mb`` (None when the trainer logged none)."""
        values = [float(r["peak_memory_mb"]) for r in self.train_log if _number(r.get("peak_memory_mb"))]
        return max(values) if values else None

    @property
    def trainable_params(self) -> int | None:
        return self.params.get("trainable")

    def per_document_path(self, task: str) -> Path:
        return self.path / "per_document" / self.split / f"{task}.jsonl"


def _config_fields(config: Any, path: Path) -> tuple[tuple[str, ...], str, int]:
    if not isinstance(config, dict):
        raise FormatError(Location(str(path)), "not a mapping", "the resolved run config")
    tasks = config.get("tasks")
    if not isinstance(tasks, list) or not all(isinstance(t, dict) and isinstance(t.get("id"), str) for t in tasks):
        raise FormatError(Location(str(path), element="tasks"), "missing or malformed task list", "tasks: [{id: ...}, ...]")
    strategy = config.get("strategy")
    name = strategy.get("name") if isinstance(strategy, dict) else None
    if not isinstance(name, str):
        raise FormatError(Location(str(path), element="strategy.name"), "missing strategy name", "strategy: {name: s1|s2|...}")
    seed = config.get("seed", 0)
    if not isinstance(seed, int):
        raise FormatError(Location(str(path), element="seed"), f"seed {seed!r} is not an integer", "an integer seed")
    return tuple(t["id"] for t in tasks), name, seed


def load_run(path: str | Path) -> RunRecord:
    """Read one finished run folder (``config.yaml`` and ``final_metrics.json`` required)."""
    path = Path(path)
    config_path = path / "config.yaml"
    try:
        config = yaml.safe_load(config_path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise FormatError(Location(str(config_path)), f"cannot read YAML: {err}", "the resolved run config") from None
    tasks, strategy, seed = _config_fields(config, config_path)
    final_path = path / "final_metrics.json"
    final = read_json(final_path, '{"split": ..., "step": ..., "tasks": {task: {metric: number}}}')
    if not isinstance(final, dict) or "tasks" not in final:
        raise FormatError(Location(str(final_path)), "missing 'tasks'", '{"split": ..., "tasks": {task: {metric: number}}}')
    record = RunRecord(
        path=path,
        config=config,
        tasks=tasks,
        strategy=strategy,
        seed=seed,
        split=str(final.get("split", "dev")),
        step=final.get("step") if isinstance(final.get("step"), int) else None,
        metrics=_metric_table(final["tasks"], final_path, "tasks"),
        before_training=_metric_table(final.get("before_training") or {}, final_path, "before_training"),
    )
    optional = {
        "environment.json": lambda p: read_json(p, "an object of environment facts"),
        "params.json": lambda p: read_json(p, '{"trainable": int, "backbone": int, ...}'),
        "train_log.jsonl": lambda p: read_jsonl(p, '{"step", "loss", "losses": {task: float}, ...}'),
        "conflicts.jsonl": lambda p: read_jsonl(p, '{"step", "tasks", "cosine", "conflict_fraction"}'),
        "probing.json": lambda p: _metric_table(read_json(p, '{"representation": {"task": accuracy}}'), p, "probing"),
    }
    attribute = {"environment.json": "environment", "params.json": "params", "train_log.jsonl": "train_log",
                 "conflicts.jsonl": "conflicts", "probing.json": "probing"}
    for name, read in optional.items():
        if (path / name).is_file():
            setattr(record, attribute[name], read(path / name))
    if not isinstance(record.params, dict) or not isinstance(record.params.get("trainable", 0), int):
        raise FormatError(Location(str(path / "params.json"), element="trainable"), "not an integer count",
                          '{"trainable": int, "backbone": int, ...}')
    return record


def _run_folders(root: Path) -> list[Path]:
    """Folders holding a ``config.yaml`` at or below ``root``, not looking inside a run folder."""
    found = []
    for folder, subfolders, files in os.walk(root):
        if "config.yaml" in files:
            found.append(Path(folder))
            subfolders.clear()
        else:
            subfolders.sort()
    return sorted(found)


def find_runs(paths: Iterable[str | Path]) -> tuple[list[RunRecord], list[Skipped]]:
    """Runs in ``paths``: each a run folder or a folder holding run folders at any depth (a sweep).

    Returns the finished runs (sorted by path) and the folders skipped, with the reason.
    """
    folders: list[Path] = []
    skipped: list[Skipped] = []
    for given in map(Path, paths):
        if not given.is_dir():
            raise FormatError(Location(str(given)), "not a folder", "a run folder or a folder of run folders")
        found = _run_folders(given)
        if not found:
            raise FormatError(Location(str(given)), "no config.yaml in it or below it", "a run folder (docs/run-folder.md)")
        folders.extend(found)
    runs = []
    unique: dict[Path, Path] = {}
    for folder in folders:  # each run once, however it was named
        unique.setdefault(folder.resolve(), folder)
    for folder in sorted(unique.values()):
        if not (folder / "final_metrics.json").is_file():
            skipped.append(Skipped(str(folder), "no final_metrics.json (unfinished or not yet evaluated)"))
            continue
        runs.append(load_run(folder))
    return runs, skipped


@dataclass
class RunGroup:
    """The seeds of one configuration."""

    label: str
    strategy: str
    tasks: tuple[str, ...]
    runs: list[RunRecord]

    @property
    def seeds(self) -> list[int]:
        return [r.seed for r in self.runs]

    @property
    def title(self) -> str:
        """The label, with the trained tasks when the label does not already name them."""
        return self.label if "[tasks:" in self.label else f"{self.label} on {'+'.join(self.tasks)}"


def _flatten(value: Any, prefix: str = "") -> dict[str, str]:
    if isinstance(value, dict):
        out: dict[str, str] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): json.dumps(value, sort_keys=True, default=str)}


def _short(key: str) -> str:
    return key.split(".", 1)[1] if key.split(".")[0] in ("strategy", "training", "model") and "." in key else key


def group_runs(runs: Sequence[RunRecord]) -> list[RunGroup]:
    """Group runs by configuration (all but seed and output folder) and give each group a label.

    The label is the strategy name plus the settings that differ between groups of that strategy
    (e.g. ``s3a (shared_rank=8)``); the task list is appended only where two groups of one
    label share a task (``[tasks: a+b]``), and ``#n`` where they still would. A (task, label)
    pair therefore names one group.
    """
    by_key: dict[str, list[RunRecord]] = {}
    for run in runs:
        by_key.setdefault(run.group_key, []).append(run)
    members = [sorted(v, key=lambda r: (r.seed, str(r.path))) for v in by_key.values()]
    flat = [_flatten({k: v for k, v in m[0].config.items() if k not in (*_PER_RUN_KEYS, "tasks")}) for m in members]
    groups = []
    for index, runs_of in enumerate(members):
        strategy = runs_of[0].strategy
        peers = [flat[j] for j, m in enumerate(members) if m[0].strategy == strategy]
        keys = sorted({k for f in peers for k in f} - {"strategy.name"})
        differing = [k for k in keys if len({f.get(k) for f in peers}) > 1]
        details = ", ".join(f"{_short(k)}={json.loads(flat[index][k]) if k in flat[index] else '-'}" for k in differing)
        label = f"{strategy} ({details})" if details else strategy
        groups.append(RunGroup(label, strategy, runs_of[0].tasks, runs_of))
    clashing = [g for g in groups if any(o is not g and o.label == g.label and set(o.tasks) & set(g.tasks) for o in groups)]
    for group in clashing:
        group.label = f"{group.label} [tasks: {'+'.join(group.tasks)}]"
    seen: dict[str, int] = {}  # settings outside the labelled ones (e.g. task options) can still collide
    for group in groups:
        seen[group.label] = seen.get(group.label, 0) + 1
        if seen[group.label] > 1 and any(o is not group and o.label == group.label and set(o.tasks) & set(group.tasks)
                                         for o in groups):
            group.label = f"{group.label} #{seen[group.label]}"
    return sorted(groups, key=lambda g: (g.strategy, len(g.tasks), g.label))


def finite(value: float | None) -> bool:
    """True for a real number (not None, NaN or infinite)."""
    return value is not None and math.isfinite(value)
