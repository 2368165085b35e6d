"""The contract every loss strategy follows, so that ``fit()`` never branches on a name.

What a strategy receives (definitions in :mod:`mtpeft.training.step_losses`): per micro-batch,
each task's part of ``L_t`` (the task's loss over the whole optimiser step: each loss term's sum
divided by its unit count over all micro-batches and processes), and the step's task shares
``pi_t = n_t / n`` (the task's fraction of the step's examples; 1 for every task under
``training.loss.normalisation: micro_batch``). The parts of a task summed over the micro-batches
are ``L_t``, so a strategy that is linear in the losses within a step (all of them here) sees
exactly what one large batch would give.

Per optimizer step the trainer calls, for each micro-batch, :meth:`LossStrategy.backward`
(which leaves gradients in ``.grad``), then once :meth:`LossStrategy.finish` (which completes
``.grad`` and returns the task weights to log). Two families:

* :class:`CombiningStrategy` (``needs_per_task_gradients = False``) minimises
  ``sum_t pi_t (w_t L_t + r_t)``: its task weights ``w_t`` (:meth:`CombiningStrategy.task_weights`)
  and a regulariser ``r_t`` (:meth:`CombiningStrategy.penalty`, added once per step) on top of the
  task shares. ``equal``: ``w_t = 1``, no ``r_t``: the step's mean loss per example (under
  ``proportional`` sampling every example weighs the same on average, whatever its task; in
  expectation a task weighs its sampling share). ``uncertainty``: ``w_t = c_t exp(-s_t)``,
  ``r_t = s_t / 2`` (Kendall et al.); the shares scale each task's term, so its learned precision
  still settles at ``1 / (2 c_t L_t)`` and, with ``s_t = 0``, it is ``equal``.
* :class:`GradientStrategy` (``needs_per_task_gradients = True``): one gradient per task of
  ``L_t`` (WITHOUT ``pi_t``: the aggregator, not the sampling, weighs the tasks) on the SHARED
  parameters, summed over the micro-batches of the step and aggregated once in :meth:`finish`
  (so surgery sees the same gradients as one big batch would give). The other trainable
  parameters get the plain sum of the gradients of the ``L_t``. The shares then only decide how
  often a task is in a step and how many of its examples estimate its gradient.

Per-task gradients kept for conflict monitoring are always those of ``L_t``.

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
        self._shares: dict[str, float] = {}

    def backward(
        self,
        losses: Mapping[str, Tensor],
        shared_params: Sequence[nn.Parameter],
        other_params: Sequence[nn.Parameter],
        *,
        shares: Mapping[str, float] | None = None,
        scale: float = 1.0,
        keep_per_task: bool = False,
    ) -> None:
        """Backward pass of one micro-batch: add ``scale x`` its gradients to ``.grad``.

        Args:
            losses: task id -> this micro-batch's part of ``L_t``, for the tasks present in it.
            shared_params: the shared trainable parameters (shared adapter, shared fusion).
            other_params: every other trainable parameter (private adapters, heads, ...).
            shares: task id -> ``pi_t`` for EVERY task of the step (also those absent from this
                micro-batch or process), the same at each call of the step; ``None``: 1 for
                each task of ``losses`` (the plain sum).
            scale: multiplies the losses (the trainer: the number of processes, whose gradients
                are averaged; divided by the micro-batches under ``micro_batch`` normalisation).
            keep_per_task: also keep per-task shared gradients (for conflict monitoring).
        """
        raise NotImplementedError

    def _note_shares(self, losses: Mapping[str, Tensor], shares: Mapping[str, float] | None) -> dict[str, float]:
        """The shares of this micro-batch's tasks; remembers the step's shares for :meth:`finish`."""
        shares = dict(shares) if shares is not None else {t: 1.0 for t in losses}
        missing = sorted(set(losses) - set(shares))
        if missing:
            raise KeyError(f"no share given for tasks {missing} of the step")
        self._shares.update(shares)
        return shares

    def finish(self, shared_params: Sequence[nn.Parameter]) -> StepGradients:
        """Complete ``.grad`` for this optimizer step (before clipping) and reset the step's buffers."""
        raise NotImplementedError

    def discard(self) -> None:
        """Forget the buffered micro-batches of a skipped step (the trainer also zeroes ``.grad``)."""
        self._rows = None
        self._present = [False] * len(self.tasks)
        self._weights = {}
        self._shares = {}

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
    """A strategy that reduces the task losses to one scalar before one ordinary backward.

    The step's objective is ``sum_t pi_t (w_t L_t + r_t)`` with ``w_t`` from :meth:`task_weights`
    and ``r_t`` from :meth:`penalty`: linear in the ``L_t``, so each micro-batch backpropagates
    its part ``sum_t pi_t w_t l_t`` and :meth:`finish` adds the regulariser once.
    """

    needs_per_task_gradients: ClassVar[bool] = False

    def task_weights(self, tasks: Sequence[str]) -> dict[str, Tensor]:
        """``w_t`` of each task (0-dim, with a graph to the strategy's parameters if learned)."""
        raise NotImplementedError

    def penalty(self, shares: Mapping[str, float]) -> Tensor | None:
        """``sum_t pi_t r_t`` over the step's tasks (once per step), or ``None`` when there is none."""
        return None

    def combine(self, losses: Mapping[str, Tensor], shares: Mapping[str, float] | None = None) -> tuple[Tensor, dict[str, float]]:
        """``(total, weights)``: the objective of one whole step whose task losses are ``losses``
        (``shares`` default to 1) and each task's weight ``w_t`` in it."""
        shares = dict(shares) if shares is not None else {t: 1.0 for t in losses}
        total, weights = self._weighted(losses, shares)
        penalty = self.penalty({t: shares[t] for t in losses})
        return (total if penalty is None else total + penalty), weights

    def _weighted(self, losses: Mapping[str, Tensor], shares: Mapping[str, float]) -> tuple[Tensor, dict[str, float]]:
        weights = self.task_weights(list(losses))
        total = torch.stack([shares[t] * weights[t] * losses[t] for t in losses]).sum()
        return total, {t: float(w.detach()) for t, w in weights.items()}

    def backward(self, losses, shared_params, other_params, *, shares=None, scale=1.0, keep_per_task=False) -> None:
        shares = self._note_shares(losses, shares)
        if keep_per_task:
            self._keep(task_gradients(losses, shared_params, scale=scale, retain_graph=True))
        total, weights = self._weighted(losses, shares)
        self._weights.update(weights)  # the tasks of every micro-batch of the step
        (scale * total).backward()

    def finish(self, shared_params) -> StepGradients:
        # The regulariser of every task of the step (also those this process did not see), once,
        # alike on every process: the trainer then averages .grad over processes.
        penalty = self.penalty(self._shares) if self._shares else None
        if penalty is not None and penalty.requires_grad:
            penalty.backward()
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

    def backward(self, losses, shared_params, other_params, *, shares=None, scale=1.0, keep_per_task=False) -> None:
        self._note_shares(losses, shares)  # not used: the aggregator weighs the tasks' L_t
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
