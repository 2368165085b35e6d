"""The task losses of one optimiser step, normalised by unit counts of the WHOLE step.

A head's loss is a set of terms (:class:`~mtpeft.heads.base.LossTerm`): the SUM of a per-unit loss
(tokens, candidate spans, slot pairs, entity pairs, examples) and the number of its units. For a
step of ``k`` micro-batches on ``P`` processes, task ``t`` and term ``j`` of its head:

* ``S_tj``: the term's sum over every micro-batch and process of the step;
* ``N_tj``: its units over the same micro-batches and processes (from
  :meth:`~mtpeft.heads.base.TaskHead.loss_units`, known from the collated batches before any
  forward pass, then summed over processes);
* ``L_t = sum_j w_j S_tj / N_tj``: the task's loss (a term without units adds 0);
* ``n_t``: the step's examples of task ``t`` (all micro-batches and processes), ``n = sum_t n_t``,
  and ``pi_t = n_t / n`` the task's SHARE of the step.

With ``training.loss.normalisation: step`` (the default) the loss strategy gets ``L_t`` and ``pi_t``;
``equal`` minimises ``sum_t pi_t L_t``, so accumulating ``k`` micro-batches gives the gradient of
one batch ``k`` times the size, ``P`` processes that of one process on the global batch, and under
``proportional`` sampling every example weighs the same on average whatever its task (a task's
expected weight is its sampling share, in ``mixed`` and ``per_task`` batches alike). Each micro-batch
contributes its part ``sum_j w_j total_j / N_tj`` of ``L_t``, so the backward pass still runs
micro-batch by micro-batch.

``normalisation: micro_batch`` keeps the earlier definition: each micro-batch's task loss is its
mean over that micro-batch's units (all processes), tasks are summed with weight 1 (``pi_t = 1``)
and micro-batches averaged. Accumulation then is not one large batch, and in ``mixed`` batches a
task's expected weight is the probability that it appears in a batch at all.

Written here rather than taken from a library: accelerate and the Hugging Face Trainer average
per-micro-batch means (or, since transformers 4.46, count the tokens of one causal-LM loss); none
normalises several heads' differently counted terms over a step and across processes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from mtpeft.errors import MtpeftError
from mtpeft.heads.base import HeadOutput
from mtpeft.model.multitask import MultiTaskBatch, MultiTaskModel
from mtpeft.training.distributed import Processes
from mtpeft.training.sampling import BatchIndices

NORMALISATIONS: tuple[str, ...] = ("step", "micro_batch")
Key = tuple[str, str]
"""``(task, term)``."""


def task_shares(drawn: Sequence[BatchIndices]) -> dict[str, float]:
    """``pi_t = n_t / n`` over the global batches of a step (the same on every process)."""
    counts: dict[str, int] = {}
    for indices in drawn:
        for task, ids in indices.items():
            counts[task] = counts.get(task, 0) + len(ids)
    total = sum(counts.values())
    return {t: n / total for t, n in counts.items() if n}


@dataclass
class StepLosses:
    """How one step's micro-batches turn their loss terms into task losses (see the module docstring).

    Build it with :meth:`plan` before the first forward pass of the step; call
    :meth:`task_losses` once per micro-batch, then :meth:`summary` once (on every process).
    """

    normalisation: str
    denominators: list[dict[Key, float]]
    """Per micro-batch: each term's denominator (the step's ``N_tj``, or the micro-batch's own)."""
    units: dict[Key, float]
    """``N_tj`` over the whole step (all micro-batches and processes)."""
    shares: dict[str, float]
    """Task -> the weight the loss strategy gives ``L_t`` besides its own: ``pi_t`` (step) or 1."""
    scale: float
    """What the strategy multiplies each micro-batch's losses by: the number of processes (whose
    gradients are averaged), divided by the number of micro-batches under ``micro_batch``."""
    processes: Processes = field(default_factory=Processes)
    _sums: dict[tuple[str, str, str], Tensor] = field(default_factory=dict)

    @classmethod
    def plan(
        cls,
        model: MultiTaskModel,
        drawn: Sequence[BatchIndices],
        batches: Sequence[MultiTaskBatch],
        normalisation: str = "step",
        processes: Processes | None = None,
    ) -> StepLosses:
        """The step's denominators and shares, from its global batches ``drawn`` (one per
        micro-batch, the same on every process) and this process's collated ``batches``.

        The unit counts of every process are summed by one all-reduce.
        """
        if normalisation not in NORMALISATIONS:
            raise MtpeftError(f"unknown loss normalisation {normalisation!r}; valid choices: {', '.join(NORMALISATIONS)}")
        processes = processes or Processes()
        local: dict[tuple[int, str, str], float] = {}
        for m, batch in enumerate(batches):
            for task in batch.tasks:
                for term, count in model.heads[task].loss_units(batch.batches[task]).items():
                    local[(m, task, term)] = float(count)
        counted = processes.sum_by_key(local)  # (micro-batch, task, term) -> units on all processes
        step: dict[Key, float] = {}
        for (_, task, term), count in counted.items():
            step[(task, term)] = step.get((task, term), 0.0) + count
        k = len(batches)
        if normalisation == "step":
            return cls(normalisation, [step] * k, step, task_shares(drawn), float(processes.world), processes)
        per_micro = [{(t, j): c for (i, t, j), c in counted.items() if i == m} for m in range(k)]
        ones = {t: 1.0 for t in task_shares(drawn)}
        return cls(normalisation, per_micro, step, ones, processes.world / k, processes)

    def task_losses(self, index: int, outputs: Mapping[str, HeadOutput]) -> dict[str, Tensor]:
        """Micro-batch ``index``'s part of each task's loss, ``sum_j w_j total_j / N_tj`` (with its
        graph); summed over the step's micro-batches and processes, these parts are ``L_t``."""
        losses: dict[str, Tensor] = {}
        denominators = self.denominators[index]
        for task, output in outputs.items():
            parts = []
            for term, loss_term in output.loss_terms.items():
                if (task, term) not in denominators:
                    raise MtpeftError(
                        f"task {task!r}: its head returned the loss term {term!r}, which its loss_units() did not count"
                    )
                part = loss_term.total / max(denominators[(task, term)], 1.0)
                parts.append(loss_term.weight * part)
                self._add(("term", task, term), part)
            if parts:
                losses[task] = parts[0] if len(parts) == 1 else torch.stack(parts).sum()
                self._add(("loss", task, ""), losses[task])
        return losses

    def _add(self, key: tuple[str, str, str], value: Tensor) -> None:
        value = value.detach().float()  # no device synchronisation before summary()
        self._sums[key] = self._sums[key] + value if key in self._sums else value

    def summary(self) -> dict[str, dict]:
        """The step's figures for the train log, over all processes (a collective: call it on every one).

        ``losses``: ``L_t``; ``terms``: each term's mean ``S_tj / N_tj`` (under ``micro_batch`` the
        mean of the micro-batches' means); ``units``: ``N_tj``; ``shares``: the weight each ``L_t``
        got besides the strategy's own (``pi_t``, or 1).
        """
        keys = sorted([("term", t, j) for t, j in self.units] + [("loss", t, "") for t in {t for t, _ in self.units}])
        local = {key: float(value) for key, value in self._sums.items()}
        summed = self.processes.sum_by_key(local, keys=keys)
        factor = self.scale / self.processes.world  # 1, or 1/k under micro_batch
        terms: dict[str, dict[str, float]] = {}
        units: dict[str, dict[str, int]] = {}
        for (task, term), count in sorted(self.units.items()):
            terms.setdefault(task, {})[term] = summed[("term", task, term)] * factor
            units.setdefault(task, {})[term] = int(count)
        losses = {task: summed[("loss", task, "")] * factor for task in terms}
        return {"losses": losses, "terms": terms, "units": units, "shares": dict(self.shares)}
