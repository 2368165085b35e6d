"""Expected calibration error and reliability diagrams from (confidence, correct) pairs.

Which units are scored (tokens, predicted spans, pairs, comments) is decided upstream by
:mod:`mtpeft.evaluation.calibration_pairs`; this module only takes the two arrays.

Bins are ``B`` equal-width intervals of ``[0, 1]``: bin ``b`` (0-based) holds confidences in
``[b/B, (b+1)/B)``, except the last, ``[(B-1)/B, 1]``, which is closed so that a confidence of
exactly 1.0 lands in it. The bin index is ``min(floor(c * B), B - 1)``.

``ECE = sum_b (n_b / N) * |acc_b - conf_b|`` (Guo et al., 2017), where ``acc_b`` is the fraction
correct and ``conf_b`` the mean confidence of bin ``b``; empty bins contribute nothing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mtpeft.errors import FormatError, Location
from mtpeft.evaluation.report.figures import pyplot, save_png


@dataclass(frozen=True)
class ReliabilityBins:
    """Per-bin statistics; arrays of shape ``(bins,)``. Empty bins have count 0 and NaN means."""

    edges: np.ndarray  # (bins + 1,)
    counts: np.ndarray
    accuracy: np.ndarray
    confidence: np.ndarray

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    def ece(self) -> float:
        """The expected calibration error of these bins (NaN when there are no predictions)."""
        if self.total == 0:
            return math.nan
        filled = self.counts > 0
        gaps = np.abs(self.accuracy[filled] - self.confidence[filled])
        return float(np.sum(self.counts[filled] / self.total * gaps))


def _as_arrays(confidences: Sequence[float], correct: Sequence[int | bool]) -> tuple[np.ndarray, np.ndarray]:
    conf = np.asarray(confidences, dtype=float).reshape(-1)
    ok = np.asarray(correct, dtype=float).reshape(-1)
    if conf.shape != ok.shape:
        raise ValueError(f"{conf.size} confidences but {ok.size} correctness flags; expected one flag per confidence")
    bad = np.flatnonzero(~np.isfinite(conf) | (conf < 0.0) | (conf > 1.0))
    if bad.size:
        raise ValueError(f"confidence {conf[bad[0]]!r} at position {bad[0]} is outside [0, 1]; expected probabilities")
    bad = np.flatnonzero((ok != 0.0) & (ok != 1.0))
    if bad.size:
        raise ValueError(f"correctness flag {ok[bad[0]]!r} at position {bad[0]}; expected 0 or 1")
    return conf, ok


def reliability_bins(confidences: Sequence[float], correct: Sequence[int | bool], bins: int = 10) -> ReliabilityBins:
    """Bin ``N`` (confidence, correct) pairs into ``bins`` equal-width bins (see the module docstring)."""
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    conf, ok = _as_arrays(confidences, correct)
    index = np.minimum(np.floor(conf * bins).astype(int), bins - 1)
    counts = np.bincount(index, minlength=bins).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.bincount(index, weights=ok, minlength=bins) / counts
        confidence = np.bincount(index, weights=conf, minlength=bins) / counts
    return ReliabilityBins(np.linspace(0.0, 1.0, bins + 1), counts.astype(int), accuracy, confidence)


def expected_calibration_error(confidences: Sequence[float], correct: Sequence[int | bool], bins: int = 10) -> float:
    """ECE of the pairs with ``bins`` equal-width bins; NaN when there are no pairs."""
    return reliability_bins(confidences, correct, bins).ece()


def reliability_diagram(
    confidences: Sequence[float],
    correct: Sequence[int | bool],
    bins: int,
    path: str | Path,
    title: str | None = None,
) -> Path:
    """Draw accuracy per confidence bin against the diagonal, with a count histogram below; save a PNG.

    The gap between each bar and the diagonal is shaded; the title carries the ECE and ``N``.
    """
    plt = pyplot()
    stats = reliability_bins(confidences, correct, bins)
    width = 1.0 / bins
    left = stats.edges[:-1]
    filled = stats.counts > 0
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(4.6, 5.2), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    top.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="perfect calibration")
    top.bar(left[filled], stats.accuracy[filled], width=width, align="edge", color="#4878a8", edgecolor="white", label="accuracy")
    gap_bottom = np.minimum(stats.accuracy[filled], stats.confidence[filled])
    gap_height = np.abs(stats.accuracy[filled] - stats.confidence[filled])
    top.bar(left[filled], gap_height, bottom=gap_bottom, width=width, align="edge", color="#d62728", alpha=0.3, label="gap")
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.set_ylabel("accuracy")
    top.legend(loc="upper left", fontsize=8)
    ece = stats.ece()
    heading = f"ECE {ece:.4f}  (N={stats.total}, {bins} bins)" if stats.total else "no predictions"
    top.set_title(f"{title}\n{heading}" if title else heading, fontsize=9)
    bottom.bar(left, stats.counts, width=width, align="edge", color="#888888", edgecolor="white")
    bottom.set_xlabel("confidence")
    bottom.set_ylabel("count")
    fig.tight_layout()
    return save_png(fig, path)


@dataclass(frozen=True)
class CalibrationRecord:
    """One ``calibration/<split>/<task>.json`` of a run folder."""

    task: str
    confidences: np.ndarray
    correct: np.ndarray
    ece: float | None  # as written by the run (with ``bins`` bins)
    bins: int | None
    path: Path


def read_calibration(path: str | Path) -> CalibrationRecord:
    """Read ``calibration/<split>/<task>.json``; bad content raises FormatError naming the file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise FormatError(Location(str(path)), f"cannot read JSON: {err}", '{"confidences": [...], "correct": [...]}') from None
    if not isinstance(data, dict) or not isinstance(data.get("confidences"), list) or not isinstance(data.get("correct"), list):
        raise FormatError(Location(str(path)), "missing 'confidences' or 'correct' lists", '{"confidences": [...], "correct": [0/1 ...]}')
    try:
        conf, ok = _as_arrays(data["confidences"], data["correct"])
    except (ValueError, TypeError) as err:
        raise FormatError(Location(str(path)), str(err), "probabilities in [0, 1] and 0/1 flags of equal length") from None
    bins = data.get("bins")
    ece = data.get("ece")
    return CalibrationRecord(
        task=path.stem,
        confidences=conf,
        correct=ok.astype(int),
        ece=float(ece) if isinstance(ece, (int, float)) else None,
        bins=int(bins) if isinstance(bins, int) else None,
        path=path,
    )


def run_calibration(run_dir: str | Path, split: str) -> dict[str, CalibrationRecord]:
    """All tasks' calibration records of a run folder for ``split`` (empty when there are none)."""
    folder = Path(run_dir) / "calibration" / split
    if not folder.is_dir():
        return {}
    return {p.stem: read_calibration(p) for p in sorted(folder.glob("*.json"))}
