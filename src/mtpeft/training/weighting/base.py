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

from mtpeft.training.gradients import add_flat_to_grads, task_gradients


@dataclass
class StepGradients:
    """What one optimizer step's gradients were made of (for logging and conflict monitoring)."""

    weights: dict[str, float]
    """Task id -> the weight its loss (or gradient) had in the update; empty when not defined."""
    per_task_gradients: dict[str, Tensor] | None
    """Task id -> flat ``(n_shared,)`` gradient on the shared parameters, summed over the
    micro-batches of the step; ``None`` unless computed (gradient strategies always compute it,
    combining strategies only when ``keep_per_task`` was asked)."""


class LossStrategy(nn.Module):
    """Base class. Subclasses declare ``needs_per_task_gradients`` and implement the two calls."""

    needs_per_task_gradients: ClassVar[bool] = False

    def __init__(self, tasks: Sequence[str], *, seed: int = 0) -> None:
        super().__init__()
        self.tasks = list(tasks)
        self.seed = seed
        self._per_task: dict[str, Tensor] = {}
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
        self._per_task = {}

    def _keep(self, gradients: Mapping[str, Tensor]) -> None:
        for task, g in gradients.items():
            self._per_task[task] = self._per_task[task] + g if task in self._per_task else g

    def _take_per_task(self) -> dict[str, Tensor] | None:
        kept, self._per_task = self._per_task, {}
        return kept or None

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
        total, self._weights = self.combine(losses)
        (scale * total).backward()

    def finish(self, shared_params) -> StepGradients:
        return StepGradients(weights=dict(self._weights), per_task_gradients=self._take_per_task())


class GradientStrategy(LossStrategy):
    """A strategy that aggregates the per-task gradients on the shared parameters.

    Subclasses implement :meth:`aggregate`: ``(m, n)`` Jacobian (one row per task) -> ``(n,)``
    update direction and the task weights.
    """

    needs_per_task_gradients: ClassVar[bool] = True

    def aggregate(self, jacobian: Tensor, tasks: Sequence[str]) -> tuple[Tensor, dict[str, float]]:
        raise NotImplementedError

    def backward(self, losses, shared_params, other_params, *, scale=1.0, keep_per_task=False) -> None:
        self._keep(task_gradients(losses, shared_params, other_params, scale=scale))

    def finish(self, shared_params) -> StepGradients:
        per_task = self._take_per_task()
        if per_task is None:
            raise RuntimeError("finish() called without any backward() in this step")
        tasks = list(per_task)
        if not shared_params:  # nothing is shared (e.g. one adapter per task): plain sum
            return StepGradients(weights={t: 1.0 for t in tasks}, per_task_gradients=per_task)
        jacobian = torch.stack([per_task[t] for t in tasks])  # (m, n_shared)
        direction, weights = self.aggregate(jacobian.float(), tasks)
        add_flat_to_grads(shared_params, direction.to(jacobian.dtype))
        return StepGradients(weights=weights, per_task_gradients=per_task)
