"""``mtpeft score TASK --gold PATH --pred PATH [--json]``: official scores of a prediction file."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from mtpeft.cli.main import app
from mtpeft.errors import MtpeftError
from mtpeft.evaluation.score import SCORERS, format_table, score


@app.command("score")
def score_command(
    task: str = typer.Argument(..., help=f"Task id: {', '.join(SCORERS.names())}."),
    gold: Path = typer.Option(..., "--gold", help="Official-format gold file or folder."),
    pred: Path = typer.Option(..., "--pred", help="Official-format prediction file or folder."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of a table."),
) -> None:
    """Score predictions against gold exactly as the task's official scorer does (no model needed)."""
    try:
        scores = score(task, gold, pred)
    except MtpeftError as err:
        typer.echo(f"mtpeft: error: {err}", err=True)
        raise typer.Exit(code=2) from None
    if as_json:
        typer.echo(json.dumps(scores, sort_keys=True, ensure_ascii=False))
    else:
        typer.echo(format_table(task, scores))
