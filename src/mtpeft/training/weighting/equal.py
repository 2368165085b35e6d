"""Equal weights: ``total = sum_t L_t`` (every task's mean loss counts once)."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

from mtpeft.training.weighting.base import CombiningStrategy
from mtpeft.training.weighting.registry import LOSS_STRATEGIES


@LOSS_STRATEGIES.register("equal")
class EqualWeights(CombiningStrategy):
    """``total = sum_t L_t``; the sum (not the mean) so that one task alone trains as single-task."""

    def combine(self, losses: Mapping[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        total = torch.stack(list(losses.values())).sum()
        return total, {t: 1.0 for t in losses}
