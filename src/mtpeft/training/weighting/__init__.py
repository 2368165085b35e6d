"""Loss strategies: how the task losses (or their gradients) become one update.

``LOSS_STRATEGIES`` (a :class:`~mtpeft.registry.Registry`) holds every strategy; each declares
``needs_per_task_gradients`` so the trainer never tests a name. Build one with
:func:`build_loss_strategy`. Importing this package registers: ``equal``, ``uncertainty``
(combining) and ``pcgrad``, ``upgrad``, ``dualproj``, ``mgda``, ``imtlg``, ``aligned_mtl``,
``cagrad``, ``fairgrad``, ``config``, ``graddrop``, ``rlw`` (torchjd aggregators).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mtpeft.training.weighting import aggregators, equal, uncertainty  # noqa: F401  (registration)
from mtpeft.training.weighting.base import CombiningStrategy, GradientStrategy, LossStrategy, StepGradients
from mtpeft.training.weighting.registry import LOSS_STRATEGIES

__all__ = [
    "LOSS_STRATEGIES",
    "CombiningStrategy",
    "GradientStrategy",
    "LossStrategy",
    "StepGradients",
    "build_loss_strategy",
]


def build_loss_strategy(
    name: str, tasks: Sequence[str], options: Mapping[str, Any] | None = None, *, seed: int = 0
) -> LossStrategy:
    """The strategy ``name`` (from :data:`LOSS_STRATEGIES`) for ``tasks``; ``options`` from the config.

    Unknown names list the valid choices; bad options raise :class:`~mtpeft.errors.ConfigError`.
    """
    from mtpeft.errors import ConfigError

    cls = LOSS_STRATEGIES.get(name)
    try:
        return cls(tasks, seed=seed, **dict(options or {}))
    except TypeError as error:
        raise ConfigError(f"loss strategy {name!r}: {error}") from None
