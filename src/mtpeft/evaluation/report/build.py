"""``build_report``: run folders in, one self-contained HTML page and its Markdown twin out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mtpeft.errors import MtpeftError
from mtpeft.evaluation.report.document import Report, Section
from mtpeft.evaluation.report.figure_sections import calibration_section, conflict_section, loss_section, transfer_section
from mtpeft.evaluation.report.html import render_html
from mtpeft.evaluation.report.markdown import render_markdown
from mtpeft.evaluation.report.run_folder import find_runs, group_runs
from mtpeft.evaluation.report.tables import per_task_section, probing_section, results_section, runs_section
from mtpeft.evaluation.results import BootstrapOptions, paired_comparisons, results_table, write_results


@dataclass(frozen=True)
class ReportFiles:
    html: Path
    markdown: Path
    assets: Path  # PNGs linked by the Markdown twin, plus results.{csv,md,json} and transfer tables
    runs: int
    skipped: int


def _bins(runs, bins: int | None) -> int:
    if bins is None:  # what the runs were evaluated with, else 10
        evaluation = runs[0].config.get("evaluation")
        bins = evaluation.get("ece_bins", 10) if isinstance(evaluation, dict) else 10
    if not isinstance(bins, int) or bins < 1:
        raise MtpeftError(f"ECE bins must be a positive integer, got {bins!r}")
    return bins


def build_report(
    run_dirs: Sequence[str | Path],
    out: str | Path,
    *,
    bins: int | None = None,
    bootstrap: BootstrapOptions | None = BootstrapOptions(),
    title: str = "mtpeft report",
    leading: Sequence[Section] = (),
) -> ReportFiles:
    """Write ``out`` (HTML), ``out`` with suffix ``.md`` and the folder ``<stem>_files/`` beside them.

    ``run_dirs`` are run folders or folders holding them (a sweep); unfinished runs are skipped
    and listed. ``bins`` defaults to the runs' ``evaluation.ece_bins``. Sections whose inputs are
    absent say so in one line. ``leading`` sections come first (a sweep's study: the winner per task
    and the reading of its results file).
    """
    out = Path(out)
    markdown = out.with_suffix(".md")
    if markdown == out:
        raise MtpeftError(f"--out {out}: give the HTML file a suffix other than .md (e.g. report.html)")
    runs, skipped = find_runs(run_dirs)
    if not runs:
        raise MtpeftError(f"no finished run in {', '.join(map(str, run_dirs))}; skipped: "
                          + "; ".join(str(s) for s in skipped))
    assets = out.parent / f"{out.stem}_files"
    assets.mkdir(parents=True, exist_ok=True)
    groups = group_runs(runs)
    rows, notes = results_table(groups, bootstrap)
    comparisons, test_notes = paired_comparisons(groups, rows, bootstrap) if bootstrap else ([], [])
    written = write_results(rows, assets)
    files = [str(p.relative_to(out.parent)) for p in written.values()]
    report = Report(title, [
        *leading,
        runs_section(groups, skipped),
        results_section(rows, comparisons, notes + test_notes, files),
        per_task_section(rows),
        loss_section(groups, assets),
        conflict_section(groups, assets),
        calibration_section(groups, _bins(runs, bins), assets),
        transfer_section(runs, groups, assets),
        probing_section(groups),
    ])
    out.write_text(render_html(report), encoding="utf-8")
    markdown.write_text(render_markdown(report, markdown.parent), encoding="utf-8")
    return ReportFiles(out, markdown, assets, len(runs), len(skipped))
