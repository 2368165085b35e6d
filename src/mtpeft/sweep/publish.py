"""Write a sweep's committed results file: ``<file>.md`` and ``<file>.json`` beside it.

See :mod:`mtpeft.sweep.results_file` for what it holds. The reading section of an existing file
is kept; everything else is recomputed from the runs' files each time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from mtpeft.evaluation.results import BootstrapOptions
from mtpeft.sweep.collect import SweepResults
from mtpeft.sweep.gpu_estimate import estimate, estimate_record, estimate_text, measure_data
from mtpeft.sweep.results_file import TaskSection, provenance, results_record, task_sections
from mtpeft.sweep.results_markdown import existing_reading, render
from mtpeft.sweep.spec import SweepPlan


@dataclass
class PublishedResults:
    """The files written, and what the sweep's report repeats from them (the tables and the reading)."""

    md: Path
    json: Path
    sections: list[TaskSection]
    reading: str | None  # the person's reading kept in the file; None before one is written

    def paths(self) -> list[Path]:
        return [self.md, self.json]


def write_results_file(plan: SweepPlan, results: SweepResults, path: str | Path, command: str,
                       bootstrap: BootstrapOptions | None = None,
                       gpu_config: str | Path | None = None) -> PublishedResults:
    """Write ``path`` (Markdown) and the same name with ``.json``.

    ``gpu_config`` (a sweep config for Llama-3.2-3B) adds the GPU section, its time estimated
    from this sweep's data (:mod:`mtpeft.sweep.gpu_estimate`).
    """
    path = Path(path)
    options = bootstrap or BootstrapOptions()
    sections = task_sections(results.rows, results.groups, options)
    prov = provenance(plan, command, results.groups)
    finished = sum(len(g.runs) for g in results.groups)
    gpu, gpu_text = None, None
    if gpu_config is not None:
        measure = measure_data(results.groups)
        llama_command = f"MTPEFT_LLAMA_3B=/path/to/Llama-3.2-3B mtpeft sweep {gpu_config} --jobs 1"
        if measure is None:
            gpu_text = (f"Config: `{gpu_config}`. Command: `{llama_command}`. No expected time: the runs logged no "
                        f"token counts to derive it from.")
        else:
            gpu = estimate(gpu_config, measure)
            gpu_text = estimate_text(gpu, llama_command)
    record = results_record(plan, sections, prov, estimate_record(gpu), finished)
    path.parent.mkdir(parents=True, exist_ok=True)
    reading = existing_reading(path)
    text = render(record, sections, gpu_text, reading)
    json_path = path.with_suffix(".json")
    path.write_text(text)
    json_path.write_text(json.dumps(record, indent=2, sort_keys=True, default=str) + "\n")
    return PublishedResults(path, json_path, sections, reading)
