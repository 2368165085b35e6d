"""Submitting a sweep's unfinished runs to SLURM with ``submitit`` (one job array).

Each job calls :func:`mtpeft.sweep.execute.run_attempt` on a compute node, so a run there is
started, resumed or restarted, logged and recorded exactly as in a local sweep. The sweep folder
must be on a file system the nodes share. While jobs are queued, do not start a local sweep in the
same folder; ``mtpeft sweep CONFIG --collect`` writes the table from whatever has finished.
"""

from __future__ import annotations

import shutil
from typing import Any

from mtpeft.errors import MtpeftError
from mtpeft.sweep.execute import FINISHED, config_path, run_attempt
from mtpeft.sweep.spec import SweepPlan


def slurm_executor(plan: SweepPlan, parameters: dict[str, Any]):
    """A submitit ``SlurmExecutor`` writing its files under ``<sweep>/slurm``; a clear error without SLURM."""
    if shutil.which("sbatch") is None:
        raise MtpeftError("--submitit-slurm: no SLURM on this machine (sbatch is not on PATH); "
                          "use --print-commands to get one command per run, or --jobs N to run them here")
    import submitit

    executor = submitit.SlurmExecutor(folder=plan.output_dir / "slurm" / "%j")
    try:
        executor.update_parameters(job_name=f"mtpeft-{plan.output_dir.name}", **parameters)
    except (ValueError, TypeError) as error:
        raise MtpeftError(f"sweep.slurm / --slurm-param: {error}") from None
    return executor


def submit(plan: SweepPlan, states: dict[str, str], executor) -> list[tuple[str, Any]]:
    """Submit every unfinished run with ``executor`` (any submitit executor); returns (run, job) pairs."""
    pending = [run for run in plan.runs if states[run.name] != FINISHED]
    jobs = []
    with executor.batch():
        for run in pending:
            jobs.append(executor.submit(run_attempt, str(run.path), str(config_path(plan, run)), states[run.name]))
    return [(run.name, job) for run, job in zip(pending, jobs)]
