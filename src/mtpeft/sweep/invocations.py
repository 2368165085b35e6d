"""``<sweep>/sweep_invocations.jsonl``: one line per ``mtpeft sweep`` invocation that ran runs.

The results file (:mod:`mtpeft.sweep.results_file`) reads it for the machine the runs ran on and
how long the sweep took: the command, start and end (UTC), wall seconds, ``--jobs``, the threads
each run got (``OMP_NUM_THREADS``), the CPU and its cores, the host, and whether it was stopped.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mtpeft.sweep.execute import _child_env as child_env  # the environment each run gets
from mtpeft.sweep.results_file import INVOCATIONS_FILE, cpu_model


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


@contextmanager
def record_invocation(folder: Path, jobs: int, command: str) -> Iterator[None]:
    """Append this invocation's line to ``folder/sweep_invocations.jsonl`` when it ends (also when stopped)."""
    started, begin = _now(), time.perf_counter()
    stopped = True
    try:
        yield
        stopped = False
    finally:
        record = {
            "command": command, "started": started, "ended": _now(),
            "wall_s": round(time.perf_counter() - begin, 1), "jobs": jobs,
            "omp_num_threads": child_env(jobs).get("OMP_NUM_THREADS"), "cpu": cpu_model(),
            "cores": os.cpu_count(), "host": socket.gethostname(), "stopped": stopped,
        }
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / INVOCATIONS_FILE).open("a") as handle:
            handle.write(json.dumps(record) + "\n")
