"""Report sections made of tables: the runs, the results table, per-task metrics, probing."""

from __future__ import annotations

from collections.abc import Sequence

from mtpeft.evaluation.report.document import Section, Table, Text
from mtpeft.evaluation.report.run_folder import RunGroup, RunRecord
from mtpeft.evaluation.results import TABLE_HEADERS, Comparison, ResultRow, fmt, mean_pm_std, table_cells
from mtpeft.evaluation.score import CUIS_PREDICTED, METRIC_NOTES, NORMALISATION_OFF, REPORT_KEYS
from mtpeft.evaluation.uncertainty import mean_std
from mtpeft.tasks.document import Skipped


def runs_section(groups: Sequence[RunGroup], skipped: Sequence[Skipped]) -> Section:
    """Which runs the report covers, grouped by configuration, and which folders were skipped."""
    section = Section("Runs")
    rows = []
    for group in groups:
        for run in group.runs:
            rows.append([group.label, "+".join(run.tasks), str(run.seed), run.split,
                         str(run.step) if run.step is not None else "n/a", str(run.path)])
    section.add(Table(["configuration", "tasks", "seed", "split", "step", "folder"], rows,
                      f"{len(rows)} finished run(s) in {len(groups)} configuration(s)"))
    if skipped:
        section.add(Table(["folder", "reason"], [[s.file, s.reason] for s in skipped], f"{len(skipped)} folder(s) skipped"))
    else:
        section.add(Text("No folder was skipped."))
    return section


def results_section(rows: Sequence[ResultRow], comparisons: Sequence[Comparison], notes: Sequence[str],
                    files: Sequence[str]) -> Section:
    """The results table (headline mean ± std over seeds, bootstrap CI, costs) and paired tests."""
    section = Section("Results")
    section.add(Table(TABLE_HEADERS, [table_cells(r) for r in rows],
                      "Headline metric per task and configuration (mean ± sample std over seeds)"))
    with_ci = [r for r in rows if r.ci]
    if with_ci:
        ci = with_ci[0].ci
        section.add(Text(f"Bootstrap CI: {ci.confidence:.0%} percentile interval of the seed mean, "
                         f"{ci.n_resamples} resamples of the evaluation documents ({len(with_ci)} of {len(rows)} rows)."))
        lacking = {t: sum(1 for r in rows if r.task == t and not r.ci) for t in dict.fromkeys(r.task for r in rows)}
        counts = {t: sum(1 for r in rows if r.task == t) for t in lacking}
        if any(lacking.values()):
            listed = ", ".join(f"{t} ({n} of {counts[t]} configurations)" for t, n in lacking.items() if n)
            section.add(Text(f"No interval where the runs have no usable per_document/ statistics: {listed}."))
    else:
        section.add(Text("No confidence intervals: no run folder has per_document/ statistics."))
    if comparisons:
        section.add(Table(
            ["task", "metric", "best", "compared with", "difference", "p (best is better)"],
            [[c.task, c.metric, c.best, c.other, f"{c.test.delta:+.4f}", _p_value(c)] for c in comparisons],
            f"Paired bootstrap tests (Berg-Kirkpatrick et al., 2012; {comparisons[0].test.n_resamples} resamples of "
            "the same documents for both sides)",
        ))
    for note in notes:
        section.add(Text(f"Note: {note}"))
    if files:
        section.add(Text(f"Also written as {', '.join(files)}."))
    return section


def _p_value(comparison: Comparison) -> str:
    """``p = 0`` from R resamples only says ``p < 1/R``."""
    test = comparison.test
    return f"< {1 / test.n_resamples:.2g}" if test.p_value == 0 else f"{test.p_value:.4f}"


def _columns(task: str, rows: Sequence[ResultRow]) -> list[str]:
    """Headline first, then the task's standard keys (score.REPORT_KEYS), or every metric for other tasks."""
    present = [n for r in rows for n in r.metrics]
    wanted = REPORT_KEYS.get(task)
    if wanted is None:
        wanted = tuple(sorted(set(present)))
    ordered = [rows[0].headline, *wanted]
    return [n for n in dict.fromkeys(ordered) if n in present]


def per_task_section(rows: Sequence[ResultRow]) -> Section:
    """One table per task: every configuration's main metrics, mean ± std over seeds."""
    section = Section("Per-task metrics")
    for task in dict.fromkeys(r.task for r in rows):
        task_rows = [r for r in rows if r.task == task]
        columns = _columns(task, task_rows)
        cells = []
        for r in task_rows:
            cells.append([r.label, str(len(r.seeds)),
                          *(mean_pm_std(*r.metrics[c]) if c in r.metrics else "n/a" for c in columns)])
            if r.before_training:
                cells.append([f"{r.label} (before training)", str(len(r.seeds)),
                              *(fmt(r.before_training.get(c)) for c in columns)])
        section.add(Table(["configuration", "seeds", *columns], cells,
                          f"{task} ({task_rows[0].split}); all metrics are in the results JSON"))
        notes = METRIC_NOTES.get(task, {})
        if notes:  # the disorder tasks: which columns count the CUI, which only the spans
            section.add(Text("; ".join(f"{k}: {v}" for k, v in notes.items() if k in columns) + "."))
        off = [r.label for r in task_rows if r.metrics.get(CUIS_PREDICTED, (1.0,))[0] == 0]
        if off:
            section.add(Text(f"Note ({', '.join(off)}): {NORMALISATION_OFF}."))
    return section


def probing_section(groups: Sequence[RunGroup]) -> Section:
    """Probe accuracy per representation (rows) and task (columns), mean over the seeds that have it."""
    section = Section("Probing")
    found = False
    for group in groups:
        runs: list[RunRecord] = [r for r in group.runs if r.probing]
        if not runs:
            continue
        found = True
        representations = list(dict.fromkeys(rep for r in runs for rep in r.probing))
        tasks = list(dict.fromkeys(t for r in runs for rep in r.probing.values() for t in rep))
        cells = []
        for rep in representations:
            row = [rep]
            for task in tasks:
                values = [r.probing[rep][task] for r in runs if task in r.probing.get(rep, {})]
                row.append(mean_pm_std(*mean_std(values)) if values else "n/a")
            cells.append(row)
        section.add(Table(["representation", *tasks], cells,
                          f"{group.title}: linear-probe accuracy ({len(runs)} seed(s) with probing.json)"))
    if not found:
        section.add(Text("No probing results: no run folder has probing.json."))
    return section
