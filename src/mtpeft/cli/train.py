"""``mtpeft train CONFIG [key=value ...] [--resume]``."""

from __future__ import annotations

import sys

import typer

from mtpeft.cli.main import app


@app.command(context_settings={"allow_extra_args": False})
def train(
    config: str = typer.Argument(..., help="a YAML run config (see configs/)"),
    overrides: list[str] = typer.Argument(None, help="dotted overrides, e.g. training.max_steps=20 seed=1"),
    resume: bool = typer.Option(False, "--resume", help="continue the run in output_dir from its last checkpoint"),
    overwrite: bool = typer.Option(False, "--overwrite", help="delete a run already in output_dir and start afresh"),
) -> None:
    """Train a multi-task model; everything lands in the config's output_dir."""
    from mtpeft.config import load_config
    from mtpeft.training.run import REPORT_FILE
    from mtpeft.training.run import train as run_training

    cfg = load_config(config, overrides or [])
    results = run_training(cfg, resume=resume, overwrite=overwrite, argv=sys.argv)
    from mtpeft.evaluation.score import headline_metric

    import json
    from pathlib import Path

    final = json.loads((Path(cfg.output_dir) / "final_metrics.json").read_text())
    before = final.get("before_training", {})
    typer.echo(f"\nrun folder: {cfg.output_dir}  (step {final['step']}, dev split)")
    header = f"  {'task':<24}{'metric':<14}{'before':>10}{'after':>10}"
    typer.echo(header)
    typer.echo("  " + "-" * (len(header) - 2))
    for task, metrics in results.items():
        name = headline_metric(task, metrics)
        was = f"{before[task][name]:.4f}" if task in before else "-"
        typer.echo(f"  {task:<24}{name:<14}{was:>10}{metrics[name]:>10.4f}")
    report = Path(cfg.output_dir) / REPORT_FILE
    if cfg.evaluation.report and report.is_file():
        typer.echo(f"\nreport: {report} (and {report.with_suffix('.md').name} beside it)")
