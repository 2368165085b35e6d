"""Training plots of one configuration (its seeds overlaid): loss curves and gradient conflicts."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np

from mtpeft.errors import FormatError, Location
from mtpeft.evaluation.report.figures import pyplot, save_png
from mtpeft.evaluation.report.run_folder import RunGroup


def _series(records: list[dict], value) -> tuple[list[float], list[float]]:
    steps, values = [], []
    for record in records:
        v = value(record)
        if isinstance(record.get("step"), (int, float)) and isinstance(v, (int, float)) and not isinstance(v, bool):
            steps.append(float(record["step"]))
            values.append(float(v))
    return steps, values


def loss_curves(group: RunGroup, path: Path) -> Path | None:
    """Total loss and each task's loss over steps, one line per seed; None when nothing was logged."""
    tasks = list(dict.fromkeys(t for r in group.runs for rec in r.train_log for t in (rec.get("losses") or {})))
    panels = [("total loss", lambda rec: rec.get("loss"))]
    panels += [(f"{t} loss", lambda rec, t=t: (rec.get("losses") or {}).get(t)) for t in tasks]
    if not any(_series(r.train_log, panels[0][1])[0] for r in group.runs):
        return None
    plt = pyplot()
    columns = min(3, len(panels))
    rows = math.ceil(len(panels) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 2.9 * rows), squeeze=False)
    for ax, (title, value) in zip(axes.flat, panels):
        for run in group.runs:
            steps, values = _series(run.train_log, value)
            if steps:
                ax.plot(steps, values, linewidth=1.2, label=f"seed {run.seed}")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    fig.suptitle(group.title, fontsize=10)
    fig.tight_layout()
    return save_png(fig, path)


def _last_cosine(group: RunGroup) -> tuple[list[str], np.ndarray, int] | None:
    """Seed mean of the last measured cosine matrix (seeds with the same task order only)."""
    lasts = []
    for run in group.runs:
        measured = [c for c in run.conflicts if c.get("tasks") and c.get("cosine") is not None]
        if measured:
            last = measured[-1]
            tasks = list(last["tasks"])
            try:  # None (a task whose shared gradient was zero) becomes NaN
                matrix = np.asarray(last["cosine"], dtype=float)
            except (TypeError, ValueError):
                matrix = np.empty(0)
            if matrix.shape != (len(tasks), len(tasks)):
                raise FormatError(Location(str(run.path / "conflicts.jsonl"), element=f"step {last.get('step')}"),
                                  f"cosine of shape {matrix.shape} for {len(tasks)} tasks", "a task x task matrix")
            lasts.append((tasks, matrix))
    if not lasts:
        return None
    tasks = lasts[0][0]
    same = np.stack([m for t, m in lasts if t == tasks])
    with warnings.catch_warnings():  # a cell that is NaN in every seed stays NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        return tasks, np.nanmean(same, axis=0), len(same)


def conflict_plot(group: RunGroup, path: Path) -> Path | None:
    """Conflict fraction over steps (per seed) and the last cosine matrix; None without measurements."""
    if not any(r.conflicts for r in group.runs):
        return None
    plt = pyplot()
    last = _last_cosine(group)
    fig, axes = plt.subplots(1, 2 if last else 1, figsize=(10 if last else 5, 3.8), squeeze=False)
    ax = axes[0, 0]
    for run in group.runs:
        steps, values = _series(run.conflicts, lambda rec: rec.get("conflict_fraction"))
        if steps:
            ax.plot(steps, values, marker=".", linewidth=1.2, label=f"seed {run.seed}")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("step", fontsize=8)
    ax.set_ylabel("conflict fraction", fontsize=8)
    ax.set_title("gradient conflict fraction (shared adapter)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    if last:
        tasks, matrix, seeds = last
        heat = axes[0, 1]
        cmap = plt.get_cmap("RdBu").with_extremes(bad="#dddddd")
        image = heat.imshow(np.ma.masked_invalid(matrix), cmap=cmap, vmin=-1, vmax=1)
        for i in range(len(tasks)):
            for j in range(len(tasks)):
                text = f"{matrix[i, j]:.2f}" if np.isfinite(matrix[i, j]) else "n/a"
                heat.text(j, i, text, ha="center", va="center", fontsize=8)
        heat.set_xticks(range(len(tasks)), tasks, rotation=30, ha="right", fontsize=7)
        heat.set_yticks(range(len(tasks)), tasks, fontsize=7)
        heat.set_title(f"last gradient cosine (mean of {seeds} seed{'s' * (seeds > 1)})", fontsize=9)
        fig.colorbar(image, ax=heat)
    fig.suptitle(group.title, fontsize=10)
    fig.tight_layout()
    return save_png(fig, path)
