"""How sure a number is: spread over seeds, bootstrap intervals over documents, paired tests.

Corpus metrics (micro-F1, MAP, partial-credit F1) are not means of per-document scores, so the
bootstrap resamples *documents* and recomputes the metric from their summed sufficient
statistics (``per_document/<split>/<task>.jsonl`` of a run folder, see docs/run-folder.md).
The metric is a function ``summed stats -> float``; :func:`derive_metrics` implements the
naming convention that turns summed stats into metric values for every task.

Written by hand rather than with ``scipy.stats.bootstrap`` because the statistic is a function of
summed statistics of several aligned runs (seeds, or the two systems of a paired test) resampled
with the *same* documents, and because scipy has no paired significance test of this kind.
Resamples are drawn as per-document multiplicities, so the memory is ``chunk x documents``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mtpeft.errors import FormatError, Location

Metric = Callable[[Mapping[str, float]], float]
"""A corpus metric computed from statistics summed over documents."""


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (``ddof=1``) of per-seed values; std is NaN for one value."""
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        raise ValueError("mean_std needs at least one value")
    return float(data.mean()), float(data.std(ddof=1)) if data.size > 1 else math.nan


@dataclass(frozen=True)
class DocumentStats:
    """Additive per-document statistics of one run on one task: ``values`` is ``(documents, keys)``."""

    doc_ids: tuple[str, ...]
    keys: tuple[str, ...]
    values: np.ndarray

    def sums(self) -> dict[str, float]:
        """The statistics summed over all documents."""
        return dict(zip(self.keys, self.values.sum(axis=0).tolist()))

    def aligned_to(self, doc_ids: Sequence[str]) -> DocumentStats:
        """The same statistics with rows in the order of ``doc_ids`` (which must be the same set)."""
        index = {d: i for i, d in enumerate(self.doc_ids)}
        missing = [d for d in doc_ids if d not in index]
        extra = set(self.doc_ids) - set(doc_ids)
        if missing or extra:
            raise ValueError(
                f"runs cover different documents ({len(missing)} missing, e.g. {missing[:3]}; "
                f"{len(extra)} extra, e.g. {sorted(extra)[:3]}); expected the same documents"
            )
        return DocumentStats(tuple(doc_ids), self.keys, self.values[[index[d] for d in doc_ids]])


def read_document_stats(path: str | Path) -> DocumentStats:
    """Read ``per_document/<split>/<task>.jsonl`` (lines ``{"doc_id": str, "stats": {name: number}}``).

    Every line must carry the same stat names; a bad line raises FormatError naming file and line.
    """
    path = Path(path)
    doc_ids: list[str] = []
    rows: list[list[float]] = []
    keys: tuple[str, ...] | None = None
    expected = '{"doc_id": "...", "stats": {"name": number, ...}} with the same names on every line'
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        where = Location(str(path), line=number)
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise FormatError(where, f"invalid JSON: {err}", expected) from None
        stats = record.get("stats") if isinstance(record, dict) else None
        doc_id = record.get("doc_id") if isinstance(record, dict) else None
        if not isinstance(doc_id, str) or not isinstance(stats, dict):
            raise FormatError(where, "missing 'doc_id' string or 'stats' object", expected)
        if keys is None:
            keys = tuple(sorted(stats))
        if tuple(sorted(stats)) != keys:
            raise FormatError(Location(str(path), number, doc_id), f"stat names {sorted(stats)} differ from {list(keys)}", expected)
        if any(isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) for v in stats.values()):
            raise FormatError(Location(str(path), number, doc_id), "a statistic is not a finite number", expected)
        if doc_id in doc_ids:
            raise FormatError(Location(str(path), number, doc_id), "duplicate doc_id", "one line per document")
        doc_ids.append(doc_id)
        rows.append([float(stats[k]) for k in keys])
    if keys is None:
        raise FormatError(Location(str(path)), "no documents", expected)
    return DocumentStats(tuple(doc_ids), keys, np.asarray(rows, dtype=float).reshape(len(rows), len(keys)))


def _ratio(num: float, den: float) -> float:
    return num / den if den else 0.0


def derive_metrics(sums: Mapping[str, float]) -> dict[str, float]:
    """Metric values from summed statistics, by name (the convention of docs/run-folder.md).

    * ``P_tp``, ``P_fp``, ``P_fn`` give ``P_precision``, ``P_recall``, ``P_f1`` (micro; no prefix:
      ``tp``/``fp``/``fn`` give ``precision``/``recall``/``f1``);
    * ``X_num`` and ``X_den`` give ``X = num / den`` (MAP: summed AP over questions; partial-credit
      precision: summed overlap fractions over predicted spans);
    * ``P_precision`` and ``P_recall`` so derived give ``P_f1`` (harmonic mean) if not already there.

    Zero denominators give 0.0, as the official scorers do.
    """
    out: dict[str, float] = {}
    for key in sums:
        if key == "tp" or key.endswith("_tp"):
            stem = key[:-2]
            fp, fn = sums.get(f"{stem}fp"), sums.get(f"{stem}fn")
            if fp is not None and fn is not None:
                tp = sums[key]
                out[f"{stem}precision"] = _ratio(tp, tp + fp)
                out[f"{stem}recall"] = _ratio(tp, tp + fn)
                out[f"{stem}f1"] = _ratio(2 * tp, 2 * tp + fp + fn)
        elif key.endswith("_num") and f"{key[:-4]}_den" in sums:
            out[key[:-4]] = _ratio(sums[key], sums[f"{key[:-4]}_den"])
    for key in list(out):
        if key == "precision" or key.endswith("_precision"):
            stem = key[: -len("precision")]
            if f"{stem}recall" in out and f"{stem}f1" not in out:
                p, r = out[key], out[f"{stem}recall"]
                out[f"{stem}f1"] = _ratio(2 * p * r, p + r)
    return out


def stats_metric(name: str) -> Metric:
    """The metric ``name`` as a function of summed stats (through :func:`derive_metrics`)."""

    def metric(sums: Mapping[str, float]) -> float:
        derived = derive_metrics(sums)
        if name not in derived:
            raise KeyError(f"metric {name!r} cannot be derived from stats {sorted(sums)}; derivable: {sorted(derived)}")
        return derived[name]

    metric.__name__ = name
    return metric


def _as_runs(stats: DocumentStats | Sequence[DocumentStats]) -> list[DocumentStats]:
    runs = [stats] if isinstance(stats, DocumentStats) else list(stats)
    if not runs:
        raise ValueError("no runs given")
    return [runs[0]] + [r.aligned_to(runs[0].doc_ids) for r in runs[1:]]


def _multiplicities(rng: np.random.Generator, documents: int, resamples: int) -> Iterator[np.ndarray]:
    """Chunks of ``(chunk, documents)`` counts: how often each document is drawn in each resample."""
    chunk = max(1, min(resamples, 4_000_000 // max(documents, 1)))
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        draws = rng.integers(0, documents, size=(size, documents))
        flat = (draws + documents * np.arange(size)[:, None]).ravel()
        yield np.bincount(flat, minlength=size * documents).reshape(size, documents)


def _mean_metric(runs: list[DocumentStats], weights: np.ndarray, metric: Metric) -> np.ndarray:
    """Metric (mean over runs) for each row of ``weights`` (``(R, documents)``); returns ``(R,)``."""
    total = np.zeros(weights.shape[0])
    for run in runs:
        summed = weights @ run.values  # (R, keys)
        total += [metric(dict(zip(run.keys, row))) for row in summed.tolist()]
    return total / len(runs)


def _point(runs: list[DocumentStats], metric: Metric) -> float:
    return float(_mean_metric(runs, np.ones((1, len(runs[0].doc_ids))), metric)[0])


def bootstrap_distribution(
    stats: DocumentStats | Sequence[DocumentStats], metric: Metric, *, n_resamples: int = 1000, seed: int = 0
) -> np.ndarray:
    """``(n_resamples,)`` metric values over documents resampled with replacement.

    Several runs (seeds) must cover the same documents; each resample uses the same documents
    for all of them and yields the mean of their metrics.
    """
    runs = _as_runs(stats)
    rng = np.random.default_rng(seed)
    parts = [_mean_metric(runs, w, metric) for w in _multiplicities(rng, len(runs[0].doc_ids), n_resamples)]
    return np.concatenate(parts)


@dataclass(frozen=True)
class ConfidenceInterval:
    estimate: float  # the metric on all documents (mean over runs)
    low: float
    high: float
    confidence: float
    n_resamples: int


def bootstrap_ci(
    stats: DocumentStats | Sequence[DocumentStats],
    metric: Metric,
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> ConfidenceInterval:
    """Percentile bootstrap interval of ``metric`` (the ``(1-c)/2`` and ``(1+c)/2`` quantiles)."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    runs = _as_runs(stats)
    values = bootstrap_distribution(runs, metric, n_resamples=n_resamples, seed=seed)
    low, high = np.quantile(values, [(1 - confidence) / 2, (1 + confidence) / 2])
    return ConfidenceInterval(_point(runs, metric), float(low), float(high), confidence, n_resamples)


@dataclass(frozen=True)
class PairedTest:
    delta: float  # metric(A) - metric(B) on all documents
    p_value: float  # of "A is better than B"
    n_resamples: int


def paired_bootstrap_test(
    a: DocumentStats | Sequence[DocumentStats],
    b: DocumentStats | Sequence[DocumentStats],
    metric: Metric,
    *,
    n_resamples: int = 1000,
    seed: int = 0,
) -> PairedTest:
    """Paired bootstrap test of "A better than B" (Berg-Kirkpatrick et al., 2012, section 2).

    With ``d`` the observed difference, resample documents (the same ones for A and B) and count
    resamples whose difference ``d_i >= 2 d``; ``p = count / n_resamples``. (The paper counts
    ``d_i > 2 d``; ``>=`` makes two identical systems get p = 1 instead of 0.) ``a`` and ``b``
    may each be several seeds, compared through their mean metric.
    """
    runs_a = _as_runs(a)
    runs_b = [r.aligned_to(runs_a[0].doc_ids) for r in _as_runs(b)]
    delta = _point(runs_a, metric) - _point(runs_b, metric)
    rng = np.random.default_rng(seed)
    exceed = 0
    for weights in _multiplicities(rng, len(runs_a[0].doc_ids), n_resamples):
        diffs = _mean_metric(runs_a, weights, metric) - _mean_metric(runs_b, weights, metric)
        exceed += int(np.count_nonzero(diffs >= 2 * delta - 1e-12))
    return PairedTest(delta, exceed / n_resamples, n_resamples)
