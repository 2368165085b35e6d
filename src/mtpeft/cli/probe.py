"""``mtpeft probe RUN_DIR``: linear probes on the shared, private and fused representations."""

from __future__ import annotations

import typer

from mtpeft.cli.main import app


@app.command()
def probe(
    run: str = typer.Argument(..., help="a run folder or a checkpoints/step-N folder"),
    checkpoint: str = typer.Option("best", help="best or last"),
    max_examples: int = typer.Option(200, min=1, help="at most this many windows per task and split"),
) -> None:
    """Train linear probes (train split) and score them (dev split); writes probing.json in the run."""
    from mtpeft.errors import ConfigError
    from mtpeft.evaluation.probing import run_probes, write_probing
    from mtpeft.model.load import load_trained, resolve_run

    from mtpeft.training.checkpoint import describe

    config, built, step = load_trained(run, checkpoint)
    typer.echo(f"loaded {describe(run, step, checkpoint)}")
    tokenizer = built.backbone.tokenizer
    train, dev = {}, {}
    for tc in config.tasks:
        if tc.train is None or tc.dev is None:
            continue
        task = built.tasks[tc.id]
        train[tc.id] = task.encode(task.read(tc.train, lenient=tc.lenient).documents, tokenizer).features[:max_examples]
        dev[tc.id] = task.encode(task.read(tc.dev, lenient=tc.lenient).documents, tokenizer).features[:max_examples]
    if not train:
        raise ConfigError("probing needs tasks with both train and dev paths in the run's config")
    tasks = {t: built.tasks[t] for t in train}
    result = run_probes(built.model, tasks, train, dev, config.evaluation.batch_size)
    run_dir = resolve_run(run)[0]
    write_probing(result, run_dir / "probing.json")
    names = sorted(tasks)
    typer.echo(f"probe accuracy on dev (checkpoint step {step}); rows: representation, columns: task")
    width = max(len(t) for t in names) + 2
    typer.echo(f"  {'representation':<36}" + "".join(f"{t:>{width}}" for t in names))
    rows = {**result.accuracy, "majority class (floor)": result.majority}
    for rep, accuracies in rows.items():
        typer.echo(f"  {rep:<36}" + "".join(f"{accuracies[t]:>{width}.3f}" if t in accuracies else f"{'-':>{width}}" for t in names))
    for task, why in result.not_probed.items():
        typer.echo(f"  not probed: {task}: {why}")
    typer.echo(f"written: {run_dir / 'probing.json'}")
