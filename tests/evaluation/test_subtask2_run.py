"""Subtask 2 end to end on the real 2021 T6 files: train both levels (tiny model), evaluate, predict, score."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mtpeft.cli.main import app
from mtpeft.config import config_from_dict
from mtpeft.evaluation.score import score
from mtpeft.evaluation.thresholds import DECODING_FILE
from mtpeft.testing import require_shared_data
from mtpeft.training.run import train

LEVELS = ("semeval2021t6_level1", "semeval2021t6_level2")


@pytest.fixture(scope="module")
def real_run(tmp_path_factory) -> tuple[Path, Path]:
    folder = require_shared_data("semeval2021t6")
    run = tmp_path_factory.mktemp("subtask2") / "run"
    train_file, dev = folder / "training_set_task2.txt", folder / "dev_set_task2.txt"
    config = config_from_dict({
        "seed": 0, "output_dir": str(run), "model": {"backbone": "tiny"}, "strategy": {"name": "s3a"},
        "tasks": [{"id": t, "train": str(train_file), "dev": str(dev), "limit": 12, "options": {"max_length": 48}}
                  for t in LEVELS],
        "training": {"max_steps": 2, "batch_size": 4, "eval_every": 2, "checkpoint_every": 2, "log_every": 1,
                     "tensorboard": False},
    })
    train(config)
    return run, dev


def test_training_reports_the_subtask2_row_and_bounded_level1(real_run) -> None:
    run, _ = real_run
    final = json.loads((run / "final_metrics.json").read_text())["tasks"]
    assert set(final) == {*LEVELS, "semeval2021t6"}
    row = final["semeval2021t6"]
    assert {"precision", "recall", "f1", "most_frequent_f1", "level2_threshold"} <= set(row)
    assert all(0.0 <= final["semeval2021t6_level1"][k] <= 1.0 for k in ("precision", "recall", "f1"))
    recorded = json.loads((run / DECODING_FILE).read_text())["semeval2021t6_level2"]
    assert recorded["2"]["threshold"] == row["level2_threshold"] == final["semeval2021t6_level2"]["threshold"]


def test_the_subtask2_row_reaches_the_results_table_and_the_report(real_run) -> None:
    from mtpeft.evaluation.report.run_folder import find_runs, group_runs
    from mtpeft.evaluation.report.tables import per_task_section
    from mtpeft.evaluation.results import BootstrapOptions, results_table

    run, _ = real_run  # before the test below re-evaluates the run on the whole dev file
    runs, _ = find_runs([run])
    rows, notes = results_table(group_runs(runs), BootstrapOptions(n_resamples=50))
    row = next(r for r in rows if r.task == "semeval2021t6")
    final = json.loads((run / "final_metrics.json").read_text())["tasks"]["semeval2021t6"]
    assert row.headline == "f1" and row.mean == final["f1"]
    assert row.ci is not None  # its per-document statistics reproduce the row (else a note says so)
    assert not [n for n in notes if "semeval2021t6" in n]
    level2 = next(r for r in rows if r.task == "semeval2021t6_level2")
    assert level2.headline == "oracle_span_f1"
    tables = [b for b in per_task_section(rows).blocks if getattr(b, "headers", None)]
    columns = next(t.headers for t in tables if "semeval2021t6 " in t.caption)
    assert {"f1", "most_frequent_f1", "level2_threshold"} <= set(columns)


def test_predict_on_stripped_dev_memes_scores_as_the_evaluate_row(real_run, tmp_path: Path) -> None:
    run, dev = real_run
    memes = json.loads(dev.read_text(encoding="utf-8"))
    stripped = tmp_path / "memes.json"
    stripped.write_text(json.dumps([{"id": m["id"], "text": m["text"]} for m in memes]), encoding="utf-8")
    out = tmp_path / "pred.json"
    result = CliRunner().invoke(app, ["predict", str(run), "--task", "semeval2021t6", "--input", str(stripped),
                                      "--output", str(out)])
    assert result.exit_code == 0, result.output
    scored = CliRunner().invoke(app, ["score", "semeval2021t6", "--gold", str(dev), "--pred", str(out), "--json"])
    assert scored.exit_code == 0, scored.output  # the official checks pass: the gold ids, valid techniques
    predicted = json.loads(scored.stdout)

    evaluated = CliRunner().invoke(app, ["evaluate", str(run), "--data", f"semeval2021t6={dev}"])
    assert evaluated.exit_code == 0, evaluated.output
    row = json.loads((run / "evaluation" / "dev.json").read_text())["tasks"]["semeval2021t6"]
    assert row["gold_spans"] == sum(len(m["labels"]) for m in memes)  # the whole dev file
    for key in ("precision", "recall", "f1", "pred_spans"):
        assert predicted[key] == row[key], key
    written = run / "predictions" / "dev" / "semeval2021t6"
    assert score("semeval2021t6", dev, written / "predictions.json") == predicted
    assert json.loads((written / "pipeline.json").read_text())["most_frequent_technique"]
