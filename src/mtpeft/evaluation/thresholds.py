"""Decision thresholds of multi-label span typing, chosen on dev and recorded per checkpoint step.

2021 T6 level 2 gives each span extent every technique whose sigmoid probability reaches a
threshold (:class:`~mtpeft.tasks.typing_task.SpanTypingTask`). With ``threshold: null`` (the
task's default) the threshold is chosen on the run's dev split: whenever level 2 is evaluated on
its own dev data, the threshold of :data:`THRESHOLD_GRID` with the best official F1 of the
decoded gold spans (the 2021 partial-credit formula, ties to the threshold nearest 0.5) is set
on the task and used for that evaluation. The dev number is therefore tuned on dev, as any
dev-selected setting; test and raw-meme predictions use the dev choice.

The choice belongs to the weights it was made for, so it is recorded in the run folder's
``decoding.json`` (``{task: {step: {"threshold", "oracle_span_f1", "dev"}}}``) under the step of
the evaluated model; loading the checkpoint of that step (``mtpeft evaluate --split test``,
``mtpeft predict``) reads it back, or chooses it on the run's dev split when no record exists
(a checkpoint saved between evaluations). Only without a dev split does decoding fall back to
:data:`~mtpeft.tasks.typing_task.DEFAULT_THRESHOLD`, and the threshold used is always reported
(``threshold`` in level 2's metrics, ``level2_threshold`` in the ``semeval2021t6`` row).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

from mtpeft.evaluation.metrics.persuasion import persuasion_span_scores
from mtpeft.tasks.document import Document
from mtpeft.tasks.features import Features, WindowPrediction
from mtpeft.tasks.typing_task import DEFAULT_THRESHOLD, SpanTypingTask

DECODING_FILE = "decoding.json"
THRESHOLD_GRID: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(1, 20))
"""Candidate thresholds 0.05, 0.10, ..., 0.95 (with "at least the top label", 0.95 is nearly argmax)."""

logger = logging.getLogger(__name__)


def choose_threshold(
    task: SpanTypingTask,
    gold: Sequence[Document],
    predictions: Sequence[WindowPrediction],
    features: Sequence[Features],
    grid: Sequence[float] = THRESHOLD_GRID,
) -> tuple[float, float]:
    """``(threshold, F1)``: the grid threshold whose decoded extents of ``gold`` score best.

    F1 is the official 2021 partial-credit F1 against ``gold`` (whose mentions were the input of
    ``predictions``); ties go to the threshold nearest :data:`DEFAULT_THRESHOLD`, then the lower.
    """
    if not grid:
        raise ValueError("an empty threshold grid")
    probabilities = task.extent_probabilities(gold, predictions, features)
    scored = []
    for threshold in grid:
        decoded = task.decode_probabilities(gold, probabilities, threshold)
        scored.append((persuasion_span_scores(gold, decoded)["f1"], -abs(threshold - DEFAULT_THRESHOLD), -threshold))
    f1, _, negative = max(scored)
    return -negative, f1


def _read(run_dir: Path) -> dict:
    path = run_dir / DECODING_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def record_threshold(run_dir: str | Path, step: int, task_id: str, threshold: float, f1: float, dev: str) -> None:
    """Record the threshold chosen on ``dev`` for the model of ``step`` in ``decoding.json``."""
    run_dir = Path(run_dir)
    records = _read(run_dir)
    records.setdefault(task_id, {})[str(step)] = {"threshold": threshold, "oracle_span_f1": f1, "dev": str(dev)}
    tmp = run_dir / f".{DECODING_FILE}.tmp"
    tmp.write_text(json.dumps(records, indent=2, sort_keys=True))
    tmp.replace(run_dir / DECODING_FILE)


def recorded_threshold(run_dir: str | Path, step: int, task_id: str) -> float | None:
    """The threshold recorded for ``task_id`` at ``step``, or ``None``."""
    entry = _read(Path(run_dir)).get(task_id, {}).get(str(step))
    return None if entry is None else float(entry["threshold"])


def warn_default(task: SpanTypingTask) -> None:
    """Say that a to-be-chosen threshold stays at the default (there is no dev split to choose it on)."""
    logger.warning("%s: no dev split to choose the decision threshold on; using %.2f", task.id, DEFAULT_THRESHOLD)
