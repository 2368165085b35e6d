"""The contract every loss strategy follows, so that ``fit()`` never branches on a name.

Per optimizer step the trainer calls, for each micro-batch, :meth:`LossStrategy.backward`
(which leaves gradients in ``.grad``), then once :meth:`LossStrategy.finish` (which completes
``.grad`` and returns the task weights to log). Two families:

* :class:`CombiningStrategy` (``needs_per_task_gradients = False``): a scalar ``total`` from the
  task losses (:meth:`CombiningStrategy.combine`), then one ordinary ``total.backward()``.
* :class:`GradientStrategy` (``needs_per_task_gradients = True``): one gradient per task on the
  SHARED parameters, summed over the micro-batches of the step and aggregated once in
  :meth:`finish` (so surgery sees the same gradients as one big batch would give). The other
  trainable parameters get the plain sum of the task gradients.

Under ``torch.distributed`` (initialised, more than one process) the per-task gradients are
averaged over processes before aggregation, so every process applies the same update; a gradient
strategy also averages the other parameters' ``.grad`` itself, since ``torch.autograd.grad``
bypasses DDP's hooks (run its forward/backward under DDP's ``no_sync()``). Every process must
call :meth:`LossStrategy.finish` (and pass the same ``keep_per_task``) at the same steps.

Strategies are ``nn.Module``s: learned weights (uncertainty weighting) are parameters the
optimizer must include (``strategy.parameters()``) and are saved with ``state_dict()``;
non-tensor state (private RNG) goes through :meth:`state` / :meth:`load_state` (JSON-able).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from mtpeft.training.gradients import add_flat_to_grads, average_rows_over_processes, task_gradients, world_size


@dataclass
class StepGradients:
    """What one optimizer step's gradients were made of (for logging and conflict monitoring)."""

    weights: dict[str, float]
    """Task id -> the weight its loss (or gradient) had in the update; empty when not defined."""
    per_task_gradients: dict[str, Tensor] | None
    """Task id -> flat ``(n_shared,)`` gradient on the shared parameters, summed over the
    micro-batches of the step (rows of one ``(m, n_shared)`` buffer); ``None`` unless computed
    (gradient strategies always compute it, combining strategies only with ``keep_per_task``)."""


class LossStrategy(nn.Module):
    """Base class. Subclasses declare ``needs_per_task_gradients`` and implement the two calls."""

    needs_per_task_gradients: ClassVar[bool] = False

    def __init__(self, tasks: Sequence[str], *, seed: int = 0) -> None:
        super().__init__()
        self.tasks = list(tasks)
        self.seed = seed
        self._index = {t: i for i, t in enumerate(self.tasks)}
        self._rows: Tensor | None = None  # (T, n_shared) per-task gradients of the step, summed
        self._present = [False] * len(self.tasks)
        self._weights: dict[str, float] = {}

    def backward(
        self,
        losses: Mapping[str, Tensor],
        shared_params: Sequence[nn.Parameter],
        other_params: Sequence[nn.Parameter],
        *,
        scale: float = 1.0,
        keep_per_task: bool = False,
    ) -> None:
        """Backward pass of one micro-batch: add ``scale x`` its gradients to ``.grad``.

        Args:
            losses: task id -> scalar loss of the tasks present in this micro-batch.
            shared_params: the shared trainable parameters (shared adapter, shared fusion).
            other_params: every other trainable parameter (private adapters, heads, ...).
            scale: multiplies the losses (``1 / grad_accum``).
            keep_per_task: also keep per-task shared gradients (for conflict monitoring).
        """
        raise NotImplementedError

    def finish(self, shared_params: Sequence[nn.Parameter]) -> StepGradients:
        """Complete ``.grad`` for this optimizer step (before clipping) and reset the step's buffers."""
        raise NotImplementedError

    def discard(self) -> None:
        """Forget the buffered micro-batches of a skipped step (the trainer also zeroes ``.grad``)."""
        self._rows = None
        self._present = [False] * len(self.tasks)
        self._weights = {}

    def _keep(self, gradients: Mapping[str, Tensor]) -> None:
        """Add flat per-task gradients to the step's ``(T, n)`` buffer (one row per task of the run)."""
        unknown = [t for t in gradients if t not in self._index]
        if unknown:
            raise KeyError(f"losses of tasks {unknown} that this strategy was not built for ({self.tasks})")
        for task, g in gradients.items():
            if self._rows is None:
                self._rows = torch.zeros(len(self.tasks), g.numel(), dtype=g.dtype, device=g.device)
            self._rows[self._index[task]] += g
            self._present[self._index[task]] = True

    def _take_rows(self, other_params: Sequence[nn.Parameter] = ()) -> tuple[list[str], Tensor] | None:
        """``(tasks, (m, n) rows)`` of the step's tasks in the order of ``self.tasks``, averaged over
        processes when torch.distributed runs (``other_params``' ``.grad`` too); buffers are reset."""
        rows, present = self._rows, self._present
        self.discard()
        if rows is None:  # nothing kept this step (on every process: keep_per_task is the same on all)
            return None
        if world_size() > 1:
            present = average_rows_over_processes(rows, present, other_params)
        tasks = [t for t, p in zip(self.tasks, present) if p]
        if len(tasks) < len(self.tasks):
            rows = rows[[self._index[t] for t in tasks]]
        return tasks, rows

    def _take_per_task(self, other_params: Sequence[nn.Parameter] = ()) -> dict[str, Tensor] | None:
        taken = self._take_rows(other_params)
        return None if taken is None else {t: taken[1][i] for i, t in enumerate(taken[0])}

    def state(self) -> dict[str, Any]:
        """JSON-able non-tensor state (e.g. a private RNG); tensors go through ``state_dict()``."""
        return {}

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state` returned."""


class CombiningStrategy(LossStrategy):
    """A strategy that reduces the task losses to one scalar before one ordinary backward."""

    needs_per_task_gradients: ClassVar[bool] = False

    def combine(self, losses: Mapping[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        """``(total, weights)``: the scalar to minimise and each task's weight in it."""
        raise NotImplementedError

    def backward(self, losses, shared_params, other_params, *, scale=1.0, keep_per_task=False) -> None:
        if keep_per_task:
            self._keep(task_gradients(losses, shared_params, scale=scale, retain_graph=True))
        total, weights = self.combine(losses)
        self._weights.update(weights)  # the tasks of every micro-batch of the step
        (scale * total).backward()

    def finish(self, shared_params) -> StepGradients:
        # Under DDP the ordinary backward already averaged .grad; only kept per-task gradients are reduced.
        weights = dict(self._weights)
        return StepGradients(weights=weights, per_task_gradients=self._take_per_task())


class GradientStrategy(LossStrategy):
    """A strategy that aggregates the per-task gradients on the shared parameters.

    Subclasses implement :meth:`aggregate`: ``(m, n)`` Jacobian (one row per task) -> ``(n,)``
    update direction and the task weights.
    """

    needs_per_task_gradients: ClassVar[bool] = True

    def aggregate(self, jacobian: Tensor, tasks: Sequence[str]) -> tuple[Tensor, dict[str, float]]:
        raise NotImplementedError

    def backward(self, losses, shared_params, other_params, *, scale=1.0, keep_per_task=False) -> None:
        self._others = list(other_params)
        self._keep(task_gradients(losses, shared_params, other_params, scale=scale))

    def finish(self, shared_params) -> StepGradients:
        taken = self._take_rows(getattr(self, "_others", ()))
        if taken is None:
            raise RuntimeError("finish() called without any backward() in this step")
        tasks, jacobian = taken  # (m, n_shared)
        per_task = {t: jacobian[i] for i, t in enumerate(tasks)}
        if not shared_params:  # nothing is shared (e.g. one adapter per task): plain sum
            return StepGradients(weights={t: 1.0 for t in tasks}, per_task_gradients=per_task)
        direction, weights = self.aggregate(jacobian.float(), tasks)
        add_flat_to_grads(shared_params, direction.to(jacobian.dtype))
        return StepGradients(weights=weights, per_task_gradients=per_task)
