"""``mtpeft train``: the before/after table, the report in the run folder, refusing and replacing a run."""

from __future__ import annotations

import json
import logging

import pytest
import yaml
from typer.testing import CliRunner

from mtpeft.cli.main import app
from mtpeft.errors import MtpeftError
from mtpeft.samples import sample_path

TASKS = ("semeval2017t3", "semeval2021t6_level1")


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "demo.yaml"
    path.write_text(yaml.safe_dump({
        "seed": 0,
        "output_dir": str(tmp_path / "run"),
        "model": {"backbone": "tiny"},
        "strategy": {"name": "s3a", "fusion": "gated", "lora_dropout": 0.0},
        "tasks": [{"id": t, "train": str(sample_path(t, "train")), "dev": str(sample_path(t, "dev")),
                   "options": {"max_length": 48}, "limit": 4} for t in TASKS],
        "training": {"max_steps": 2, "batch_size": 4, "eval_every": 100, "checkpoint_every": 100,
                     "tensorboard": False, "conflict_every": 0},
        "evaluation": {"before_training": True, "report": True},
    }))
    return path


def test_train_prints_before_and_after_and_writes_the_report(config, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="mtpeft")
    result = CliRunner().invoke(app, ["train", str(config)])
    assert result.exit_code == 0, result.output
    progress = [r.getMessage() for r in caplog.records if r.name.startswith("mtpeft")]
    assert progress[0] == "evaluating the untrained model on dev (2 tasks)"
    assert any(m.startswith("step 1/2  loss ") for m in progress), progress
    assert progress[-1] == "evaluating on dev at step 2 (final)"
    run = tmp_path / "run"
    final = json.loads((run / "final_metrics.json").read_text())
    lines = result.output.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split() == ["task", "metric", "before", "after"])
    rows = {line.split()[0]: line.split() for line in lines[header + 2:header + 2 + len(TASKS)]}
    assert set(rows) == set(TASKS)
    for task, (_, metric, before, after) in rows.items():  # the printed figures are the saved ones
        assert float(before) == pytest.approx(final["before_training"][task][metric], abs=5e-5)
        assert float(after) == pytest.approx(final["tasks"][task][metric], abs=5e-5)
    html, markdown = run / "report.html", run / "report.md"
    assert html.is_file() and markdown.is_file() and f"report: {html}" in result.output
    assert all(task in markdown.read_text() for task in TASKS)


def test_a_second_run_is_refused_unless_overwrite(config, tmp_path):
    assert CliRunner().invoke(app, ["train", str(config), "evaluation.report=false"]).exit_code == 0
    refused = CliRunner().invoke(app, ["train", str(config), "evaluation.report=false"])
    assert isinstance(refused.exception, MtpeftError) and "--overwrite" in str(refused.exception)
    again = CliRunner().invoke(app, ["train", str(config), "evaluation.report=false", "--overwrite"])
    assert again.exit_code == 0, again.output
    assert not (tmp_path / "run" / "report.html").exists()
