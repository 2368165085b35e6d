"""Gradient aggregators of torchjd (0.18) as loss strategies: PCGrad, UPGrad, MGDA, CAGrad, ...

Each strategy turns the ``(m, n_shared)`` Jacobian of the step (one row per task, on the shared
parameters only) into one update direction with a torchjd aggregator. For the aggregators that
weight the rows (all but GradDrop and ConFIG) the direction is ``weights @ J`` and the weights
are logged; torchjd computes them from the ``m x m`` Gramian, so the cost beyond the per-task
backward passes is negligible.

Randomness (PCGrad's task order, GradDrop's masks, RLW's weights) comes from torch's global RNG
inside torchjd. We run every aggregation inside ``torch.random.fork_rng`` on a PRIVATE state,
seeded from the run seed, saved by :meth:`state` and restored by :meth:`load_state`: the
aggregator's draws are deterministic, resumable, and do not shift the training RNG (dropout).
That is why we use torchjd's PCGrad rather than writing our own.

Not registered: torchjd's stateful aggregators (GradVac, PCD, NashMTL, ExcessMTL): their
internal state would not survive a resume; Krum/TrimmedMean (robust aggregation, not MTL);
Mean/Sum/Constant (``equal`` covers them).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor
from torchjd.aggregation import (
    IMTLG,
    MGDA,
    PCGrad,
    UPGrad,
    AlignedMTL,
    CAGrad,
    ConFIG,
    DualProj,
    FairGrad,
    GradDrop,
    Random,
    WeightedAggregator,
)

from mtpeft.errors import ConfigError
from mtpeft.training.rng import decode_state, encode_state
from mtpeft.training.weighting.base import GradientStrategy
from mtpeft.training.weighting.projector import ScipyDualConeProjector
from mtpeft.training.weighting.registry import LOSS_STRATEGIES


class TorchJDStrategy(GradientStrategy):
    """Base of the torchjd strategies; subclasses set ``aggregator_class`` (and maybe ``defaults``).

    ``options`` are the aggregator's keyword arguments (lists become tensors, e.g. ``pref_vector``).
    """

    aggregator_class: type = type(None)
    defaults: dict[str, Any] = {}

    def __init__(self, tasks: Sequence[str], *, seed: int = 0, **options: Any) -> None:
        super().__init__(tasks, seed=seed)
        kwargs = {**self.defaults, **{k: _as_tensor(v) for k, v in options.items()}}
        name = self.aggregator_class.__name__
        try:
            self.aggregator = self.aggregator_class(**kwargs)
        except TypeError as error:
            signature = inspect.signature(self.aggregator_class.__init__)
            raise ConfigError(f"loss strategy {name}: {error}; its options are {signature}") from None
        except ImportError as error:
            raise ConfigError(f"loss strategy {name} cannot run here: {error}") from None
        except ValueError as error:
            raise ConfigError(f"loss strategy {name}: {error}") from None
        self._cpu_rng = torch.Generator().manual_seed(seed).get_state()
        self._cuda_rng: Tensor | None = None

    def aggregate(self, jacobian: Tensor, tasks: Sequence[str]) -> tuple[Tensor, dict[str, float]]:
        """``(n,)`` direction for the ``(m, n)`` Jacobian, and each task's weight (if it has one)."""
        with self._private_rng(jacobian.device):
            if isinstance(self.aggregator, WeightedAggregator):
                weights = self.aggregator.weighting(jacobian)  # (m,)
                return weights @ jacobian, {t: float(w) for t, w in zip(tasks, weights.tolist())}
            return self.aggregator(jacobian), {}

    # ------------------------------------------------------------------ private RNG
    @contextmanager
    def _private_rng(self, device: torch.device) -> Iterator[None]:
        """Run the block on this strategy's own torch RNG state (CPU, and ``device`` if CUDA)."""
        cuda = device.type == "cuda"
        with torch.random.fork_rng(devices=[device] if cuda else []):
            torch.set_rng_state(self._cpu_rng)
            if cuda:
                if self._cuda_rng is None:
                    with torch.cuda.device(device):
                        torch.cuda.manual_seed(self.seed)
                else:
                    torch.cuda.set_rng_state(self._cuda_rng, device)
            yield
            self._cpu_rng = torch.get_rng_state()
            if cuda:
                self._cuda_rng = torch.cuda.get_rng_state(device)

    def state(self) -> dict[str, Any]:
        state = {"cpu_rng": encode_state(self._cpu_rng)}
        if self._cuda_rng is not None:
            state["cuda_rng"] = encode_state(self._cuda_rng)
        return state

    def load_state(self, state: Mapping[str, Any]) -> None:
        self._cpu_rng = decode_state(state["cpu_rng"])
        self._cuda_rng = decode_state(state["cuda_rng"]) if "cuda_rng" in state else None


def _as_tensor(value: Any) -> Any:
    return torch.tensor(value, dtype=torch.float32) if isinstance(value, list) else value


@LOSS_STRATEGIES.register("pcgrad")
class PCGradStrategy(TorchJDStrategy):
    """PCGrad (Yu et al., NeurIPS 2020): each task gradient is projected onto the normal plane of
    every conflicting task gradient (in a random order), the projections are SUMMED."""

    aggregator_class = PCGrad


@LOSS_STRATEGIES.register("upgrad")
class UPGradStrategy(TorchJDStrategy):
    """UPGrad (Quinton & Rey 2024): each row projected onto the dual cone of all rows, then
    averaged (``pref_vector`` option, default uniform); equals the mean when nothing conflicts."""

    aggregator_class = UPGrad

    def __init__(self, tasks: Sequence[str], *, seed: int = 0, **options: Any) -> None:
        options.setdefault("projector", ScipyDualConeProjector())
        super().__init__(tasks, seed=seed, **options)


@LOSS_STRATEGIES.register("dualproj")
class DualProjStrategy(UPGradStrategy):
    """DualProj (Quinton & Rey 2024): the mean gradient projected onto the dual cone of the rows."""

    aggregator_class = DualProj


@LOSS_STRATEGIES.register("mgda")
class MGDAStrategy(TorchJDStrategy):
    """MGDA (Sener & Koltun 2018): the minimum-norm convex combination of the task gradients."""

    aggregator_class = MGDA


@LOSS_STRATEGIES.register("imtlg")
class IMTLGStrategy(TorchJDStrategy):
    """IMTL-G (Liu et al. 2021): weights giving equal projections of the update on every task gradient."""

    aggregator_class = IMTLG


@LOSS_STRATEGIES.register("aligned_mtl")
class AlignedMTLStrategy(TorchJDStrategy):
    """Aligned-MTL (Senushkin et al. 2023): aligns the principal components of the Jacobian."""

    aggregator_class = AlignedMTL


@LOSS_STRATEGIES.register("cagrad")
class CAGradStrategy(TorchJDStrategy):
    """CAGrad (Liu et al. 2021), option ``c`` (default 0.5); needs ``pip install 'torchjd[cagrad]'``."""

    aggregator_class = CAGrad
    defaults = {"c": 0.5}


@LOSS_STRATEGIES.register("fairgrad")
class FairGradStrategy(TorchJDStrategy):
    """FairGrad (Ban & Ji 2024), option ``alpha`` (default 1.0: proportional fairness)."""

    aggregator_class = FairGrad
    defaults = {"alpha": 1.0}


@LOSS_STRATEGIES.register("config")
class ConFIGStrategy(TorchJDStrategy):
    """ConFIG (Liu et al. 2024): a conflict-free direction; no per-task weights to log."""

    aggregator_class = ConFIG


@LOSS_STRATEGIES.register("graddrop")
class GradDropStrategy(TorchJDStrategy):
    """GradDrop (Chen et al. 2020): random sign-consistent masking; no per-task weights to log."""

    aggregator_class = GradDrop


@LOSS_STRATEGIES.register("rlw")
class RandomWeightingStrategy(TorchJDStrategy):
    """Random loss weighting (Lin et al. 2022): softmax of Gaussian weights drawn at each step."""

    aggregator_class = Random
