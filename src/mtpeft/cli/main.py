"""The ``mtpeft`` command line. Each concern registers its commands from its own module."""

from __future__ import annotations

import sys

import typer

from mtpeft.errors import MtpeftError

app = typer.Typer(
    name="mtpeft",
    help="Multi-task parameter-efficient fine-tuning of decoder LLMs for information extraction.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def main() -> None:
    """Console entry point: the user's mistakes (MtpeftError) print one line and exit 2."""
    try:
        app()
    except MtpeftError as error:
        typer.echo(f"mtpeft: error: {error}", err=True)
        sys.exit(2)


from mtpeft.cli import params as _params  # noqa: E402,F401  (registers `mtpeft params`, `mtpeft inspect`)
from mtpeft.cli import score as _score  # noqa: E402,F401  (registers `mtpeft score`)
from mtpeft.cli import data as _data  # noqa: E402,F401  (registers `mtpeft data stats`)
from mtpeft.cli import report as _report  # noqa: E402,F401  (registers `mtpeft report`)
from mtpeft.cli import train as _train  # noqa: E402,F401  (registers `mtpeft train`)
from mtpeft.cli import evaluate as _evaluate  # noqa: E402,F401  (registers `mtpeft evaluate`, `mtpeft predict`)
from mtpeft.cli import probe as _probe  # noqa: E402,F401  (registers `mtpeft probe`)
