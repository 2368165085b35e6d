"""The study section of a sweep's report: the committed results file's tables, winners and reading.

When a sweep config names a results file (``sweep.results.file``), ``mtpeft sweep`` writes that
file first and then the sweep's ``report.html``, whose first section repeats, per task, the table
beside the published reference points, the paired bootstrap comparisons, which configuration wins
and by how much, and the person's reading kept in the file, so that the report and the file say
the same thing. Rewriting the report after the reading is written: ``mtpeft sweep CONFIG --collect``.
"""

from __future__ import annotations

import re

from mtpeft.evaluation.report.document import Section, Table, Text
from mtpeft.sweep.publish import PublishedResults
from mtpeft.sweep.results_markdown import NO_READING, baseline_rows, comparison_rows, seed_rows, task_table_rows

TITLE = "The study: which configuration wins, and the reading"


def _paragraphs(markdown: str) -> list[str]:
    """The reading's paragraphs (blank-line separated), each on one line."""
    return [" ".join(p.split()) for p in re.split(r"\n\s*\n", markdown.strip()) if p.strip()]


def study_section(published: PublishedResults) -> Section:
    """One section: a subsection per task, then the reading (or a line saying none is written yet)."""
    study = Section(TITLE, [Text(f"The same tables as {published.md} (written from the same runs, with the same "
                                 f"bootstrap resamples); the reading is the one kept in that file.")])
    for task in published.sections:
        scale = task.display_scale
        part = Section(f"{task.title}: {task.metric_name} (row {task.row}, on {task.split.heading})")
        part.add(Table(*task_table_rows(task), caption="mtpeft beside the published reference points, columns by split"))
        part.add(Table(*seed_rows(task.results, scale), caption="Seeds and budgets"))
        if task.comparisons:
            part.add(Table(*comparison_rows(task.comparisons, scale),
                           caption="Paired bootstrap over documents, best configuration against each other one"))
        part.add(Text(f"Which wins. {task.verdict}"))
        if task.baselines:
            part.add(Table(*baseline_rows(task), caption=f"Beside a trivial output of the same runs: {task.baseline_what}"))
        study.add(part)
    reading = Section("Reading", [Text(p) for p in _paragraphs(published.reading or NO_READING)])
    return study.add(reading)
