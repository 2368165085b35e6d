"""``train(config)``: everything from a config to a finished run folder."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from mtpeft.backbone import Backbone
from mtpeft.config import RunConfig
from mtpeft.model.build import build_model
from mtpeft.training.data import load_task_data, write_data_report
from mtpeft.training.rng import seed_everything
from mtpeft.training.run_folder import create_run_folder

REPORT_FILE = "report.html"


def train(
    config: RunConfig,
    *,
    resume: bool = False,
    overwrite: bool = False,
    argv: Sequence[str] | None = None,
    backbone: Backbone | None = None,
) -> dict[str, dict[str, float]]:
    """Train as ``config`` says into ``config.output_dir``; returns the final dev metrics per task.

    ``resume`` continues the run in that folder from its last checkpoint; the result equals an
    uninterrupted run with the same seed. ``overwrite`` replaces a run already in that folder.
    With ``evaluation.report``, the main process then writes ``report.html`` (and ``report.md``)
    into the run folder, as ``mtpeft report`` would.
    """
    from mtpeft.training.distributed import current_processes
    from mtpeft.training.run_folder import RunFolder

    processes = current_processes()
    seed_everything(config.seed)
    if processes.is_main:  # only the main process writes into the run folder
        run = create_run_folder(config, argv=argv, resume=resume, overwrite=overwrite)
    processes.barrier()
    if not processes.is_main:
        run = RunFolder(Path(config.output_dir))
    built = build_model(config, backbone)
    if processes.device.type != "cpu":
        built.model.to(processes.device)
    data = load_task_data(config, built.tasks, built.backbone.tokenizer)
    if processes.is_main:
        write_data_report(data, run.path / "data_report.json")
        counts = built.model.parameter_counts()
        (run.path / "params.json").write_text(json.dumps({
            "trainable": counts.trainable,
            "backbone": counts.backbone,
            "adapters": counts.adapters,
            "fusion": counts.fusion,
            "heads": counts.heads,
            "other": counts.other,
            "active_per_task": {t: counts.active_for(t) for t in built.tasks},
            "processes": processes.world,
        }, indent=2, sort_keys=True))

    from mtpeft.training.trainer import Trainer  # imported late: pulls in the evaluation stack

    metrics = Trainer(config, built, data, run, processes).fit(resume=resume)
    if config.evaluation.report and processes.is_main:
        from mtpeft.evaluation.report.build import build_report

        build_report([run.path], run.path / REPORT_FILE, bins=config.evaluation.ece_bins)
    return metrics
