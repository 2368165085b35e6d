"""Render the committed results file (:mod:`mtpeft.sweep.results_file`) as Markdown.

The reading section is the one part a person writes: it sits between :data:`READING_START` and
:data:`READING_END`, and rewriting the file keeps what is there.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mtpeft.evaluation.results import markdown_table
from mtpeft.sweep.results_file import ABLATION_NAMES, PairedDifference, SeedResult, TaskSection

READING_START = "<!-- reading: written by a person after the run; kept when mtpeft rewrites this file -->"
READING_END = "<!-- end of reading -->"
NO_READING = ("_Not written yet._ After the run, the lead writes here which strategy wins each task and by "
              "how much, whether the intervals separate them, and where the embedded model is too small to tell.")


def existing_reading(path: Path) -> str | None:
    """The reading already in ``path`` (between the markers), if any."""
    if not path.is_file():
        return None
    match = re.search(re.escape(READING_START) + r"\n(.*?)\n?" + re.escape(READING_END), path.read_text(), re.S)
    return match.group(1).strip() if match else None


def _num(value: float | None, scale: float, digits: int = 4) -> str:
    if value is None:
        return "n/a"
    scaled = value * scale
    return f"{scaled:.2f}" if scale >= 100 else f"{scaled:.{digits}f}"


def _cell(result: SeedResult, scale: float) -> str:
    spread = f" ± {_num(result.std, scale)}" if result.std is not None else " (1 seed)"
    interval = (f" [{_num(result.ci_low, scale)}, {_num(result.ci_high, scale)}]"
                if result.ci_low is not None else "")
    return f"{_num(result.mean, scale)}{spread}{interval}"


def _mean_std(result: SeedResult, scale: float) -> str:
    return _num(result.mean, scale) + (f" ± {_num(result.std, scale)}" if result.std is not None else "")


def _label(label: str) -> str:
    return ABLATION_NAMES.get(label, label)


def task_table_rows(section: TaskSection) -> tuple[list[str], list[list[str]]]:
    """mtpeft's configurations and the reference points, one column per split (headers, rows)."""
    scale = section.display_scale
    keys = [c.key for c in section.columns]
    headers = ["system", "seeds", *keys]
    lines = []
    for result in section.results:
        cells = [""] * len(keys)
        cells[0] = _cell(result, scale)
        lines.append([f"mtpeft {_label(result.label)}", str(len(result.seeds)), *cells])
    for point in section.references:
        cells = [""] * len(keys)
        cells[keys.index(point.split)] = _num(point.value, scale)
        lines.append([point.system, "", *cells])
    return headers, lines


def comparison_rows(comparisons: list[PairedDifference], scale: float) -> tuple[list[str], list[list[str]]]:
    """The paired bootstrap differences, best configuration against each other one (headers, rows)."""
    rows = [[_label(c.best), _label(c.other), _num(c.delta, scale), f"[{_num(c.low, scale)}, {_num(c.high, scale)}]",
             f"{c.p_value:.3f}", "yes" if c.separated else "no"] for c in comparisons]
    return ["best", "other", "difference", "95% interval (paired, documents)", "p", "separated"], rows


def seed_rows(results: list[SeedResult], scale: float) -> tuple[list[str], list[list[str]]]:
    """Each configuration's seeds and trainable parameters (headers, rows)."""
    rows = [[_label(r.label), r.what, ", ".join(f"{s}: {_num(v, scale)}" for s, v in zip(r.seeds, r.values)),
             f"{r.trainable_params:,}" if r.trainable_params else "n/a"] for r in results]
    return ["configuration", "what", "per seed", "trainable params (adapters, fusion, heads)"], rows


def baseline_rows(section: TaskSection) -> tuple[list[str], list[list[str]]]:
    """Each configuration's official score beside the trivial output of the same runs (headers, rows)."""
    scale, mine = section.display_scale, {r.label: r for r in section.results}
    rows = [[_label(base.label), _mean_std(mine[base.label], scale), _mean_std(base, scale),
             _num(mine[base.label].mean - base.mean, scale)] for base in section.baselines]
    return ["configuration", section.metric, f"trivial: {section.baseline_metric}", "model - trivial"], rows


def task_table(section: TaskSection) -> str:
    """mtpeft's configurations and the reference points, one column per split."""
    return markdown_table(*task_table_rows(section))


def section_markdown(section: TaskSection) -> str:
    scale = section.display_scale
    unit = " (x 100, as the field reports it)" if scale == 100 else ""
    out = [f"## {section.title}", "",
           f"Row `{section.row}`, metric `{section.metric}`: {section.metric_name}{unit}. mtpeft's rows are "
           f"evaluated on **{section.split.heading}** and sit in that column only.", ""]
    if section.columns[1:]:
        out += ["Columns:", *[f"- `{c.key}`: {c.heading}" for c in section.columns], ""]
    out += [task_table(section), "",
            "mtpeft cells: mean ± sample std over seeds, then the 95% percentile bootstrap interval over documents "
            "of the seed mean.", ""]
    out += ["Seeds and budgets:", "", markdown_table(*seed_rows(section.results, scale)), ""]
    if section.comparisons:
        out += ["Paired bootstrap, best configuration against each other one (the same resampled documents "
                "on both sides, seeds averaged):", "", markdown_table(*comparison_rows(section.comparisons, scale)), ""]
    out += [f"**Which wins.** {section.verdict}", ""]
    if section.baselines:
        out += [f"Beside a trivial output of the same runs ({section.baseline_what}; mean ± std over seeds):", "",
                markdown_table(*baseline_rows(section)), ""]
    if section.components:
        rows = [[row, _label(r.label), metric, _cell(r, 1.0)] for row, r, metric in section.components]
        out += ["Components of this row (not the official score; same runs):", "",
                markdown_table(["row", "configuration", "metric", "mean ± std [interval]"], rows), ""]
    out += [f"Note: {n}." for n in section.notes]
    if section.references:
        out += ["", "Sources of the reference points:", ""]
        out += [f"- {p.system}, `{p.split}`: {p.as_published} ({p.source}; checked: {p.checked})"
                for p in section.references]
    return "\n".join(out).rstrip() + "\n"


def _provenance_lines(prov: dict[str, Any], finished: int, runs: int) -> str:
    machine, timing = prov["machine"], prov["timing"]
    git = prov.get("git") or {}
    threads = machine.get("threads_per_run")
    hours = lambda s: f"{s / 3600:.2f} h" if s is not None else "n/a"  # noqa: E731
    packages = ", ".join(f"{k} {v}" for k, v in prov.get("packages", {}).items() if v and k != "mtpeft")
    rows = [
        ["command", f"`{prov['command']}`" + (f" (this file written by `{prov['written_by']}`)"
                                              if prov.get("written_by", prov["command"]) != prov["command"] else "")],
        ["date (UTC)", prov["date_utc"]],
        ["machine", f"{machine['cpu']}, {machine['cores']} cores; {machine.get('jobs') or '?'} run(s) at a time, "
                    f"{threads or 'torch default'} thread(s) each"],
        ["git commit (of the runs)", f"{git.get('commit', 'unknown')}{' (uncommitted changes)' if git.get('dirty') else ''}"],
        ["config", f"{prov['config']['source']}, sha256 {prov['config']['sha256'][:16]} (as read, overrides applied)"],
        ["data", "<br>".join(f"`{d['path']}` sha256 {(d['sha256'] or 'missing')[:16]}" for d in prov["data"])],
        ["runs", f"{finished} of {runs} finished"],
        ["time", f"sweep {hours(timing.get('sweep_wall_s'))} (wall, the invocations that ran runs); runs "
                 f"{hours(timing.get('run_wall_s_total'))} in total, median "
                 f"{(timing.get('run_wall_s_median') or 0) / 60:.1f} min, longest {(timing.get('run_wall_s_max') or 0) / 60:.1f} min"],
        ["packages", packages or "n/a"],
    ]
    return markdown_table(["", ""], rows)


def render(record: dict[str, Any], sections: list[TaskSection], gpu_text: str | None, reading: str | None) -> str:
    """The whole results file."""
    prov = record["provenance"]
    out = [f"# Results: {Path(prov['config']['source']).name} on the public SemEval data", "",
           "Written by mtpeft from the finished runs of the sweep (every number is computed from their files: "
           "`final_metrics.json`, `per_document/`, `params.json`, `sweep_run.json`); the reading below is a "
           "person's.", "", _provenance_lines(prov, record["finished"], record["runs"]), ""]
    out += [section_markdown(s) for s in sections]
    out += ["## Reading", "", READING_START, reading or NO_READING, READING_END, ""]
    if gpu_text:
        out += ["## What to run on a GPU with Llama-3.2-3B", "", gpu_text.rstrip(), ""]
    return "\n".join(out)
