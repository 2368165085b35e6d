"""Transfer matrices: how much training with task i changes task j's headline metric.

``T[i][j]`` is a relative change, ``(with - without) / |without|``, of task j's headline metric
(:func:`mtpeft.evaluation.results.headline_metric_name`), each side averaged over seeds:

* ``pairwise``: with = the run trained on {i, j}, without = the single-task run on {j};
* ``leave_one_out``: with = the run on all tasks U, without = the run on U minus {i}.

Rows are the added task i, columns the affected task j. The diagonal is undefined (NaN), as is a
cell whose runs are missing or whose baseline is 0; missing runs are listed in ``missing``.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mtpeft.errors import MtpeftError
from mtpeft.evaluation.report.figures import pyplot, save_png
from mtpeft.evaluation.report.run_folder import RunRecord
from mtpeft.evaluation.results import headline_metric_name, markdown_table

MODES = ("pairwise", "leave_one_out")


class TransferError(MtpeftError):
    """The runs do not define a transfer matrix (ambiguous or unknown mode)."""


@dataclass
class TransferMatrix:
    mode: str
    tasks: tuple[str, ...]
    metric: dict[str, str]  # task -> headline metric name
    values: np.ndarray  # (n, n) relative change T[i][j]
    with_source: np.ndarray  # (n, n) metric of j with i
    without_source: np.ndarray  # (n, n) metric of j without i
    missing: list[str] = field(default_factory=list)


def _by_task_set(runs: Sequence[RunRecord]) -> dict[frozenset[str], list[RunRecord]]:
    sets: dict[frozenset[str], list[RunRecord]] = {}
    for run in runs:
        sets.setdefault(frozenset(run.tasks), []).append(run)
    for task_set, members in sets.items():
        configs = {r.group_key for r in members}
        if len(configs) > 1:
            raise TransferError(
                f"{len(configs)} different configurations were trained on tasks {sorted(task_set)} "
                f"({', '.join(str(r.path) for r in members[:4])}); pass the runs of one configuration per task set"
            )
    return sets


def available_modes(runs: Sequence[RunRecord]) -> list[str]:
    """The modes these runs support (leave-one-out needs at least three tasks)."""
    sets = {frozenset(r.tasks) for r in runs}
    modes = []
    if any(len(s) == 1 for s in sets) and any(len(s) == 2 for s in sets):
        modes.append("pairwise")
    everything = frozenset().union(*sets) if sets else frozenset()
    if len(everything) >= 3 and everything in sets and any(len(s) == len(everything) - 1 for s in sets):
        modes.append("leave_one_out")
    return modes


def transfer_matrix(runs: Sequence[RunRecord], mode: str = "pairwise") -> TransferMatrix:
    """The transfer matrix of ``runs`` (one configuration per task set; seeds are averaged)."""
    if mode not in MODES:
        raise TransferError(f"unknown transfer mode {mode!r}; valid choices: {', '.join(MODES)}")
    sets = _by_task_set(runs)
    tasks = tuple(sorted(frozenset().union(*sets))) if sets else ()
    metric: dict[str, str] = {}
    for members in sets.values():
        for task, values in members[0].metrics.items():
            metric.setdefault(task, headline_metric_name(task, values))
    size = len(tasks)
    with_source, without_source = np.full((size, size), np.nan), np.full((size, size), np.nan)
    missing: list[str] = []

    def score(task_set: frozenset[str], task: str) -> float:
        members = [r for r in sets.get(task_set, []) if task in r.metrics]
        if not members:
            missing.append(f"{'+'.join(sorted(task_set))} (for {task})")
            return math.nan
        return float(np.mean([r.metrics[task][metric[task]] for r in members]))

    everything = frozenset(tasks)
    for i, added in enumerate(tasks):
        for j, affected in enumerate(tasks):
            if i == j:
                continue
            if mode == "pairwise":
                with_source[i, j] = score(frozenset({added, affected}), affected)
                without_source[i, j] = score(frozenset({affected}), affected)
            else:
                with_source[i, j] = score(everything, affected)
                without_source[i, j] = score(everything - {added}, affected)
    with np.errstate(divide="ignore", invalid="ignore"):
        values = np.where(without_source != 0, (with_source - without_source) / np.abs(without_source), np.nan)
    return TransferMatrix(mode, tasks, metric, values, with_source, without_source, sorted(set(missing)))


def _percent(value: float) -> str:
    return f"{value:+.1%}" if math.isfinite(value) else "n/a"


def transfer_markdown(matrix: TransferMatrix) -> str:
    """Rows: task added (i); columns: task affected (j); cells: relative change in percent."""
    headers = ["with ↓ / on →", *matrix.tasks]
    rows = [[added, *(_percent(v) for v in matrix.values[i])] for i, added in enumerate(matrix.tasks)]
    metrics = ", ".join(f"{t}: {m}" for t, m in matrix.metric.items())
    return markdown_table(headers, rows) + f"\n\nMode: {matrix.mode}; headline metrics: {metrics}.\n"


def transfer_heatmap(matrix: TransferMatrix, path: str | Path) -> Path:
    """A diverging heatmap (0 is white) of ``matrix.values`` with each cell annotated; saved as PNG."""
    plt = pyplot()
    size = len(matrix.tasks)
    fig, ax = plt.subplots(figsize=(1.4 * size + 2.5, 1.1 * size + 1.8))
    finite_values = matrix.values[np.isfinite(matrix.values)]
    limit = float(np.max(np.abs(finite_values))) if finite_values.size else 1.0
    limit = limit or 1.0
    cmap = plt.get_cmap("RdBu").with_extremes(bad="#dddddd")
    image = ax.imshow(np.ma.masked_invalid(matrix.values), cmap=cmap, vmin=-limit, vmax=limit)
    for i in range(size):
        for j in range(size):
            ax.text(j, i, _percent(matrix.values[i, j]), ha="center", va="center", fontsize=8)
    ax.set_xticks(range(size), matrix.tasks, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(size), matrix.tasks, fontsize=8)
    ax.set_xlabel("task affected (j)")
    ax.set_ylabel("task added (i)")
    ax.set_title(f"transfer ({matrix.mode.replace('_', '-')}): relative change", fontsize=9)
    from matplotlib.ticker import PercentFormatter

    fig.colorbar(image, ax=ax, format=PercentFormatter(xmax=1.0))
    fig.tight_layout()
    return save_png(fig, path)


def write_transfer(matrix: TransferMatrix, out_dir: str | Path, stem: str | None = None) -> dict[str, Path]:
    """Write ``<stem>.csv`` (fractions; empty where undefined), ``<stem>.md`` and ``<stem>.png``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = stem or f"transfer_{matrix.mode}"
    paths = {"csv": out / f"{stem}.csv", "md": out / f"{stem}.md", "png": out / f"{stem}.png"}
    with paths["csv"].open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["added_task", *matrix.tasks])
        for i, added in enumerate(matrix.tasks):
            writer.writerow([added, *("" if not math.isfinite(v) else v for v in matrix.values[i])])
    paths["md"].write_text(transfer_markdown(matrix))
    transfer_heatmap(matrix, paths["png"])
    return paths
