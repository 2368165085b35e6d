"""``mtpeft data stats TASK PATH``: what a data folder holds for a task and what encoding costs."""

from __future__ import annotations

import json
from pathlib import Path

import typer
import yaml

from mtpeft.cli.main import app
from mtpeft.errors import ConfigError, MtpeftError
from mtpeft.registry import UnknownNameError
from mtpeft.tasks.base import Task
from mtpeft.tasks.from_config import task_from_config
from mtpeft.tasks.registry import TASKS
from mtpeft.tasks.stats import data_stats, format_stats

data_app = typer.Typer(help="Inspect task data.", no_args_is_help=True)
app.add_typer(data_app, name="data")


def _parse_option(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ConfigError(f"option {text!r}; expected KEY=VALUE (e.g. max_length=256)")
    return key, yaml.safe_load(value)


def build_task(task: str, options: list[str]) -> Task:
    """A task from a registered id or a YAML/JSON task config file, with ``KEY=VALUE`` options."""
    overrides = dict(_parse_option(o) for o in options)
    path = Path(task)
    if path.suffix in (".yaml", ".yml", ".json") and path.is_file():
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(config, dict):
            raise ConfigError(f"{path}: a task config must be a mapping, got {type(config).__name__}")
        return task_from_config({**config, **overrides})
    return task_from_config({"id": task, **overrides})


def _load_tokenizer(name: str) -> object:
    from mtpeft.backbone.loading import load_tokenizer

    tokenizer = load_tokenizer(name)
    if tokenizer is None:
        raise ConfigError(f"model {name!r} has no tokenizer; use 'embedded' or a local Hugging Face folder")
    return tokenizer


@data_app.command("stats")
def stats_command(
    task: str = typer.Argument(..., help=f"Task id ({', '.join(TASKS.names())}) or a task config file (.yaml/.json)."),
    path: Path = typer.Argument(..., help="Data file or folder in the task's format."),
    lenient: bool = typer.Option(False, "--lenient", help="Skip bad records (listed) instead of stopping."),
    tokenizer: str = typer.Option(
        "embedded", "--tokenizer", help="Tokenizer for lengths and encoding ('none' to skip)."
    ),
    option: list[str] = typer.Option(
        [], "--option", "-o", help="Task option KEY=VALUE (repeatable), e.g. max_length=256."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of text."),
    train: Path = typer.Option(
        None, "--train", help="The task's training data: CUIs unseen in training (2014 T7, 2015 T14), fitted classes."
    ),
) -> None:
    """Documents, labels and their distribution, discontiguous/overlapping mentions, examples,
    token-length percentiles, encoding losses and the label-scheme round trip."""
    try:
        built = build_task(task, option)
        loaded = None if tokenizer == "none" else _load_tokenizer(tokenizer)
        stats = data_stats(built, path, lenient=lenient, tokenizer=loaded, train=train)
    except (MtpeftError, UnknownNameError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(code=2) from None
    typer.echo(json.dumps(stats, ensure_ascii=False, indent=2) if as_json else format_stats(stats))
