"""Skip steps with NaN/inf losses (or gradient norms), count them, stop after too many in a row.

One bad batch (an overflow under fp16, a degenerate window) should not end a long run, but a
run whose every step is NaN must stop with a clear error rather than burn its budget. The
trainer asks :meth:`NonFiniteGuard.check` before the backward (and may ask
:meth:`NonFiniteGuard.check_value` with the gradient norm before the optimizer step); on
``False`` it skips the step (zero grads, no optimizer or scheduler step).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from torch import Tensor

from mtpeft.errors import MtpeftError


class NonFiniteLossError(MtpeftError):
    """Too many consecutive steps had a NaN/inf loss."""


class NonFiniteGuard:
    """Counts non-finite steps; raises :class:`NonFiniteLossError` after ``max_in_row`` in a row.

    Attributes:
        skipped: steps skipped in total (logged as ``skipped_nonfinite``).
        in_row: consecutive skipped steps up to now.
        last_bad: what was non-finite at the last skipped step (``{name: value}``).
    """

    def __init__(self, max_in_row: int) -> None:
        if max_in_row < 1:
            raise ValueError(f"max_in_row must be >= 1, got {max_in_row}")
        self.max_in_row = max_in_row
        self.skipped = 0
        self.in_row = 0
        self.last_bad: dict[str, float] = {}

    def check(self, losses: Mapping[str, Tensor | float], step: int) -> bool:
        """``True`` when every loss is finite (the step goes on, the run of bad steps resets);
        ``False`` when one is not (the step must be skipped; it is counted)."""
        values = {t: float(v.detach().float().item() if isinstance(v, Tensor) else v) for t, v in losses.items()}
        return self._observe({t: v for t, v in values.items() if not math.isfinite(v)}, step)

    def check_value(self, name: str, value: Tensor | float, step: int) -> bool:
        """Like :meth:`check` for one value, e.g. ``("grad_norm", norm)`` after clipping's norm computation."""
        number = float(value.detach().float().item() if isinstance(value, Tensor) else value)
        return self._observe({} if math.isfinite(number) else {name: number}, step)

    def _observe(self, bad: dict[str, float], step: int) -> bool:
        if not bad:
            self.in_row = 0
            return True
        self.skipped += 1
        self.in_row += 1
        self.last_bad = bad
        if self.in_row >= self.max_in_row:
            raise NonFiniteLossError(
                f"step {step}: non-finite {', '.join(f'{k}={v}' for k, v in bad.items())}; "
                f"{self.in_row} steps in a row were non-finite (max_nonfinite_in_row={self.max_in_row}), "
                f"{self.skipped} skipped in total; lower the learning rate, check the data, or use float32"
            )
        return False

    def state_dict(self) -> dict[str, Any]:
        """JSON-able counters, for checkpoints."""
        return {"skipped": self.skipped, "in_row": self.in_row}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.skipped = int(state["skipped"])
        self.in_row = int(state["in_row"])
