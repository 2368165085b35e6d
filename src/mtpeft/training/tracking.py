"""Scalar logging to TensorBoard (default) and, optionally, MLflow.

The JSON-lines logs of the run folder are the record of a run; these backends are views for
people watching a training. MLflow is optional: when it is asked for but not installed the
tracker runs without it and says so once (:attr:`Tracker.notes`), rather than failing a run.
"""

from __future__ import annotations

import importlib.util
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def flatten_scalars(values: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """``{"loss": 1, "losses": {"a": 2}}`` -> ``{"loss": 1.0, "losses/a": 2.0}``; non-numbers and None are left out."""
    out: dict[str, float] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten_scalars(value, f"{name}/"))
        elif isinstance(value, bool) or value is None:
            continue
        elif isinstance(value, (int, float)) or hasattr(value, "item"):
            out[name] = float(value.item() if hasattr(value, "item") else value)
    return out


class Tracker:
    """Writes scalars to the enabled backends.

    Args:
        tensorboard_dir: folder for TensorBoard event files, or ``None`` to disable TensorBoard.
        mlflow: also log to MLflow (the active tracking URI; a run named ``run_name``).
        run_name: MLflow run name.
        params: flat run parameters logged once to MLflow (e.g. the resolved config).
    """

    def __init__(
        self,
        tensorboard_dir: str | Path | None,
        *,
        mlflow: bool = False,
        run_name: str | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> None:
        self.notes: list[str] = []
        self._tb = None
        self._mlflow = None
        if tensorboard_dir is not None:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(log_dir=str(tensorboard_dir))
        if mlflow:
            if importlib.util.find_spec("mlflow") is None:
                note = "MLflow logging was enabled but mlflow is not installed (pip install mlflow); skipped"
                self.notes.append(note)
                logger.warning(note)
            else:
                import mlflow as _mlflow

                self._mlflow = _mlflow
                _mlflow.start_run(run_name=run_name)
                if params:
                    _mlflow.log_params({k: str(v)[:500] for k, v in params.items()})

    @property
    def backends(self) -> list[str]:
        """Names of the active backends."""
        return [name for name, b in (("tensorboard", self._tb), ("mlflow", self._mlflow)) if b is not None]

    def log(self, step: int, values: Mapping[str, Any], prefix: str = "") -> None:
        """Log nested numeric ``values`` at ``step`` (keys joined with ``/``); NaN/inf are logged as is."""
        scalars = flatten_scalars(values, prefix)
        if self._tb is not None:
            for name, value in scalars.items():
                self._tb.add_scalar(name, value, global_step=step)
        if self._mlflow is not None:
            finite = {k.replace("/", "."): v for k, v in scalars.items() if math.isfinite(v)}
            self._mlflow.log_metrics(finite, step=step)

    def flush(self) -> None:
        if self._tb is not None:
            self._tb.flush()

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None
        if self._mlflow is not None:
            self._mlflow.end_run()
            self._mlflow = None

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
