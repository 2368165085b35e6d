"""Uncertainty weighting (Kendall, Gal & Cipolla, CVPR 2018), with learned log-variances.

With ``s_t = log sigma_t^2`` (one learned scalar per task, initialised to ``init``):

* classification task (cross-entropy, the paper's eq. 10 approximation):
  ``exp(-s_t) * L_t + s_t / 2``  (i.e. ``L_t / sigma^2 + log sigma``)
* regression task (Gaussian likelihood, eq. 7):
  ``0.5 * exp(-s_t) * L_t + s_t / 2``  (i.e. ``L_t / (2 sigma^2) + log sigma``)

``total`` is the sum over the tasks present in the batch. The weight logged for task ``t`` is
``c_t * exp(-s_t)`` (``c_t`` = 1 or 0.5). ``s_t`` is optimised jointly with the model: the
trainer must pass ``strategy.parameters()`` to the optimizer (without weight decay), and saves
them with ``strategy.state_dict()``. At the optimum ``exp(-s_t) = 1 / (2 c_t L_t)``: tasks with a
larger loss get a smaller weight.
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

    def combine(self, losses: Mapping[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        unknown = [t for t in losses if t not in self._index]
        if unknown:
            raise KeyError(f"uncertainty weighting has no log-variance for tasks {unknown}; known: {self.tasks}")
        idx = torch.tensor([self._index[t] for t in losses], device=self.log_variances.device)
        s = self.log_variances[idx]  # (k,)
        c = self.factors[idx]
        task_losses = torch.stack([losses[t] for t in losses]).to(s.dtype)  # (k,)
        precision = c * torch.exp(-s)
        total = (precision * task_losses + 0.5 * s).sum()
        weights = {t: float(w) for t, w in zip(losses, precision.detach().cpu().tolist())}
        return total, weights
