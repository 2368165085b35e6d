"""``mtpeft sweep CONFIG [key=value ...] [--seeds N] [--jobs N] [--print-commands] [--submitit-slurm]``."""

from __future__ import annotations

import shlex
import signal

import typer

from mtpeft.cli.main import app


def _interrupt(signum, frame):  # SIGTERM ends the sweep like Ctrl-C: its runs are stopped, resumable
    raise KeyboardInterrupt(f"signal {signum}")


def _parse_params(items: list[str]) -> dict:
    from mtpeft.config import apply_overrides

    return apply_overrides({}, items)


@app.command()
def sweep(
    config: str = typer.Argument(..., help="a sweep config: a run config plus a `sweep:` section (see configs/)"),
    overrides: list[str] = typer.Argument(None, help="dotted overrides for the base and sweep.*, e.g. training.max_steps=20"),
    seeds: int | None = typer.Option(None, "--seeds", min=1, help="seeds 0..N-1 (replaces sweep.seeds)"),
    jobs: int = typer.Option(1, "--jobs", min=1, help="runs in parallel on this machine"),
    print_commands: bool = typer.Option(False, "--print-commands", help="print one `mtpeft train` command per unfinished run; run nothing"),
    submitit_slurm: bool = typer.Option(False, "--submitit-slurm", help="submit the unfinished runs to SLURM (job array) with submitit"),
    slurm_param: list[str] = typer.Option([], "--slurm-param", help="submitit SLURM parameter KEY=VALUE (e.g. partition=gpu gpus_per_node=1); adds to sweep.slurm"),
    collect_only: bool = typer.Option(False, "--collect", help="run nothing: write the table and report from the finished runs"),
    report: bool = typer.Option(True, "--report/--no-report", help="write report.html and report.md at the end"),
    resamples: int = typer.Option(1000, "--resamples", min=0, help="bootstrap resamples for the table's intervals (0: none)"),
    results_file: str | None = typer.Option(None, "--results", help="also write this committed results file (Markdown + JSON beside it) with the published reference points; default: the config's sweep.results.file"),
) -> None:
    """Run strategies x ablations x seeds, each in its own folder; resumable; ends with the results table."""
    from mtpeft.evaluation.results import BootstrapOptions
    from mtpeft.sweep import FINISHED, collect, commands, execute_local, load_sweep, prepare, table_text
    from mtpeft.sweep.invocations import record_invocation

    plan = load_sweep(config, overrides or [], seeds)
    command = shlex.join(["mtpeft", "sweep", config, *(overrides or []), *(["--seeds", str(seeds)] if seeds else []),
                          *(["--jobs", str(jobs)] if jobs != 1 else []), *(["--collect"] if collect_only else [])])
    states = prepare(plan)
    counts = {s: sum(1 for v in states.values() if v == s) for s in dict.fromkeys(states.values())}
    typer.echo(f"sweep {plan.output_dir}: {len(plan.runs)} runs ({', '.join(f'{n} {s}' for s, n in counts.items())})",
               err=print_commands)
    if plan.ablation_explanation:
        typer.echo(f"ablation ranks: {plan.ablation_explanation}", err=print_commands)
    if print_commands:
        for line in commands(plan, states):
            typer.echo(line)
        return
    if submitit_slurm:
        from mtpeft.sweep.slurm import slurm_executor, submit

        executor = slurm_executor(plan, {**plan.section.slurm, **_parse_params(slurm_param)})
        for name, job in submit(plan, states, executor):
            typer.echo(f"  {name}: SLURM job {job.job_id}")
        typer.echo(f"when the jobs are done: mtpeft sweep {config} --collect")
        return
    failed = []
    if not collect_only:
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            with record_invocation(plan.output_dir, jobs, command):
                outcomes = execute_local(plan, states, jobs, echo=typer.echo)
        except KeyboardInterrupt:
            typer.echo(f"sweep interrupted; the same command resumes it (finished runs are skipped, "
                       f"interrupted ones resume from checkpoints/last): mtpeft sweep {config} ...", err=True)
            raise typer.Exit(code=130) from None
        failed = [o.name for o in outcomes if not o.ok]
    bootstrap = BootstrapOptions(n_resamples=resamples) if resamples > 0 else None
    options = plan.section.results
    target = results_file or (options.file if options else None)
    publish = bool(target)
    results = collect(plan, bootstrap, report=report and not publish)
    typer.echo("\n" + table_text(results))
    written = [str(p) for p in results.files.values()] + ([str(results.report)] if results.report else [])
    if publish and results.rows:
        from mtpeft.sweep.collect import sweep_report
        from mtpeft.sweep.publish import write_results_file
        from mtpeft.sweep.results_report import study_section

        gpu_config = options.gpu_config if options else None
        published = write_results_file(plan, results, target, command, bootstrap, gpu_config)
        written += [str(p) for p in published.paths()]
        page = sweep_report(plan, bootstrap, leading=[study_section(published)]) if report else None
        written += [str(page)] if page else []
    if written:
        typer.echo(f"\nwritten: {', '.join(written)}")
    if failed:
        typer.echo(f"{len(failed)} run(s) failed: {', '.join(failed)}; `mtpeft sweep {config}` again resumes them", err=True)
        raise typer.Exit(code=1)
    unfinished = [n for n, s in states.items() if s != FINISHED]
    if collect_only and unfinished:
        typer.echo(f"{len(unfinished)} run(s) not finished yet: {', '.join(unfinished)}", err=True)
