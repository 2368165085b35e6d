"""``mtpeft report RUN_DIR [RUN_DIR ...] --out report.html``: the study report from run folders."""

from __future__ import annotations

from pathlib import Path

import typer

from mtpeft.cli.main import app
from mtpeft.errors import MtpeftError


@app.command("report")
def report_command(
    run_dirs: list[Path] = typer.Argument(..., help="Run folders, or folders holding run folders (a sweep)."),
    out: Path = typer.Option(Path("report.html"), "--out", help="The HTML page; report.md and report_files/ go beside it."),
    bins: int | None = typer.Option(None, "--bins", min=1, help="ECE bins (default: the runs' evaluation.ece_bins)."),
    resamples: int = typer.Option(1000, "--resamples", min=0, help="Bootstrap resamples for confidence intervals (0: none)."),
    confidence: float = typer.Option(0.95, "--confidence", min=0.5, max=0.999, help="Confidence level of the intervals."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap resampling."),
) -> None:
    """Write one self-contained HTML report (tables, curves, conflicts, calibration, transfer, probing) and its Markdown twin."""
    from mtpeft.evaluation.report.build import build_report
    from mtpeft.evaluation.results import BootstrapOptions

    options = BootstrapOptions(resamples, confidence, seed) if resamples > 0 else None
    try:
        files = build_report(run_dirs, out, bins=bins, bootstrap=options)
    except MtpeftError as err:
        typer.echo(f"mtpeft: error: {err}", err=True)
        raise typer.Exit(code=2) from None
    typer.echo(f"{files.runs} run(s), {files.skipped} skipped -> {files.html}, {files.markdown} (images and tables in {files.assets})")
