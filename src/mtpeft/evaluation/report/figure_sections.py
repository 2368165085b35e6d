"""Report sections made of figures: loss curves, gradient conflicts, calibration, transfer."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mtpeft.errors import MtpeftError
from mtpeft.evaluation.calibration import expected_calibration_error, reliability_diagram, run_calibration
from mtpeft.evaluation.report.document import Image, Section, Table, Text
from mtpeft.evaluation.report.plots import conflict_plot, loss_curves
from mtpeft.evaluation.report.run_folder import RunGroup, RunRecord
from mtpeft.evaluation.results import mean_pm_std
from mtpeft.evaluation.transfer import available_modes, transfer_matrix, write_transfer
from mtpeft.evaluation.uncertainty import mean_std


def slug(text: str) -> str:
    """A file-name-safe version of a label."""
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()[:60] or "figure"


def loss_section(groups: Sequence[RunGroup], assets: Path) -> Section:
    section = Section("Loss curves")
    for index, group in enumerate(groups):
        path = loss_curves(group, assets / f"loss-{index:02d}-{slug(group.label)}.png")
        if path:
            section.add(Image(path, f"loss curves of {group.title}", f"{group.title}: training loss, one line per seed"))
    if not section.blocks:
        section.add(Text("No loss curves: no run folder has a train_log.jsonl with losses."))
    return section


def conflict_section(groups: Sequence[RunGroup], assets: Path) -> Section:
    section = Section("Gradient conflicts")
    for index, group in enumerate(groups):
        path = conflict_plot(group, assets / f"conflicts-{index:02d}-{slug(group.label)}.png")
        if path:
            section.add(Image(path, f"gradient conflicts of {group.title}",
                              f"{group.title}: conflict fraction over steps and the last cosine matrix"))
    if not section.blocks:
        section.add(Text("No gradient-conflict measurements: no run folder has conflicts.jsonl."))
    return section


def calibration_section(groups: Sequence[RunGroup], bins: int, assets: Path) -> Section:
    """ECE per configuration and task (mean ± std over seeds) and reliability diagrams pooled over seeds."""
    section = Section("Calibration")
    rows, images = [], []
    for index, group in enumerate(groups):
        records = [run_calibration(r.path, r.split) for r in group.runs]
        for task in dict.fromkeys(t for rec in records for t in rec):
            per_seed = [rec[task] for rec in records if task in rec]
            eces = [expected_calibration_error(c.confidences, c.correct, bins) for c in per_seed]
            known = [e for e in eces if np.isfinite(e)]
            units = sum(len(c.confidences) for c in per_seed)
            rows.append([group.title, task, str(len(per_seed)), str(units),
                         mean_pm_std(*mean_std(known)) if known else "n/a (no predicted units)"])
            confidences = np.concatenate([c.confidences for c in per_seed])
            correct = np.concatenate([c.correct for c in per_seed])
            path = assets / f"reliability-{index:02d}-{slug(group.label)}-{slug(task)}.png"
            reliability_diagram(confidences, correct, bins, path, title=f"{group.title} / {task}")
            images.append(Image(path, f"reliability diagram of {group.title}, {task}",
                                f"{group.title} / {task}: pooled over {len(per_seed)} seed(s)"))
    if not rows:
        section.add(Text("No calibration data: no run folder has calibration/<split>/<task>.json."))
        return section
    section.add(Table(["configuration", "task", "seeds", "units (pooled)", f"ECE ({bins} bins)"], rows,
                      "Expected calibration error, equal-width bins, mean ± std over seeds"))
    for image in images:
        section.add(image)
    return section


def _families(runs: Sequence[RunRecord]) -> dict[str, list[RunRecord]]:
    """Multi-task runs keyed by their configuration without the task list (one family per setup)."""
    families: dict[str, list[RunRecord]] = {}
    for run in runs:
        if len(run.tasks) > 1:
            rest = {k: v for k, v in run.config.items() if k not in ("seed", "output_dir", "tasks")}
            families.setdefault(json.dumps(rest, sort_keys=True, default=str), []).append(run)
    return families


def transfer_section(runs: Sequence[RunRecord], groups: Sequence[RunGroup], assets: Path) -> Section:
    """Transfer matrices of every multi-task setup whose runs allow one (with the single-task runs)."""
    section = Section("Transfer")
    singles = [r for r in runs if len(r.tasks) == 1]
    label_of = {id(r): g.label for g in groups for r in g.runs}
    for index, family in enumerate(_families(runs).values()):
        name = re.sub(r" \[tasks: .*\]$", "", label_of[id(family[0])])
        for mode in available_modes(singles + family):
            candidates = family if mode == "leave_one_out" else singles + family
            try:
                matrix = transfer_matrix(candidates, mode)
            except MtpeftError as err:
                section.add(Text(f"{name} ({mode}): no matrix: {err}"))
                continue
            paths = write_transfer(matrix, assets, f"transfer-{index:02d}-{slug(name)}-{mode}")
            section.add(Image(paths["png"], f"transfer heatmap of {name} ({mode})",
                              f"{name}: relative change of task j's headline metric when trained with task i"))
            section.add(Table(["task added (i) / affected (j)", *matrix.tasks],
                              [[added, *(f"{v:+.1%}" if np.isfinite(v) else "n/a" for v in matrix.values[i])]
                               for i, added in enumerate(matrix.tasks)],
                              f"{name}, {mode.replace('_', '-')}: rows = task added (i), columns = task affected (j)"))
            if matrix.missing:
                section.add(Text(f"Missing runs (cells n/a): {', '.join(matrix.missing)}."))
            section.add(Text("Headline metrics: " + ", ".join(f"{t}: {m}" for t, m in matrix.metric.items()) + "."))
    if not section.blocks:
        section.add(Text("No transfer matrix: it needs single-task runs plus pairwise runs, or all-task plus "
                         "leave-one-out runs (three tasks or more)."))
    return section
