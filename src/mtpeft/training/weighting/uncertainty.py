"""Uncertainty weighting (Kendall, Gal & Cipolla, CVPR 2018), with learned log-variances.

With ``s_t = log sigma_t^2`` (one learned scalar per task, initialised to ``init``):

* classification task (cross-entropy, the paper's eq. 10 approximation):
  ``exp(-s_t) * L_t + s_t / 2``  (i.e. ``L_t / sigma^2 + log sigma``)
* regression task (Gaussian likelihood, eq. 7):
  ``0.5 * exp(-s_t) * L_t + s_t / 2``  (i.e. ``L_t / (2 sigma^2) + log sigma``)

Each task's term is multiplied by its share ``pi_t`` of the step's examples
(:mod:`mtpeft.training.weighting.base`): ``total = sum_t pi_t (c_t exp(-s_t) L_t + s_t / 2)`` over
the step's tasks, the ``s_t / 2`` added once per step. The share scales both parts of a task's
term, so the optimum is unchanged, ``exp(-s_t) = 1 / (2 c_t L_t)`` (tasks with a larger loss get a
smaller weight), and with every ``s_t = 0`` the strategy is ``equal``; the shares keep the
sampling rule's task weighting, on which the learned precisions act. The weight logged for task
``t`` is ``c_t * exp(-s_t)`` (``c_t`` = 1 or 0.5). ``s_t`` is optimised jointly with the model: the
trainer must pass ``strategy.parameters()`` to the optimizer (without weight decay), and saves
them with ``strategy.state_dict()``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from mtpeft.errors import ConfigError
from mtpeft.training.weighting.base import CombiningStrategy
from mtpeft.training.weighting.registry import LOSS_STRATEGIES

CLASSIFICATION_FACTOR = 1.0
REGRESSION_FACTOR = 0.5


@LOSS_STRATEGIES.register("uncertainty")
class UncertaintyWeighting(CombiningStrategy):
    """Kendall et al. 2018 weighting; ``regression_tasks`` use the Gaussian (1/2) factor.

    Args:
        tasks: task ids, in a fixed order (the order of ``log_variances``).
        seed: unused (no randomness); accepted like every strategy.
        init: initial ``s_t`` (0: every weight starts at ``c_t``).
        regression_tasks: tasks whose loss is a squared error; all others are classification.
    """

    def __init__(
        self, tasks: Sequence[str], *, seed: int = 0, init: float = 0.0, regression_tasks: Sequence[str] = ()
    ) -> None:
        super().__init__(tasks, seed=seed)
        unknown = sorted(set(regression_tasks) - set(self.tasks))
        if unknown:
            raise ConfigError(
                f"uncertainty weighting: regression_tasks {unknown} are not tasks of this run: {self.tasks}"
            )
        self.log_variances = nn.Parameter(torch.full((len(self.tasks),), float(init)))  # (T,) s_t
        factors = [REGRESSION_FACTOR if t in regression_tasks else CLASSIFICATION_FACTOR for t in self.tasks]
        self.register_buffer("factors", torch.tensor(factors), persistent=False)
        self._index = {t: i for i, t in enumerate(self.tasks)}

    def _indices(self, tasks: Sequence[str]) -> Tensor:
        unknown = [t for t in tasks if t not in self._index]
        if unknown:
            raise KeyError(f"uncertainty weighting has no log-variance for tasks {unknown}; known: {self.tasks}")
        return torch.tensor([self._index[t] for t in tasks], device=self.log_variances.device)

    def task_weights(self, tasks: Sequence[str]) -> dict[str, Tensor]:
        """``c_t exp(-s_t)`` per task (with its graph to ``log_variances``)."""
        idx = self._indices(tasks)
        precision = self.factors[idx] * torch.exp(-self.log_variances[idx])
        return dict(zip(tasks, precision.unbind()))

    def penalty(self, shares: Mapping[str, float]) -> Tensor | None:
        """``sum_t pi_t s_t / 2`` over the step's tasks."""
        if not shares:
            return None
        tasks = list(shares)
        weights = torch.tensor([shares[t] for t in tasks], device=self.log_variances.device)
        return 0.5 * (weights * self.log_variances[self._indices(tasks)]).sum()
