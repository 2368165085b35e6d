"""The end of a sweep: its results table (mean +- std per task and configuration) and its report.

Rows are :func:`mtpeft.evaluation.results.results_table` over the sweep's finished runs, grouped
by configuration and labelled with the sweep's own names (``s3a``, ``A2`` ...). Peak memory is the
trainer's logged ``peak_memory_mb`` when there is one, else the largest peak RSS of the run's
training processes recorded by the sweep (``sweep_run.json``). The report is ``mtpeft report``
on the sweep folder.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mtpeft.evaluation.report.document import Section
from mtpeft.evaluation.report.run_folder import RunGroup, find_runs, group_runs
from mtpeft.evaluation.results import BootstrapOptions, ResultRow, results_markdown, results_table, write_results
from mtpeft.sweep.execute import RECORD_FILE
from mtpeft.sweep.spec import SweepPlan
from mtpeft.tasks.document import Skipped
from mtpeft.training.run_folder import CONFIG_FILE


@dataclass
class SweepResults:
    rows: list[ResultRow]
    notes: list[str]
    skipped: list[Skipped]
    files: dict[str, Path]
    report: Path | None
    groups: list[RunGroup] = field(default_factory=list)  # the seeds of each configuration, labelled


def recorded_peak_rss_mb(run_dir: Path) -> float | None:
    """The largest peak RSS (MB) over the attempts recorded in ``<run>/sweep_run.json``."""
    path = run_dir / RECORD_FILE
    if not path.is_file():
        return None
    values = [a["peak_rss_mb"] for a in json.loads(path.read_text()).get("attempts", [])
              if isinstance(a.get("peak_rss_mb"), (int, float))]
    return max(values) if values else None


def _label_groups(plan: SweepPlan, groups: list[RunGroup]) -> None:
    """Use the sweep's configuration names as the groups' labels (runs of one label share a config)."""
    label_of = {run.path.resolve(): run.label for run in plan.runs}
    for group in groups:
        labels = list(dict.fromkeys(label_of.get(r.path.resolve(), group.label) for r in group.runs))
        group.label = " = ".join(labels)


def _fill_peak_memory(rows: list[ResultRow], groups: list[RunGroup]) -> None:
    by_label = {g.label: g for g in groups}
    for row in rows:
        if row.peak_memory_mb is None:
            values = [recorded_peak_rss_mb(r.path) for r in by_label[row.label].runs if row.task in r.metrics]
            known = [v for v in values if v is not None]
            row.peak_memory_mb = max(known) if known else None


def _started(plan: SweepPlan) -> list[Path]:
    return [run.path for run in plan.runs if (run.path / CONFIG_FILE).is_file()]


def sweep_report(plan: SweepPlan, bootstrap: BootstrapOptions | None = BootstrapOptions(),
                 leading: Sequence[Section] = ()) -> Path:
    """Write ``report.html`` + ``report.md`` into the sweep folder (``leading`` sections first).

    Callers know the sweep has a finished run (``build_report`` refuses a folder without one).
    """
    from mtpeft.evaluation.report.build import build_report

    return build_report(_started(plan), plan.output_dir / "report.html", bootstrap=bootstrap,
                        title=f"mtpeft sweep {plan.output_dir.name}", leading=leading).html


def collect(plan: SweepPlan, bootstrap: BootstrapOptions | None = BootstrapOptions(), report: bool = True) -> SweepResults:
    """Write ``results.{csv,md,json}`` (and, with ``report``, ``report.html`` + ``report.md``) into the sweep folder."""
    folders = _started(plan)
    runs, skipped = find_runs(folders) if folders else ([], [])
    skipped += [Skipped(str(r.path), "not started (no config.yaml)") for r in plan.runs
                if not (r.path / CONFIG_FILE).is_file()]
    groups = group_runs(runs)
    _label_groups(plan, groups)
    rows, notes = results_table(groups, bootstrap)
    _fill_peak_memory(rows, groups)
    files = write_results(rows, plan.output_dir) if rows else {}
    page = sweep_report(plan, bootstrap) if report and runs else None
    return SweepResults(rows, notes, skipped, files, page, groups)


def table_text(results: SweepResults) -> str:
    """The results table as Markdown, with notes and skipped runs listed after it."""
    lines = [results_markdown(results.rows).rstrip()] if results.rows else ["(no finished run)"]
    lines += [f"note: {n}" for n in results.notes]
    lines += [f"not in the table: {s.file}: {s.reason}" for s in results.skipped]
    return "\n".join(lines)
