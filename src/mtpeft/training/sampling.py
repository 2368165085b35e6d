"""Which examples of which tasks make up each training step.

Task probabilities come from a registered rule (:data:`SAMPLERS`): ``proportional`` to the
number of training examples, ``temperature`` (``p_t ∝ n_t ** (1 / tau)``; tau = 1 is
proportional, tau -> inf is uniform) or ``uniform``.

Within a task, examples are drawn WITHOUT replacement from a per-epoch shuffled order; when a
task's order is exhausted the next epoch's order starts. That order is a pure function of
``(seed, task id, epoch)``, so the sampler's whole state is small and JSON-able: the numpy
generator state (task choices) plus, per task, the epoch and the cursor in it. A run resumed
from :meth:`TaskSampler.state_dict` continues with exactly the same batches.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Mapping
from typing import Any, Literal

import numpy as np

from mtpeft.errors import ConfigError, MtpeftError
from mtpeft.registry import Registry

BatchIndices = dict[str, list[int]]
"""One step's examples: task id -> indices into that task's training examples."""

BATCH_MODES = ("per_task", "mixed")


class SamplingRule:
    """Turns task sizes into task probabilities."""

    def probabilities(self, sizes: Mapping[str, int]) -> dict[str, float]:
        raise NotImplementedError


SAMPLERS: Registry[type[SamplingRule]] = Registry("sampling strategy")


@SAMPLERS.register("proportional")
class Proportional(SamplingRule):
    """``p_t = n_t / sum(n)``: every example is equally likely, large tasks dominate."""

    def probabilities(self, sizes: Mapping[str, int]) -> dict[str, float]:
        return _normalise({t: float(n) for t, n in sizes.items()})


@SAMPLERS.register("temperature")
class Temperature(SamplingRule):
    """``p_t ∝ n_t ** (1 / tau)``: tau > 1 flattens the size distribution towards uniform."""

    def __init__(self, temperature: float = 2.0) -> None:
        if not temperature > 0:
            raise ConfigError(f"sampling temperature must be > 0, got {temperature}")
        self.temperature = temperature

    def probabilities(self, sizes: Mapping[str, int]) -> dict[str, float]:
        return _normalise({t: float(n) ** (1.0 / self.temperature) for t, n in sizes.items()})


@SAMPLERS.register("uniform")
class Uniform(SamplingRule):
    """``p_t = 1 / T``: every task equally often, whatever its size."""

    def probabilities(self, sizes: Mapping[str, int]) -> dict[str, float]:
        return _normalise({t: 1.0 for t in sizes})


def _normalise(scores: dict[str, float]) -> dict[str, float]:
    total = sum(scores.values())
    return {t: s / total for t, s in scores.items()}


def build_rule(strategy: str, temperature: float = 2.0) -> SamplingRule:
    """The rule named ``strategy``; only ``temperature`` takes the temperature."""
    cls = SAMPLERS.get(strategy)
    return cls(temperature) if cls is Temperature else cls()


def _task_key(task: str) -> int:
    # A stable (process-independent) integer for the task id: Python's hash() is salted.
    return zlib.crc32(task.encode("utf-8"))


class TaskSampler:
    """Yields, per step, ``{task: [example indices]}`` (tasks in the order given by ``sizes``).

    Args:
        sizes: task id -> number of training examples (each > 0).
        batch_size: examples per step (before gradient accumulation).
        seed: fixes the task choices and every epoch's shuffle.
        strategy: a name in :data:`SAMPLERS`.
        temperature: tau of the ``temperature`` rule.
        batch_mode: ``per_task`` (one task per batch, chosen with the task probabilities) or
            ``mixed`` (each example's task drawn independently with those probabilities).
    """

    def __init__(
        self,
        sizes: Mapping[str, int],
        batch_size: int,
        seed: int,
        strategy: str = "temperature",
        temperature: float = 2.0,
        batch_mode: Literal["per_task", "mixed"] = "mixed",
    ) -> None:
        if not sizes:
            raise ConfigError("the sampler needs at least one task")
        empty = [t for t, n in sizes.items() if n < 1]
        if empty:
            raise MtpeftError(f"tasks {empty} have no training examples; every sampled task needs at least one")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        if batch_mode not in BATCH_MODES:
            raise ConfigError(f"unknown batch_mode {batch_mode!r}; valid choices: {', '.join(BATCH_MODES)}")
        self.tasks = list(sizes)
        self.sizes = {t: int(n) for t, n in sizes.items()}
        self.batch_size = batch_size
        self.seed = seed
        self.strategy = strategy
        self.batch_mode = batch_mode
        self.probabilities: dict[str, float] = build_rule(strategy, temperature).probabilities(self.sizes)
        """Task probabilities (for logging); they sum to 1."""
        self._p = np.array([self.probabilities[t] for t in self.tasks], dtype=np.float64)
        self._rng = np.random.default_rng(seed)
        self._epoch = {t: 0 for t in self.tasks}
        self._cursor = {t: 0 for t in self.tasks}
        self._orders: dict[str, tuple[int, np.ndarray]] = {}  # task -> (epoch, order)
        self.steps = 0

    @classmethod
    def from_config(cls, sizes: Mapping[str, int], batch_size: int, seed: int, config: Any) -> TaskSampler:
        """Build from a :class:`mtpeft.config.SamplingConfig` (strategy, temperature, batch_mode)."""
        return cls(sizes, batch_size, seed, config.strategy, config.temperature, config.batch_mode)

    # ------------------------------------------------------------------ drawing
    def _order(self, task: str) -> np.ndarray:
        epoch = self._epoch[task]
        cached = self._orders.get(task)
        if cached is None or cached[0] != epoch:
            rng = np.random.default_rng([self.seed, _task_key(task), epoch])
            self._orders[task] = (epoch, rng.permutation(self.sizes[task]))
        return self._orders[task][1]

    def _take(self, task: str, count: int) -> list[int]:
        """The next ``count`` examples of ``task``, moving to the next epoch's order as needed."""
        taken: list[int] = []
        while len(taken) < count:
            order = self._order(task)
            start = self._cursor[task]
            chunk = order[start : start + count - len(taken)]
            taken.extend(int(i) for i in chunk)
            self._cursor[task] = start + len(chunk)
            if self._cursor[task] == len(order):
                self._epoch[task] += 1
                self._cursor[task] = 0
        return taken

    def next_batch(self) -> BatchIndices:
        """The next step's examples, ``{task: [indices]}``; tasks with no example are left out."""
        if self.batch_mode == "per_task":
            task = self.tasks[int(self._rng.choice(len(self.tasks), p=self._p))]
            counts = {task: self.batch_size}
        else:
            drawn = self._rng.choice(len(self.tasks), size=self.batch_size, p=self._p)
            per_task = np.bincount(drawn, minlength=len(self.tasks))
            counts = {t: int(c) for t, c in zip(self.tasks, per_task) if c > 0}
        self.steps += 1
        return {t: self._take(t, c) for t, c in counts.items()}

    def __iter__(self) -> Iterator[BatchIndices]:
        while True:
            yield self.next_batch()

    def epochs(self) -> dict[str, float]:
        """Epochs seen so far per task (fractional), for logging."""
        return {t: self._epoch[t] + self._cursor[t] / self.sizes[t] for t in self.tasks}

    # ------------------------------------------------------------------ resume
    def state_dict(self) -> dict[str, Any]:
        """JSON-able state: settings (checked on load), generator state, per-task epoch and cursor."""
        return {
            "sizes": dict(self.sizes),
            "batch_size": self.batch_size,
            "seed": self.seed,
            "strategy": self.strategy,
            "batch_mode": self.batch_mode,
            "probabilities": dict(self.probabilities),
            "steps": self.steps,
            "rng": self._rng.bit_generator.state,
            "epoch": dict(self._epoch),
            "cursor": dict(self._cursor),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue exactly where the sampler that wrote ``state`` stopped.

        Raises :class:`MtpeftError` when the state was written for other task sizes, batch size,
        seed or sampling settings: resuming would then silently draw a different sequence.
        """
        mine = self.state_dict()
        differing = [
            key
            for key in ("sizes", "batch_size", "seed", "strategy", "batch_mode")
            if state.get(key) != mine[key]
        ]
        if not differing and not np.allclose(
            [state["probabilities"][t] for t in self.tasks], self._p, rtol=0, atol=1e-12
        ):
            differing.append("probabilities (temperature)")
        if differing:
            details = "; ".join(f"{k}: saved {state.get(k)!r}, now {mine.get(k)!r}" for k in differing)
            raise MtpeftError(f"the sampler state does not match this run ({details})")
        self._rng.bit_generator.state = state["rng"]
        self._epoch = {t: int(state["epoch"][t]) for t in self.tasks}
        self._cursor = {t: int(state["cursor"][t]) for t in self.tasks}
        self._orders = {}
        self.steps = int(state["steps"])
