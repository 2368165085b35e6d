"""``mtpeft evaluate`` and ``mtpeft predict``."""

from __future__ import annotations

import typer

from mtpeft.cli.main import app
from mtpeft.errors import ConfigError


@app.command()
def evaluate(
    run: str = typer.Argument(..., help="a run folder (its best checkpoint) or a checkpoints/step-N folder"),
    split: str = typer.Option("dev", help="dev or test: the tasks' paths of that split in the run's config"),
    data: list[str] = typer.Option(None, "--data", help="TASK=PATH to evaluate on other data (repeatable; "
                                   "semeval2021t6=PATH: memes for the subtask-2 row); PATH alone for a one-task run"),
    checkpoint: str = typer.Option("best", help="best or last, when RUN is a run folder"),
) -> None:
    """Official metrics, calibration and per-document statistics of a trained model."""
    from mtpeft.evaluation.score import CUIS_PREDICTED, METRIC_NOTES, NORMALISATION_OFF, headline_metric
    from mtpeft.evaluation.run_eval import evaluate_run

    if split not in ("dev", "test"):
        raise ConfigError(f"--split {split!r}: valid choices: dev, test")
    overrides: dict[str, str] = {}
    for item in data or []:
        task, sep, path = item.partition("=")
        if not sep:
            overrides["__single__"] = item
        else:
            overrides[task] = path
    if "__single__" in overrides:
        from mtpeft.config import load_config
        from mtpeft.model.load import resolve_run

        tasks = load_config(resolve_run(run)[0] / "config.yaml").task_ids()
        if len(tasks) != 1:
            raise ConfigError(f"--data PATH without TASK= needs a one-task run; this run has {tasks}")
        overrides = {tasks[0]: overrides.pop("__single__"), **overrides}
    result = evaluate_run(run, split, overrides, checkpoint)
    from mtpeft.training.checkpoint import describe

    typer.echo(f"{result.run_dir}, split {split}; loaded {describe(run, result.step, checkpoint)}")
    typer.echo(f"  {'task':<24}{'metric':<22}{'value':>10}{'ECE':>8}")
    for task, evaluation in result.tasks.items():
        metrics = evaluation.metrics
        name = headline_metric(task, metrics)
        ece = f"{result.ece[task]:.4f}" if task in result.ece else "-"
        notes = METRIC_NOTES.get(task, {})
        typer.echo(f"  {task:<24}{name:<22}{metrics[name]:>10.4f}{ece:>8}" + (f"  {notes[name]}" if name in notes else ""))
        for key in (k for k in notes if k != name and k in metrics):  # the disorder tasks: CUI-aware and span-only
            typer.echo(f"  {'':<24}{key:<22}{metrics[key]:>10.4f}{'':>8}  {notes[key]}")
        if metrics.get(CUIS_PREDICTED) == 0:
            typer.echo(f"  {'':<24}note: {NORMALISATION_OFF}")
    typer.echo(f"predictions (official formats) in {result.run_dir / 'predictions' / split}")


@app.command()
def predict(
    checkpoint: str = typer.Argument(..., help="a run folder or a checkpoints/step-N folder"),
    task: str = typer.Option(..., "--task", help="task id of the run, or semeval2021t6: subtask 2 (spans and "
                             "techniques) from raw memes through the run's 2021 T6 level 1 and level 2"),
    input: str = typer.Option(..., "--input", help="input in the task's official format (semeval2021t6: a JSON "
                              "file of memes; labels absent, or present and ignored)"),
    output: str = typer.Option(..., "--output", help="where to write the official-format predictions"),
    lenient: bool = typer.Option(False, help="skip (and count) malformed input records"),
) -> None:
    """Predict one task's input and write the predictions in its official format (``mtpeft score`` reads it)."""
    from mtpeft.evaluation.run_eval import predict_file

    path = predict_file(checkpoint, task, input, output, lenient)
    typer.echo(f"wrote {path}")
