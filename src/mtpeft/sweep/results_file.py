"""The committed results file of a sweep: each task's table beside the published reference points.

``mtpeft sweep CONFIG`` writes it when the config names one (``sweep.results.file``), and
``mtpeft sweep CONFIG --collect --results PATH`` writes it from finished runs. It holds

* how the numbers were made: the command, date, machine (CPU, cores, runs in parallel, threads
  per run), git commit, a hash of the sweep config as read, a hash of every data file, the
  package versions, and how long the runs took (``sweep_run.json``, ``sweep_invocations.jsonl``);
* per task (the official headline row: ``semeval2021t6`` for 2021 T6 when the run has both
  levels, ``map`` for 2016/2017 T3), one row per configuration (mean ± std over seeds, the seeds'
  values, the bootstrap interval over documents) and the reference points of
  :mod:`mtpeft.evaluation.references`, in columns by split: mtpeft's rows sit in the column of
  the split they were evaluated on, and a reference number only in the column of its own split;
* paired bootstrap intervals over documents of the difference between the best configuration and
  each other one (:func:`paired_difference`, built on :mod:`mtpeft.evaluation.uncertainty`), the
  winner, its margin and whether the interval separates them;
* a section for the reading a person writes after the run (kept when the file is rewritten), and
  what to run on a GPU with Llama-3.2-3B (:mod:`mtpeft.sweep.gpu_estimate`).

The Markdown is rendered by :mod:`mtpeft.sweep.results_markdown`; the JSON beside it holds the
same numbers.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mtpeft.evaluation.references import References, ReferencePoint, TaskReferences, default_references, split_of_file
from mtpeft.evaluation.report.run_folder import RunGroup
from mtpeft.evaluation.results import BootstrapOptions, ResultRow, task_stats
from mtpeft.evaluation.score import COMPONENT_OF
from mtpeft.evaluation.uncertainty import (
    DocumentStats,
    bootstrap_distribution,
    paired_bootstrap_test,
    stats_metric,
)
from mtpeft.sweep.execute import RECORD_FILE
from mtpeft.sweep.spec import SweepPlan

INVOCATIONS_FILE = "sweep_invocations.jsonl"
"""One line per ``mtpeft sweep`` invocation in the sweep folder (written by the CLI)."""


@dataclass
class SeedResult:
    """One configuration on one task: its seeds' headline values and their summary."""

    label: str
    what: str
    seeds: list[int]
    values: list[float]
    mean: float
    std: float | None  # sample std; None for one seed
    ci_low: float | None = None
    ci_high: float | None = None
    trainable_params: int | None = None


@dataclass
class PairedDifference:
    """``metric(best) - metric(other)`` over the same documents, seeds averaged, with its interval."""

    best: str
    other: str
    delta: float
    low: float
    high: float
    p_value: float
    confidence: float
    n_resamples: int
    documents: int

    @property
    def separated(self) -> bool:
        """The interval of the difference excludes 0."""
        return self.low > 0.0


@dataclass
class Column:
    key: str
    heading: str


@dataclass
class TaskSection:
    row: str
    title: str
    metric: str
    metric_name: str
    display_scale: float
    split: Column  # where mtpeft's rows were evaluated
    columns: list[Column]  # mtpeft's split first, then the reference splits
    results: list[SeedResult]  # best mean first
    references: list[ReferencePoint]
    comparisons: list[PairedDifference]
    verdict: str
    components: list[tuple[str, SeedResult, str]] = field(default_factory=list)  # (row, result, metric)
    baselines: list[SeedResult] = field(default_factory=list)  # a trivial output of the same runs, per configuration
    baseline_metric: str | None = None
    baseline_what: str | None = None  # what the trivial output is (BASELINES)
    notes: list[str] = field(default_factory=list)


BASELINES = {
    "semeval2021t6": ("most_frequent_f1", "the most frequent training technique on each of the configuration's "
                                          "predicted spans, scored by the same official formula"),
}
"""Per headline row: the metric of a trivial output the runs score beside their own, and what it is."""


# ------------------------------------------------------------------ statistics
def paired_difference(a: list[DocumentStats], b: list[DocumentStats], metric: str, options: BootstrapOptions,
                      best: str = "a", other: str = "b") -> PairedDifference:
    """Percentile interval of ``metric(A) - metric(B)`` over documents resampled together.

    ``a`` and ``b`` are seeds (each side's metric is its seeds' mean). Both bootstrap
    distributions are drawn with the same seed over documents in the same order, so each
    resample weights the same documents on both sides (a paired bootstrap); the p-value is
    :func:`~mtpeft.evaluation.uncertainty.paired_bootstrap_test`'s, on the same resamples.
    """
    order = a[0].doc_ids
    runs_a = [a[0], *(r.aligned_to(order) for r in a[1:])]
    runs_b = [r.aligned_to(order) for r in b]
    fn = stats_metric(metric)
    draws = dict(n_resamples=options.n_resamples, seed=options.seed)
    diffs = bootstrap_distribution(runs_a, fn, **draws) - bootstrap_distribution(runs_b, fn, **draws)
    low, high = np.quantile(diffs, [(1 - options.confidence) / 2, (1 + options.confidence) / 2])
    test = paired_bootstrap_test(runs_a, runs_b, fn, **draws)
    return PairedDifference(best, other, test.delta, float(low), float(high), test.p_value, options.confidence,
                            options.n_resamples, len(order))


def _seed_result(row: ResultRow, group: RunGroup, what: str) -> SeedResult:
    runs = [r for r in group.runs if row.task in r.metrics]
    values = [r.metrics[row.task][row.headline] for r in runs]
    std = statistics.stdev(values) if len(values) > 1 else None
    return SeedResult(row.label, what, [r.seed for r in runs], values, row.mean, std,
                      row.ci.low if row.ci else None, row.ci.high if row.ci else None, row.trainable_params)


def _baseline_result(group: RunGroup, row: str, metric: str) -> SeedResult | None:
    """The trivial output's ``metric`` over the group's seeds, or None where the runs did not score it."""
    runs = [r for r in group.runs if metric in r.metrics.get(row, {})]
    if not runs:
        return None
    values = [r.metrics[row][metric] for r in runs]
    return SeedResult(group.label, _what(group), [r.seed for r in runs], values, statistics.fmean(values),
                      statistics.stdev(values) if len(values) > 1 else None)


def describe(config: dict) -> str:
    """What a configuration is, in a few words (strategy, ranks, fusion and placement)."""
    s = config.get("strategy", {})
    name, shared, private = s.get("name"), s.get("shared_rank"), s.get("private_rank")
    tasks = len(config.get("tasks", []))
    if name == "s1":
        return f"S1: one LoRA per task ({tasks} x rank {shared})"
    if name == "s2":
        return f"S2: one shared LoRA (rank {shared})"
    where = f"{s.get('fusion')} fusion, {s.get('placement')} placement"
    if name == "s3a":
        return f"S3a: shared rank {shared} + {tasks} x private rank {private}, {where}"
    if name == "s3b":
        return f"S3b: shared rank {shared} + 2 levels x rank {private}, {where}, level-2 -> level-1 attention"
    return f"{name}: shared rank {shared}, private rank {private}"


ABLATION_NAMES = {"A1": "A1 (= S2 at the budget)", "A2": "A2 (= S1 at the budget)",
                  "A3": "A3 (S3a, summed)", "A4": "A4 (= S3a, gated, at the budget)"}


def _verdict(section_metric: str, results: list[SeedResult], comparisons: list[PairedDifference], scale: float) -> str:
    if len(results) < 2:
        return "Only one configuration: nothing to compare."
    best, runner = results[0], results[1]
    mine = next((c for c in comparisons if c.other == runner.label), None)
    margin = (best.mean - runner.mean) * scale
    text = (f"{best.label} has the highest mean {section_metric} ({best.mean * scale:.4g}), "
            f"{margin:.3g} above the runner-up {runner.label} ({runner.mean * scale:.4g}).")
    if mine is None:
        return text + " No per-document statistics to test the difference."
    text += (f" Paired bootstrap over {mine.documents} documents: difference {mine.delta * scale:.3g}, "
             f"{mine.confidence:.0%} interval [{mine.low * scale:.3g}, {mine.high * scale:.3g}], p = {mine.p_value:.3f}; ")
    text += ("the interval excludes 0: these documents separate them." if mine.separated
             else "the interval includes 0: these documents do not separate them.")
    spreads = [s for s in (best.std, runner.std) if s is not None]
    if spreads:
        text += (f" Seed std {max(spreads) * scale:.3g}: the margin is "
                 f"{'larger' if margin > max(spreads) * scale else 'not larger'} than the spread over seeds.")
    separated = [c.other for c in comparisons if c.separated]
    text += (f" Separated from: {', '.join(separated)}." if separated
             else " No other configuration is separated from it.")
    return text


# ------------------------------------------------------------------ splits
def _task_config(config: dict, task_id: str) -> dict | None:
    return next((t for t in config.get("tasks", []) if t.get("id") == task_id), None)


def _documents(group: RunGroup, row: str) -> int | None:
    path = group.runs[0].per_document_path(row)
    return sum(1 for line in path.read_text().splitlines() if line.strip()) if path.is_file() else None


def mtpeft_split(refs: TaskReferences | None, config: dict, row: str, documents: int | None) -> Column:
    """The column of mtpeft's rows: an official split when its dev file is one, else its own."""
    tc = _task_config(config, row) or (_task_config(config, refs.config_task) if refs and refs.config_task else None)
    count = f": {documents} documents" if documents is not None else ""
    if tc is None:
        return Column("mtpeft-dev", f"mtpeft's dev split{count}")
    if tc.get("split"):
        split = tc["split"]
        train = Path(str(tc.get("train"))).name
        official = split_of_file(refs, tc.get("train")) if refs else None
        part_of = f" (the official {official} split)" if official else ""
        return Column("mtpeft-heldout", f"held out: {split['dev_fraction']:.0%} of the documents of {train}{part_of}, "
                                        f"split seed {split.get('seed', 0)}{count}")
    official = split_of_file(refs, tc.get("dev")) if refs else None
    if official:
        return Column(official, f"{official}: {refs.splits[official].description}{count}")
    return Column("mtpeft-dev", f"dev file {Path(str(tc.get('dev'))).name} (not an official split){count}")


# ------------------------------------------------------------------ sections
def task_sections(rows: list[ResultRow], groups: list[RunGroup], options: BootstrapOptions,
                  refs: References | None = None) -> list[TaskSection]:
    """One section per headline row (component rows of a present headline row go into its section)."""
    refs = refs or default_references()
    by_label = {g.label: g for g in groups}
    present = {r.task for r in rows}
    sections = []
    for row_id in dict.fromkeys(r.task for r in rows):
        if COMPONENT_OF.get(row_id) in present:
            continue
        task_rows = [r for r in rows if r.task == row_id]
        task_refs = refs.for_row(row_id)
        results = sorted((_seed_result(r, by_label[r.label], _what(by_label[r.label])) for r in task_rows),
                         key=lambda s: -s.mean)
        first = by_label[task_rows[0].label]
        split = mtpeft_split(task_refs, first.runs[0].config, row_id, _documents(first, row_id))
        columns = [split]
        if task_refs:
            columns += [Column(k, f"{k}: {task_refs.splits[k].description}")
                        for k in task_refs.points_by_split() if k != split.key]
        metric = task_rows[0].headline
        comparisons = _comparisons(row_id, results, by_label, metric, options)
        scale = task_refs.display_scale if task_refs else 1.0
        section = TaskSection(
            row=row_id, title=task_refs.title if task_refs else row_id, metric=metric,
            metric_name=task_refs.metric_name if task_refs else metric, display_scale=scale, split=split,
            columns=columns, results=results, references=list(task_refs.points) if task_refs else [],
            comparisons=comparisons, verdict=_verdict(metric, results, comparisons, scale),
        )
        section.components = [(r.task, _seed_result(r, by_label[r.label], _what(by_label[r.label])), r.headline)
                               for r in rows if COMPONENT_OF.get(r.task) == row_id]
        if row_id in BASELINES:
            section.baseline_metric, section.baseline_what = BASELINES[row_id]
            section.baselines = [b for b in (_baseline_result(by_label[r.label], row_id, section.baseline_metric)
                                             for r in results) if b is not None]
        if task_refs and task_refs.metric != metric:
            section.notes.append(f"the references are {task_refs.metric}; this row's headline is {metric}")
        owner = COMPONENT_OF.get(row_id)
        if owner is not None:
            section.notes.append(f"{row_id} is a component of {owner}, whose official row is not in these runs "
                                 f"(it needs both levels trained in one run): not comparable with {owner}'s references")
        sections.append(section)
    order = list(refs.tasks)  # the tasks with references first, in the references' order
    return sorted(sections, key=lambda s: order.index(s.row) if s.row in order else len(order))


def _what(group: RunGroup) -> str:
    return describe(group.runs[0].config)


def _comparisons(row_id: str, results: list[SeedResult], by_label: dict[str, RunGroup], metric: str,
                 options: BootstrapOptions) -> list[PairedDifference]:
    if len(results) < 2:
        return []
    best = task_stats(by_label[results[0].label], row_id)
    out = []
    for other in results[1:]:
        stats = task_stats(by_label[other.label], row_id)
        if best is None or stats is None:
            continue
        try:
            out.append(paired_difference(best, stats, metric, options, results[0].label, other.label))
        except (ValueError, KeyError):  # different documents, or stats that do not give the metric
            continue
    return out


# ------------------------------------------------------------------ provenance
def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def path_sha256(path: Path) -> str | None:
    """A file's sha256; a folder's: sha256 over its files' relative paths and hashes (sorted)."""
    if path.is_file():
        return file_sha256(path)
    if path.is_dir():
        lines = [f"{p.relative_to(path)}\t{file_sha256(p)}" for p in sorted(path.rglob("*")) if p.is_file()]
        return hashlib.sha256("\n".join(lines).encode()).hexdigest()
    return None


def config_sha256(plan: SweepPlan) -> str:
    """sha256 of the sweep config as read (overrides applied, environment variables NOT expanded)."""
    return hashlib.sha256(json.dumps(plan.data, sort_keys=True, default=str).encode()).hexdigest()


def data_files(plan: SweepPlan) -> list[dict[str, Any]]:
    """Each data path of the base config: as written, as resolved here, and its sha256."""
    written = {t.get("id"): t for t in plan.data.get("tasks", []) if isinstance(t, dict)}
    seen, out = set(), []
    for tc in plan.runs[0].config.tasks if plan.runs else []:
        for split in ("train", "dev", "test"):
            resolved = getattr(tc, split)
            if resolved is None or resolved in seen:
                continue
            seen.add(resolved)
            out.append({"path": str(written.get(tc.id, {}).get(split, resolved)), "resolved": resolved,
                        "sha256": path_sha256(Path(resolved))})
    return out


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` says."""
    import platform

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def read_invocations(folder: Path) -> list[dict]:
    path = folder / INVOCATIONS_FILE
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def run_timing(plan: SweepPlan) -> dict[str, Any]:
    """Wall time of the runs' attempts (``sweep_run.json``) and of the sweep invocations that ran them."""
    per_run = []
    for run in plan.runs:
        record = run.path / RECORD_FILE
        if record.is_file():
            attempts = json.loads(record.read_text()).get("attempts", [])
            per_run.append(sum(float(a.get("wall_s") or 0.0) for a in attempts))
    invocations = [i for i in read_invocations(plan.output_dir) if not i.get("collect_only")]
    return {
        "runs_timed": len(per_run),
        "run_wall_s_total": round(sum(per_run), 1),
        "run_wall_s_median": round(statistics.median(per_run), 1) if per_run else None,
        "run_wall_s_max": round(max(per_run), 1) if per_run else None,
        "sweep_wall_s": round(sum(float(i.get("wall_s") or 0.0) for i in invocations), 1) if invocations else None,
        "invocations": invocations,
    }


def provenance(plan: SweepPlan, command: str, groups: list[RunGroup]) -> dict[str, Any]:
    """How the numbers were made (see the module docstring)."""
    import torch

    from mtpeft.training.run_folder import git_state

    environment = next((r.environment for g in groups for r in g.runs if r.environment), {})
    invocations = [i for i in read_invocations(plan.output_dir) if not i.get("collect_only")]
    last = invocations[-1] if invocations else {}
    return {
        "command": last.get("command") or command,  # the sweep that ran the runs, also when --collect rewrites
        "written_by": command,
        "date_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "cpu": last.get("cpu") or cpu_model(), "cores": last.get("cores") or os.cpu_count(),
            "jobs": last.get("jobs"), "threads_per_run": last.get("omp_num_threads"),
            "torch_threads_here": torch.get_num_threads(), "device": environment.get("device"),
        },
        "git": environment.get("git") or git_state(),  # the code that trained (a run's environment.json)
        "git_when_written": git_state(),
        "config": {"source": plan.source, "sha256": config_sha256(plan)},
        "data": data_files(plan),
        "packages": environment.get("packages", {}),
        "timing": run_timing(plan),
    }


def results_record(plan: SweepPlan, sections: list[TaskSection], prov: dict, gpu: dict | None,
                   finished: int) -> dict[str, Any]:
    """The JSON written beside the Markdown."""
    return {"sweep": str(plan.output_dir), "runs": len(plan.runs), "finished": finished,
            "provenance": prov, "tasks": [asdict(s) for s in sections], "gpu": gpu}
