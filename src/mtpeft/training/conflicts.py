"""Gradient conflicts between tasks on the shared adapter: pairwise cosines, fraction conflicting.

Two tasks conflict at a step when their gradients on the shared parameters point in opposing
directions (cosine < 0, Yu et al. 2020): a step along their sum then increases one of the
losses. :class:`ConflictMonitor` records the full cosine matrix every N steps into
``conflicts.jsonl`` (see ``docs/run-folder.md``) for the report.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from mtpeft.training.gradients import task_gradients
from mtpeft.training.run_folder import JsonlWriter


def gradient_conflicts(per_task_grads: Mapping[str, Tensor]) -> dict[str, Any]:
    """Cosine similarity of every pair of flat task gradients (each ``(n,)``).

    Returns ``{"tasks": [...], "cosine": [[...]] (task x task, nested lists), "conflict_fraction":
    fraction of unordered task pairs with cosine < 0, "norms": {task: L2 norm}}``. A task whose
    gradient is exactly zero (it did not reach the shared parameters) has cosine ``None`` with every
    other task and its pairs are left out of the fraction; ``conflict_fraction`` is ``None`` when no
    pair is defined (fewer than two tasks with a gradient).
    """
    tasks = list(per_task_grads)
    if not tasks:
        return {"tasks": [], "cosine": [], "conflict_fraction": None, "norms": {}, "pairs": 0}
    jacobian = torch.stack([per_task_grads[t].detach().reshape(-1).double() for t in tasks])  # (m, n)
    gramian = jacobian @ jacobian.T  # (m, m)
    norms = gramian.diagonal().clamp_min(0).sqrt()
    cosine: list[list[float | None]] = []
    conflicting = defined = 0
    for i in range(len(tasks)):
        row: list[float | None] = []
        for j in range(len(tasks)):
            if norms[i] == 0 or norms[j] == 0:
                row.append(None)
                continue
            value = float((gramian[i, j] / (norms[i] * norms[j])).clamp(-1.0, 1.0))
            row.append(value)
            if j > i:
                defined += 1
                conflicting += value < 0
        cosine.append(row)
    return {
        "tasks": tasks,
        "cosine": cosine,
        "conflict_fraction": conflicting / defined if defined else None,
        "norms": {t: float(n) for t, n in zip(tasks, norms.tolist())},
        "pairs": defined,
    }


class ConflictMonitor:
    """Every ``every`` steps (0: never), append the conflicts of the step to ``path``.

    In ``fit()``: ask :meth:`due` before the backward of a step, pass ``keep_per_task=due`` to the
    loss strategy, then :meth:`record` the strategy's ``StepGradients.per_task_gradients`` (gradient
    strategies compute them anyway; combining strategies compute them only when asked). Outside the
    strategy, :meth:`measure` computes them from the losses (graph retained).
    """

    def __init__(self, path: str | Path, every: int) -> None:
        if every < 0:
            raise ValueError(f"every must be >= 0, got {every}")
        self.every = every
        self.writer = JsonlWriter(path)

    def due(self, step: int) -> bool:
        """Whether ``step`` (1-based optimizer step) is a measurement step."""
        return self.every > 0 and step % self.every == 0

    def record(self, step: int, per_task_grads: Mapping[str, Tensor]) -> dict[str, Any]:
        """Compute the conflicts of these gradients, append them with ``step``, and return them."""
        entry = {"step": step, **gradient_conflicts(per_task_grads)}
        self.writer.append(entry)
        return entry

    def measure(
        self, step: int, losses: Mapping[str, Tensor], shared_params: Sequence[nn.Parameter]
    ) -> dict[str, Any]:
        """Per-task gradients of ``losses`` on ``shared_params`` (graph kept for the real backward), recorded."""
        grads = task_gradients(losses, shared_params, retain_graph=True)
        return self.record(step, grads)
