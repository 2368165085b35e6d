"""The study's results table: mean +- std over seeds per task and configuration, with costs.

Rows come from run folders (:mod:`mtpeft.evaluation.report.run_folder`): ``final_metrics.json``
for the metrics, ``params.json`` for trainable parameters, ``train_log.jsonl`` for tokens/s and
peak memory, ``per_document/`` for bootstrap confidence intervals of the headline metric (when
present; the interval is that of the seed mean, resampling the same documents for every seed).

The headline metric of each task is :func:`mtpeft.evaluation.evaluate.headline_metric`, the
one place that names it (also used for model selection).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mtpeft.errors import FormatError, Location
from mtpeft.evaluation.report.run_folder import RunGroup, finite
from mtpeft.evaluation.uncertainty import (
    ConfidenceInterval,
    DocumentStats,
    PairedTest,
    bootstrap_ci,
    derive_metrics,
    mean_std,
    paired_bootstrap_test,
    read_document_stats,
    stats_metric,
)


def headline_metric_name(task: str, metrics: dict[str, float]) -> str:
    """The task's headline metric (imported lazily: the module that defines it loads the model code)."""
    from mtpeft.evaluation.score import headline_metric

    return headline_metric(task, metrics)


@dataclass
class ResultRow:
    """One task under one configuration, over its seeds."""

    task: str
    label: str  # the configuration (see run_folder.group_runs)
    strategy: str
    trained_tasks: tuple[str, ...]
    seeds: list[int]
    split: str
    headline: str
    mean: float
    std: float  # sample std over seeds; NaN for one seed
    ci: ConfidenceInterval | None = None
    metrics: dict[str, tuple[float, float]] = field(default_factory=dict)  # every metric: (mean, std)
    before_training: dict[str, float] = field(default_factory=dict)  # seed mean, when logged
    trainable_params: int | None = None
    tokens_per_s: float | None = None  # mean over seeds of each run's median
    peak_memory_mb: float | None = None  # max over seeds


@dataclass(frozen=True)
class BootstrapOptions:
    n_resamples: int = 1000
    confidence: float = 0.95
    seed: int = 0


def _mean_of(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if finite(v)]
    return sum(known) / len(known) if known else None


def task_stats(group: RunGroup, task: str) -> list[DocumentStats] | None:
    """Per-document stats of ``task`` for every seed of ``group``; None unless all seeds have them."""
    paths = [run.per_document_path(task) for run in group.runs if task in run.metrics]
    if not paths or not all(p.is_file() for p in paths):
        return None
    return [read_document_stats(p) for p in paths]


def _headline_ci(group: RunGroup, task: str, headline: str, mean: float, options: BootstrapOptions,
                 notes: list[str]) -> ConfidenceInterval | None:
    stats = task_stats(group, task)
    if stats is None:
        return None
    if headline not in derive_metrics(stats[0].sums()):
        notes.append(f"{group.label} / {task}: per-document stats {list(stats[0].keys)} do not give {headline!r}; no interval")
        return None
    try:
        ci = bootstrap_ci(stats, stats_metric(headline), n_resamples=options.n_resamples,
                          confidence=options.confidence, seed=options.seed)
    except ValueError as err:  # seeds evaluated on different documents
        notes.append(f"{group.label} / {task}: {err}; no interval")
        return None
    if abs(ci.estimate - mean) > 1e-6:
        notes.append(f"{group.label} / {task}: per-document stats give {headline}={ci.estimate:.6f} "
                     f"but final_metrics.json gives {mean:.6f}")
    return ci


def results_table(groups: Sequence[RunGroup], bootstrap: BootstrapOptions | None = BootstrapOptions()
                  ) -> tuple[list[ResultRow], list[str]]:
    """One row per (task, configuration); also notes on anything inconsistent or left out.

    ``bootstrap=None`` skips the confidence intervals.
    """
    rows: list[ResultRow] = []
    notes: list[str] = []
    for group in groups:
        splits = sorted({r.split for r in group.runs})
        if len(splits) > 1:
            notes.append(f"{group.label}: seeds were evaluated on different splits {splits}")
        if len(set(group.seeds)) < len(group.seeds):
            notes.append(f"{group.label}: the same seed appears in several folders {group.seeds}; each counts")
        tasks = list(dict.fromkeys(t for r in group.runs for t in r.metrics))
        for task in tasks:
            runs = [r for r in group.runs if task in r.metrics]
            if len(runs) < len(group.runs):
                notes.append(f"{group.label} / {task}: only {len(runs)} of {len(group.runs)} seeds have metrics")
            names = [n for n in runs[0].metrics[task] if all(n in r.metrics[task] for r in runs)]
            summary = {n: mean_std([r.metrics[task][n] for r in runs]) for n in names}
            headline = headline_metric_name(task, runs[0].metrics[task])
            if headline not in summary:
                raise FormatError(Location(str(runs[0].path / "final_metrics.json"), element=f"tasks.{task}"),
                                  f"no headline metric {headline!r} in every seed", "the task's official metrics")
            mean, std = summary[headline]
            before = [r.before_training.get(task, {}) for r in runs]
            before_names = [n for n in before[0] if all(n in b for b in before)] if all(before) else []
            rows.append(ResultRow(
                task=task, label=group.label, strategy=group.strategy, trained_tasks=group.tasks,
                seeds=[r.seed for r in runs], split=runs[0].split, headline=headline, mean=mean, std=std,
                ci=_headline_ci(group, task, headline, mean, bootstrap, notes) if bootstrap else None,
                metrics=summary,
                before_training={n: sum(b[n] for b in before) / len(before) for n in before_names},
                trainable_params=runs[0].trainable_params,
                tokens_per_s=_mean_of([r.tokens_per_s for r in runs]),
                peak_memory_mb=max((r.peak_memory_mb for r in runs if finite(r.peak_memory_mb)), default=None),
            ))
    rows.sort(key=lambda r: (r.task, r.label))
    return rows, notes


@dataclass(frozen=True)
class Comparison:
    """A paired bootstrap test of the best configuration of a task against another one."""

    task: str
    metric: str
    best: str
    other: str
    test: PairedTest


def paired_comparisons(groups: Sequence[RunGroup], rows: Sequence[ResultRow], bootstrap: BootstrapOptions
                       ) -> tuple[list[Comparison], list[str]]:
    """Per task, the best configuration by mean headline metric against each other one with
    per-document stats (same documents; seeds compared through their mean); also notes."""
    by_label = {(task, g.label): g for g in groups for r in g.runs for task in r.metrics}
    comparisons: list[Comparison] = []
    notes: list[str] = []
    for task in dict.fromkeys(r.task for r in rows):
        candidates = sorted((r for r in rows if r.task == task and r.ci), key=lambda r: -r.mean)
        if len(candidates) < 2:
            continue
        best = candidates[0]
        best_stats = task_stats(by_label[task, best.label], task)
        for other in candidates[1:]:
            try:
                test = paired_bootstrap_test(best_stats, task_stats(by_label[task, other.label], task),
                                             stats_metric(best.headline), n_resamples=bootstrap.n_resamples,
                                             seed=bootstrap.seed)
            except ValueError as err:
                notes.append(f"{task}: {best.label} vs {other.label}: {err}; no test")
                continue
            comparisons.append(Comparison(task, best.headline, best.label, other.label, test))
    return comparisons, notes


def fmt(value: float | None, digits: int = 4) -> str:
    """A number for a table; ``n/a`` for missing or NaN."""
    return f"{value:.{digits}f}" if finite(value) else "n/a"


def mean_pm_std(mean: float, std: float) -> str:
    return f"{fmt(mean)} ± {fmt(std)}" if finite(std) else f"{fmt(mean)} (1 seed)"


def ci_text(ci: ConfidenceInterval | None) -> str:
    return f"[{fmt(ci.low)}, {fmt(ci.high)}]" if ci else "n/a"


def _count(value: float | int | None) -> str:
    return f"{int(value):,}" if finite(value) else "n/a"


TABLE_HEADERS = ["task", "configuration", "seeds", "metric", "mean ± std", "bootstrap CI",
                 "trainable params", "tokens/s", "peak memory (MB)"]


def table_cells(row: ResultRow) -> list[str]:
    """The cells of one results row, in :data:`TABLE_HEADERS` order (shared by Markdown and HTML)."""
    return [row.task, row.label, str(len(row.seeds)), row.headline, mean_pm_std(row.mean, row.std), ci_text(row.ci),
            _count(row.trainable_params), fmt(row.tokens_per_s, 1), fmt(row.peak_memory_mb, 1)]


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured Markdown table (``|`` in cells escaped)."""
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(headers), line(["---"] * len(headers)), *(line(r) for r in rows)])


def results_markdown(rows: Sequence[ResultRow]) -> str:
    confidence = next((r.ci.confidence for r in rows if r.ci), None)
    table = markdown_table(TABLE_HEADERS, [table_cells(r) for r in rows])
    note = f"\n\nIntervals: {confidence:.0%} percentile bootstrap over documents." if confidence else ""
    return table + note + "\n"


def _json_ready(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    return value


def write_results(rows: Sequence[ResultRow], out_dir: str | Path, stem: str = "results") -> dict[str, Path]:
    """Write ``<stem>.csv``, ``<stem>.md`` and ``<stem>.json`` into ``out_dir``; return their paths.

    CSV and JSON hold numbers (NaN/unknown as empty / null); the JSON adds every metric's mean and std.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {kind: out / f"{stem}.{kind}" for kind in ("csv", "md", "json")}
    columns = ["task", "configuration", "strategy", "trained_tasks", "seeds", "split", "metric", "mean", "std",
               "ci_low", "ci_high", "ci_confidence", "trainable_params", "tokens_per_s", "peak_memory_mb"]
    with paths["csv"].open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for r in rows:
            values = [r.task, r.label, r.strategy, "+".join(r.trained_tasks), " ".join(map(str, r.seeds)), r.split,
                      r.headline, r.mean, r.std, r.ci.low if r.ci else None, r.ci.high if r.ci else None,
                      r.ci.confidence if r.ci else None, r.trainable_params, r.tokens_per_s, r.peak_memory_mb]
            writer.writerow(["" if v is None or (isinstance(v, float) and not math.isfinite(v)) else v for v in values])
    paths["md"].write_text(results_markdown(rows))
    records = []
    for r in rows:
        record = asdict(r)
        record["metrics"] = {n: {"mean": m, "std": s} for n, (m, s) in r.metrics.items()}
        records.append(record)
    paths["json"].write_text(json.dumps(_json_ready(records), indent=2, sort_keys=True) + "\n")
    return paths
