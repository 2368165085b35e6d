"""Running a sweep's runs: each one ``mtpeft train <its config>`` in its own process.

A run's state is read from its folder: ``final_metrics.json`` means finished (skipped);
``checkpoints/last`` means interrupted after a checkpoint (resumed with ``--resume``, which ends
as an uninterrupted run would); anything else left by an earlier attempt is removed and the run
restarted (the trainer refuses to start over an existing run). A folder whose saved
``config.yaml`` differs from the sweep's config for it is an error, never silently reused.

Each run's output goes to ``<run>/sweep.log`` (appended, one header per attempt) and each attempt
is recorded in ``<run>/sweep_run.json``: action, command, exit code, wall time and the peak
resident memory of the training process, taken by the parent from ``os.wait4`` (the kernel's
``ru_maxrss`` of that child; CPU memory, not GPU memory).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from mtpeft.config import config_from_dict, dump_config
from mtpeft.errors import MtpeftError
from mtpeft.sweep.spec import SweepPlan, SweepRun
from mtpeft.training.run_folder import CONFIG_FILE, config_differences

FINISHED, RESUME, RESTART, NEW = "finished", "resume", "restart", "new"
LOG_FILE = "sweep.log"
RECORD_FILE = "sweep_run.json"
_KEEP = {LOG_FILE, RECORD_FILE}  # what a clean restart keeps: the history of earlier attempts

# The training process runs with the sweep's own interpreter, so it uses the same environment.
_ENTRY = "import sys; from mtpeft.cli.main import main; sys.argv[0] = 'mtpeft'; main()"


def config_path(plan: SweepPlan, run: SweepRun) -> Path:
    """Where the sweep writes ``run``'s resolved config (outside the run folder)."""
    return plan.output_dir / "configs" / f"{run.name}.yaml"


def run_state(run_dir: Path) -> str:
    """``finished``, ``resume`` (a checkpoint to continue from), ``restart`` (leftovers) or ``new``."""
    if (run_dir / "final_metrics.json").is_file():
        return FINISHED
    if (run_dir / CONFIG_FILE).is_file() and (run_dir / "checkpoints" / "last").exists():
        return RESUME
    if run_dir.is_dir() and any(p.name not in _KEEP for p in run_dir.iterdir()):
        return RESTART
    return NEW


def _check_same_config(run: SweepRun) -> None:
    saved_path = run.path / CONFIG_FILE
    if not saved_path.is_file():
        return
    # Validated first, so a field added to the schema since (saved without it) compares as its default.
    saved = config_from_dict(yaml.safe_load(saved_path.read_text()) or {}, str(saved_path))
    differences = config_differences(saved.model_dump(mode="json"), run.config.model_dump(mode="json"))
    if differences:
        raise MtpeftError(f"{run.path} holds a run of a different config ({'; '.join(differences[:5])}"
                          f"{'; ...' if len(differences) > 5 else ''}); use another output_dir or remove it")


def prepare(plan: SweepPlan) -> dict[str, str]:
    """Check every existing run folder against its config, write the configs; return each run's state."""
    for run in plan.runs:
        _check_same_config(run)
    plan.output_dir.mkdir(parents=True, exist_ok=True)
    (plan.output_dir / "configs").mkdir(exist_ok=True)
    for run in plan.runs:
        dump_config(run.config, config_path(plan, run))
    summary = {"source": plan.source, "config": plan.data, "seeds": plan.section.seeds,
               "runs": {r.name: {"label": r.label, "seed": r.seed, "overrides": r.overrides} for r in plan.runs}}
    if plan.ablation_explanation:
        summary["ablations"] = {"ranks": plan.ablation_ranks, "explanation": plan.ablation_explanation}
    (plan.output_dir / "sweep.yaml").write_text(yaml.safe_dump(summary, sort_keys=False))
    return {run.name: run_state(run.path) for run in plan.runs}


def train_argv(config: Path, resume: bool) -> list[str]:
    """``mtpeft train`` arguments for a run (without the program)."""
    return ["train", str(config), *(["--resume"] if resume else [])]


def clean_for_restart(run_dir: Path) -> None:
    """Remove what an unfinished attempt without a checkpoint left, keeping the sweep's log and record."""
    for path in run_dir.iterdir():
        if path.name in _KEEP:
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


@dataclass
class Attempt:
    action: str
    command: list[str]
    returncode: int
    wall_s: float
    peak_rss_mb: float | None
    started: str
    host: str


def _peak_rss_mb(rusage) -> float:
    # ru_maxrss is in KiB on Linux, in bytes on macOS
    return rusage.ru_maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024)


def record_attempt(run_dir: Path, attempt: Attempt) -> None:
    """Append ``attempt`` to ``<run>/sweep_run.json`` (written atomically)."""
    path = run_dir / RECORD_FILE
    record = json.loads(path.read_text()) if path.is_file() else {"attempts": []}
    record["attempts"].append(asdict(attempt))
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=2))
    os.replace(tmp, path)


def run_attempt(run_dir: str | Path, config: str | Path, action: str, env: dict[str, str] | None = None,
                on_start: Callable[[subprocess.Popen], None] | None = None, pass_fds: Sequence[int] = ()) -> Attempt:
    """Start (``new``/``restart``) or resume one run as a child process; wait, record and return the attempt.

    Also the function submitted to SLURM, so runs there are recorded the same way.
    """
    run_dir = Path(run_dir)
    if action == RESTART:
        clean_for_restart(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    argv = train_argv(Path(config), resume=action == RESUME)
    started = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    with (run_dir / LOG_FILE).open("a", encoding="utf-8") as log:
        log.write(f"\n=== {started} {action}: mtpeft {' '.join(argv)}\n")
        log.flush()
        begin = time.perf_counter()
        child = subprocess.Popen([sys.executable, "-c", _ENTRY, *argv], stdout=log, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, env=env, pass_fds=tuple(pass_fds))
        if on_start is not None:
            on_start(child)
        _, status, usage = os.wait4(child.pid, 0)  # the child's own rusage, unlike RUSAGE_CHILDREN
        child.returncode = os.waitstatus_to_exitcode(status)
    attempt = Attempt(action, ["mtpeft", *argv], child.returncode, round(time.perf_counter() - begin, 3),
                      round(_peak_rss_mb(usage), 1), started, socket.gethostname())
    record_attempt(run_dir, attempt)
    return attempt


class SweepLock:
    """An exclusive ``flock`` on ``<sweep>/.sweep.lock``; children inherit it, so the lock is held
    until the sweep and every run it started are gone (a second sweep in the folder is refused)."""

    def __init__(self, folder: Path) -> None:
        import fcntl

        folder.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(folder / ".sweep.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            raise MtpeftError(f"another sweep (or a run it started) is still running in {folder}") from None

    def close(self) -> None:
        os.close(self.fd)


@dataclass
class Outcome:
    name: str
    state: str  # before this invocation
    attempt: Attempt | None  # None: skipped (finished) or not started (stopped)

    @property
    def ok(self) -> bool:
        return self.state == FINISHED if self.attempt is None else self.attempt.returncode == 0


def _child_env(jobs: int) -> dict[str, str]:
    env = dict(os.environ)
    if jobs > 1 and "OMP_NUM_THREADS" not in env:  # N parallel runs share the cores instead of oversubscribing
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // jobs))
    return env


def execute_local(plan: SweepPlan, states: dict[str, str], jobs: int = 1,
                  echo: Callable[[str], None] = print) -> list[Outcome]:
    """Run every unfinished run, ``jobs`` at a time; a failing run does not stop the others.

    On KeyboardInterrupt or SIGTERM (turned into KeyboardInterrupt by the CLI) the running
    children are terminated and the exception re-raised; their checkpoints make them resumable.
    """
    if jobs < 1:
        raise MtpeftError("--jobs must be >= 1")
    lock = SweepLock(plan.output_dir)
    live: set[subprocess.Popen] = set()
    guard = threading.Lock()
    stopping = threading.Event()
    env = _child_env(jobs)
    todo = [r for r in plan.runs if states[r.name] != FINISHED]
    outcomes = {r.name: Outcome(r.name, states[r.name], None) for r in plan.runs}
    for run in plan.runs:
        if states[run.name] == FINISHED:
            echo(f"  {run.name}: finished, skipped")

    def started(child: subprocess.Popen) -> None:
        with guard:
            live.add(child)
            if stopping.is_set():
                child.terminate()

    def one(index: int, run: SweepRun) -> None:
        if stopping.is_set():
            return
        state = states[run.name]
        echo(f"  [{index}/{len(todo)}] {run.name}: {'resuming' if state == RESUME else 'starting'}"
             f"{' (cleaned an unfinished attempt)' if state == RESTART else ''}")
        attempt = run_attempt(run.path, config_path(plan, run), state, env, started, pass_fds=(lock.fd,))
        with guard:
            live.difference_update({c for c in live if c.returncode is not None})
        outcomes[run.name].attempt = attempt
        if attempt.returncode == 0:
            verdict = "done"
        elif stopping.is_set():
            verdict = f"stopped by the interrupt (exit {attempt.returncode}; running the sweep again resumes it)"
        else:
            verdict = f"FAILED (exit {attempt.returncode}; log {run.path / LOG_FILE})"
        echo(f"  {run.name}: {verdict} in {attempt.wall_s:.0f} s, peak RSS {attempt.peak_rss_mb:.0f} MB")

    pool = ThreadPoolExecutor(max_workers=jobs)
    try:
        futures = [pool.submit(one, i, run) for i, run in enumerate(todo, start=1)]
        for future in futures:
            while not future.done():  # short waits keep the main thread responsive to signals
                time.sleep(0.2)
            future.result()
    except BaseException:
        stopping.set()
        with guard:
            for child in live:
                if child.returncode is None:
                    child.send_signal(signal.SIGTERM)
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        pool.shutdown(wait=True)
        lock.close()
    return [outcomes[r.name] for r in plan.runs]


def commands(plan: SweepPlan, states: dict[str, str]) -> list[str]:
    """One shell command per unfinished run (a leftover without checkpoint is removed first)."""
    lines = []
    for run in plan.runs:
        state = states[run.name]
        if state == FINISHED:
            continue
        command = shlex.join(["mtpeft", *train_argv(config_path(plan, run), resume=state == RESUME)])
        if state == RESTART:
            command = f"rm -rf {shlex.quote(str(run.path))} && {command}"
        lines.append(command)
    return lines
