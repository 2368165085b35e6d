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


def _quiet_known_warnings() -> None:
    # bitsandbytes warns at import on CPUs with AVX512-BF16 that it could not fetch an optimised
    # 4-bit kernel from the Hugging Face Hub (package `kernels`). mtpeft never downloads at run
    # time, so its own fallback path is the intended one; the warning only alarms users.
    import logging

    logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
    # Raised inside PEFT (peft 0.21 calls a transformers property deprecated in transformers 5).
    import warnings

    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)


def _progress_to_stderr() -> None:
    """mtpeft's progress lines (logger ``mtpeft``, INFO) go to stderr, one message a line."""
    import logging

    logger = logging.getLogger("mtpeft")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def main() -> None:
    """Console entry point: the user's mistakes (MtpeftError) print one line and exit 2."""
    _quiet_known_warnings()
    _progress_to_stderr()
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
from mtpeft.cli import sweep as _sweep  # noqa: E402,F401  (registers `mtpeft sweep`)
