"""The issue's acceptance test on the tiny backbone: a 2-seed sweep of S2 vs S3a on the samples runs,
is killed (the whole process group, as Ctrl-C or a scheduler would), resumes, and writes the table
and the report."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import yaml

from mtpeft.sweep import FINISHED, RESUME, expand_sweep, prepare
from tests.sweep.fake_train import sweep_config

TASKS = ("semeval2014t7", "semeval2017t3", "semeval2021t6_level2")
SWEEP = [sys.executable, "-c", "import sys; from mtpeft.cli.main import main; sys.argv[0] = 'mtpeft'; main()", "sweep"]


def _interrupted(root):
    """A run folder that has a checkpoint to resume from and is not finished, or None."""
    for run in sorted(root.glob("*-seed*")):
        if (run / "checkpoints" / "last").exists() and not (run / "final_metrics.json").exists():
            return run
    return None


def test_two_seed_sweep_is_killed_resumes_and_writes_table_and_report(tmp_path):
    root = tmp_path / "sweep"
    data = sweep_config(root, strategies=("s2", "s3a"), seeds=2, tasks=TASKS,
                        max_steps=40, checkpoint_every=4, eval_every=1000, log_every=2)
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(data))
    command = [*SWEEP, str(path), "--resamples", "100"]

    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 240
    killed = None
    while killed is None and first.poll() is None and time.monotonic() < deadline:
        killed = _interrupted(root)
        time.sleep(0.05)
    assert killed is not None, f"no run reached a checkpoint: {first.communicate()[0].decode()[-2000:]}"
    os.killpg(first.pid, signal.SIGKILL)  # the sweep and its training process, mid-run
    first.wait()

    plan = expand_sweep(data)
    states = prepare(plan)
    assert states[killed.name] == RESUME
    before = dict(states)

    second = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert set(prepare(plan).values()) == {FINISHED}
    for name, state in before.items():
        attempts = json.loads((root / name / "sweep_run.json").read_text())["attempts"]
        if state == FINISHED:
            assert f"{name}: finished, skipped" in second.stdout
        else:
            assert attempts[-1]["action"] == state and attempts[-1]["returncode"] == 0
    resumed = json.loads((killed / "environment.json").read_text())
    assert "resumed" in resumed  # continued from its checkpoint, not started over
    steps = [json.loads(line)["step"] for line in (killed / "train_log.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)) and steps[-1] == 40

    rows = [line for line in (root / "results.md").read_text().splitlines() if line.startswith("| semeval")]
    assert sorted(line.split(" | ")[:3] for line in rows) == sorted(
        [f"| {t}", s, "2"] for t in TASKS for s in ("s2", "s3a"))
    for line in rows:
        assert " ± " in line and "n/a |" not in line.split(" | ")[6]  # trainable params present
    assert (root / "report.html").is_file() and (root / "report.md").is_file()
    assert "results.md" in second.stdout and "report.html" in second.stdout
