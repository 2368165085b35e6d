"""Running a sweep (with a stand-in trainer): skip finished, resume, restart cleanly, isolate crashes,
parallel jobs, the lock, printed commands, SLURM submission through submitit, the results table."""

from __future__ import annotations

import json
import os
import signal
import statistics
import threading
import time

import pytest
import submitit
import yaml
from typer.testing import CliRunner

from mtpeft.cli.main import app
from mtpeft.config import dump_config
from mtpeft.errors import MtpeftError
from mtpeft.sweep import FINISHED, NEW, RESTART, RESUME, collect, execute_local, expand_sweep, prepare
from mtpeft.sweep import execute, slurm
from mtpeft.sweep.collect import table_text
from tests.sweep.fake_train import FAKE_TRAIN, TASKS, TOKENS_PER_S, fake_metric, sweep_config


@pytest.fixture(autouse=True)
def fake_trainer(monkeypatch):
    monkeypatch.setattr(execute, "_ENTRY", FAKE_TRAIN)


def calls(run_dir):
    path = run_dir / "calls.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def _plan(tmp_path, **kwargs):
    plan = expand_sweep(sweep_config(tmp_path / "sweep", **kwargs))
    return plan, prepare(plan)


def test_runs_each_in_its_folder_with_log_record_and_config(tmp_path):
    plan, states = _plan(tmp_path)
    assert set(states.values()) == {NEW}
    outcomes = execute_local(plan, states, echo=lambda line: None)
    assert [o.ok for o in outcomes] == [True] * 4
    for run in plan.runs:
        config_file = plan.output_dir / "configs" / f"{run.name}.yaml"
        assert calls(run.path) == [{"argv": ["train", str(config_file)], "omp": calls(run.path)[0]["omp"]}]
        assert yaml.safe_load(config_file.read_text()) == run.config.model_dump(mode="json")
        assert "fake training of " + run.name in (run.path / "sweep.log").read_text()
        [attempt] = json.loads((run.path / "sweep_run.json").read_text())["attempts"]
        assert attempt["action"] == NEW and attempt["returncode"] == 0 and attempt["peak_rss_mb"] > 1
    summary = yaml.safe_load((plan.output_dir / "sweep.yaml").read_text())
    assert list(summary["runs"]) == [r.name for r in plan.runs]


def test_finished_runs_are_skipped_interrupted_resumed_leftovers_restarted(tmp_path):
    plan, _ = _plan(tmp_path)
    finished, interrupted, leftover, new = plan.runs
    execute_local(plan, {r.name: (NEW if r is finished else FINISHED) for r in plan.runs}, echo=lambda line: None)
    for run in (interrupted, leftover):  # started by an earlier sweep, killed before finishing
        run.path.mkdir(parents=True)
        (run.path / "config.yaml").write_text((plan.output_dir / "configs" / f"{run.name}.yaml").read_text())
        (run.path / "sweep.log").write_text("earlier attempt\n")
    (interrupted.path / "checkpoints" / "last").mkdir(parents=True)
    (leftover.path / "eval").mkdir()
    states = prepare(plan)
    assert [states[r.name] for r in plan.runs] == [FINISHED, RESUME, RESTART, NEW]

    execute_local(plan, states, echo=lambda line: None)
    assert len(calls(finished.path)) == 1  # not run again
    assert calls(interrupted.path)[0]["argv"][-1] == "--resume"
    assert "--resume" not in calls(leftover.path)[0]["argv"] and not (leftover.path / "eval").exists()
    assert (leftover.path / "sweep.log").read_text().startswith("earlier attempt")  # history kept
    assert [prepare(plan)[r.name] for r in plan.runs] == [FINISHED] * 4


def test_a_crash_does_not_stop_the_others_and_the_cli_exits_1(tmp_path):
    data = sweep_config(tmp_path / "sweep", strategies=("s2",))
    data["sweep"]["seeds"] = [7, 0, 1]  # seed 7 crashes
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(data))
    result = CliRunner().invoke(app, ["sweep", str(path), "--no-report", "--resamples", "0"])
    assert result.exit_code == 1, result.output
    assert "s2-seed7: FAILED (exit 3" in result.output and "1 run(s) failed: s2-seed7" in result.output
    root = tmp_path / "sweep"
    assert (root / "s2-seed0" / "final_metrics.json").is_file() and (root / "s2-seed1" / "final_metrics.json").is_file()
    assert json.loads((root / "s2-seed7" / "sweep_run.json").read_text())["attempts"][0]["returncode"] == 3


def test_sigterm_stops_the_runs_and_says_how_to_resume(tmp_path):
    data = sweep_config(tmp_path / "sweep", strategies=("s2",))
    data["sweep"]["seeds"] = [5]
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(data))
    previous = signal.getsignal(signal.SIGTERM)
    timer = threading.Timer(3.0, os.kill, (os.getpid(), signal.SIGTERM))
    timer.start()
    try:
        started = time.monotonic()
        result = CliRunner().invoke(app, ["sweep", str(path)])
    finally:
        timer.cancel()
        signal.signal(signal.SIGTERM, previous)
    assert time.monotonic() - started < 60  # the 120-second run was stopped
    assert result.exit_code == 130, result.output
    assert "s2-seed5: stopped by the interrupt" in result.output
    assert "the same command resumes it" in result.output


def test_parallel_jobs_share_the_cores(tmp_path, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(execute.os, "cpu_count", lambda: 8)
    plan, states = _plan(tmp_path)
    assert all(o.ok for o in execute_local(plan, states, jobs=2, echo=lambda line: None))
    assert {calls(r.path)[0]["omp"] for r in plan.runs} == {"4"}


def test_a_second_sweep_in_the_same_folder_is_refused(tmp_path):
    plan, states = _plan(tmp_path)
    lock = execute.SweepLock(plan.output_dir)
    try:
        with pytest.raises(MtpeftError, match="still running"):
            execute_local(plan, states)
    finally:
        lock.close()


def test_a_folder_holding_another_config_is_an_error(tmp_path):
    plan, states = _plan(tmp_path)
    execute_local(plan, states, echo=lambda line: None)
    changed = expand_sweep(sweep_config(tmp_path / "sweep", max_steps=3))
    with pytest.raises(MtpeftError, match=r"training.max_steps: 2 -> 3"):
        prepare(changed)
    # a run saved before a field existed (here: without evaluation.ece_bins) is the same config at its default
    saved = plan.runs[0].path / "config.yaml"
    data = yaml.safe_load(saved.read_text())
    del data["evaluation"]["ece_bins"]
    saved.write_text(yaml.safe_dump(data))
    assert prepare(plan)[plan.runs[0].name] == FINISHED


def test_print_commands_lists_the_unfinished_runs(tmp_path):
    plan, _ = _plan(tmp_path)
    done, resumable, leftover, new = plan.runs
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep_config(tmp_path / "sweep")))
    for run in (done, resumable, leftover):
        run.path.mkdir(parents=True)
    (done.path / "final_metrics.json").write_text("{}")
    dump_config(resumable.config, resumable.path / "config.yaml")
    (resumable.path / "checkpoints" / "last").mkdir(parents=True)
    (leftover.path / "environment.json").write_text("{}")
    result = CliRunner().invoke(app, ["sweep", str(path), "--print-commands"])
    assert result.exit_code == 0, result.output
    configs = tmp_path / "sweep" / "configs"
    assert result.stdout.splitlines() == [
        f"mtpeft train {configs / 's2-seed1.yaml'} --resume",
        f"rm -rf {leftover.path} && mtpeft train {configs / 's3a-seed0.yaml'}",
        f"mtpeft train {configs / 's3a-seed1.yaml'}",
    ]
    assert not any(calls(r.path) for r in plan.runs)  # nothing ran


def test_slurm_without_slurm_is_a_clear_error(tmp_path, monkeypatch):
    plan, _ = _plan(tmp_path)
    monkeypatch.setattr(slurm.shutil, "which", lambda name: None)
    with pytest.raises(MtpeftError, match="no SLURM on this machine"):
        slurm.slurm_executor(plan, {"partition": "gpu"})


def test_submitted_jobs_run_and_record_like_local_runs(tmp_path):
    plan, states = _plan(tmp_path)
    executor = submitit.DebugExecutor(folder=tmp_path / "submitit")
    submitted = slurm.submit(plan, {**states, "s2-seed0": FINISHED}, executor)
    assert [name for name, _ in submitted] == ["s2-seed1", "s3a-seed0", "s3a-seed1"]
    for name, job in submitted:
        attempt = job.result()  # the debug executor runs the job here, in this process
        assert attempt.returncode == 0
        run_dir = plan.output_dir / name
        assert (run_dir / "final_metrics.json").is_file()
        assert json.loads((run_dir / "sweep_run.json").read_text())["attempts"][0]["action"] == NEW
    assert not calls(plan.output_dir / "s2-seed0")


def test_the_table_has_mean_and_std_over_seeds_with_costs(tmp_path):
    plan, states = _plan(tmp_path, seeds=3)
    execute_local(plan, states, echo=lambda line: None)
    results = collect(plan, bootstrap=None, report=False)
    assert sorted((r.task, r.label) for r in results.rows) == sorted((t, s) for t in TASKS for s in ("s2", "s3a"))
    for row in results.rows:
        expected = [fake_metric(row.label, seed) for seed in range(3)]
        assert row.seeds == [0, 1, 2]
        assert row.mean == pytest.approx(statistics.mean(expected))
        assert row.std == pytest.approx(statistics.stdev(expected))
        assert row.trainable_params == (1000 if row.label == "s2" else 2000)
        assert row.tokens_per_s == TOKENS_PER_S
        recorded = [json.loads((plan.output_dir / f"{row.label}-seed{s}" / "sweep_run.json").read_text())
                    ["attempts"][0]["peak_rss_mb"] for s in range(3)]
        assert row.peak_memory_mb == max(recorded)  # the fake trainer logs none: the sweep's record
    lines = (plan.output_dir / "results.csv").read_text().splitlines()
    assert len(lines) == 1 + len(results.rows)
    assert "| semeval2014t7 | s3a | 3 | strict_f1 |" in table_text(results)
