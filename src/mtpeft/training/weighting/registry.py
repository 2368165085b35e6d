"""The registry of loss strategies: ``training.loss.strategy`` in the config names one of these."""

from __future__ import annotations

from mtpeft.registry import Registry

LOSS_STRATEGIES: Registry[type] = Registry("loss strategy")
"""Name -> :class:`~mtpeft.training.weighting.base.LossStrategy` subclass."""
