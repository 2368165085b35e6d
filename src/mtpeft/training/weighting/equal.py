"""Equal weights: ``total = sum_t pi_t L_t``, the step's loss per example (``pi_t`` its task shares)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from mtpeft.training.weighting.base import CombiningStrategy
from mtpeft.training.weighting.registry import LOSS_STRATEGIES


@LOSS_STRATEGIES.register("equal")
class EqualWeights(CombiningStrategy):
    """``w_t = 1``: no weighting beyond the task shares, so the sampling rule alone sets how much
    each task counts; one task alone trains as single-task (``pi = 1``). Without shares
    (``normalisation: micro_batch``) it is the sum of the task losses."""

    def task_weights(self, tasks: Sequence[str]) -> dict[str, Tensor]:
        return {t: torch.ones(()) for t in tasks}
