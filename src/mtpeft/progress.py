"""Progress of training and prediction: one tqdm line on a terminal, plain log lines otherwise.

A bar is shown where stderr is a terminal and the ``mtpeft`` logger prints INFO (the command line
sets that up); elsewhere (a log file, CI, a notebook's captured stderr, library use) the trainer
keeps its periodic ``step N/M ...`` lines. ``TQDM_DISABLE=1`` turns bars off everywhere (tqdm's own
setting). While a bar is shown, mtpeft's log lines are written above it, not through it.

The rate shown is REAL tokens per second (padding excluded), the figure that packing changes.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from tqdm.auto import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

LOGGER = "mtpeft"


def bars_enabled() -> bool:
    """Whether progress bars replace periodic lines: stderr is a terminal and mtpeft logs INFO."""
    stream = sys.stderr
    return bool(getattr(stream, "isatty", lambda: False)()) and logging.getLogger(LOGGER).isEnabledFor(logging.INFO)


class TrainingProgress:
    """The training bar: steps done of ``total``, ETA, the last loss and the real tokens/s.

    Without a terminal (``enabled`` false) it shows nothing and :attr:`shown` is false, so the
    caller logs its periodic lines instead.
    """

    def __init__(self, total: int, initial: int = 0, enabled: bool | None = None) -> None:
        self.shown = bars_enabled() if enabled is None else enabled
        self._bar = (
            tqdm(total=total, initial=initial, desc="training", unit="step", dynamic_ncols=True, file=sys.stderr)
            if self.shown else None
        )
        self._tokens = 0
        self._seconds = 0.0

    def step(self, record: dict | None) -> None:
        """One optimiser step done; ``record`` is the trainer's step record (``None``: skipped)."""
        if record is not None and record.get("tokens_per_s"):
            self._tokens += record["tokens"]
            self._seconds += record["tokens"] / record["tokens_per_s"]
        if self._bar is None:
            return
        if record is not None:
            rate = self._tokens / self._seconds if self._seconds else 0.0
            self._bar.set_postfix_str(f"loss {record['loss']:.4f}, {rate:,.0f} real tokens/s", refresh=False)
        self._bar.update(1)

    @contextmanager
    def shown_above(self) -> Iterator[None]:
        """Inside: mtpeft's log lines are printed above the bar (a no-op without a bar)."""
        if self._bar is None:
            yield
            return
        own = logging.getLogger(LOGGER)  # the command line's handler; else wherever mtpeft's lines propagate
        with logging_redirect_tqdm(loggers=[own if own.handlers else logging.getLogger()]):
            yield

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


class PredictionProgress:
    """A transient bar over the examples of one prediction call (``desc``: what is predicted)."""

    def __init__(self, total: int, desc: str, enabled: bool | None = None) -> None:
        shown = bars_enabled() if enabled is None else enabled
        self._bar = tqdm(total=total, desc=desc, unit="ex", leave=False, dynamic_ncols=True, file=sys.stderr) if shown else None
        self._tokens = 0

    def update(self, examples: int, tokens: int) -> None:
        if self._bar is None:
            return
        self._tokens += tokens
        elapsed = self._bar.format_dict.get("elapsed") or 0.0
        if elapsed:
            self._bar.set_postfix_str(f"{self._tokens / elapsed:,.0f} real tokens/s", refresh=False)
        self._bar.update(examples)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
