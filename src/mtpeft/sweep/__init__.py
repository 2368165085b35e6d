"""Sweeps: strategies x ablations x seeds expanded into runs, run resumably, summarised in one table.

``spec`` reads and expands sweep configs, ``execute`` runs them locally (or prints the commands),
``slurm`` submits them with submitit, ``collect`` writes the results table and the report.
"""

from mtpeft.sweep.collect import SweepResults, collect, table_text
from mtpeft.sweep.execute import (
    FINISHED,
    NEW,
    RESTART,
    RESUME,
    Attempt,
    Outcome,
    commands,
    execute_local,
    prepare,
    run_attempt,
    run_state,
)
from mtpeft.sweep.spec import SweepPlan, SweepRun, expand_sweep, load_sweep

__all__ = [
    "FINISHED", "NEW", "RESTART", "RESUME", "Attempt", "Outcome", "SweepPlan", "SweepResults", "SweepRun",
    "collect", "commands", "execute_local", "expand_sweep", "load_sweep", "prepare", "run_attempt",
    "run_state", "table_text",
]  # fmt: skip
