"""``mtpeft evaluate`` / ``predict`` on a trained tiny run: official files, consistent numbers."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from mtpeft.cli.main import app
from mtpeft.evaluation.evaluate import headline_metric
from mtpeft.evaluation.score import score
from mtpeft.evaluation.uncertainty import derive_metrics, read_document_stats
from mtpeft.samples import sample_path
from mtpeft.training.run import train
from tests.training.test_fit import make_config

TASKS = ("semeval2014t7", "semeval2015t14", "semeval2017t3", "semeval2021t6_level1", "semeval2021t6_level2")


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("eval") / "run"
    train(make_config(run, tasks=TASKS, max_steps=3))
    return run


def test_evaluate_writes_official_predictions_calibration_and_stats(trained_run):
    result = CliRunner().invoke(app, ["evaluate", str(trained_run), "--checkpoint", "last"])
    assert result.exit_code == 0, result.output
    summary = json.loads((trained_run / "evaluation" / "dev.json").read_text())
    assert set(summary["tasks"]) == {*TASKS, "semeval2021t6"}  # both 2021 T6 levels make the subtask-2 row
    for task in (*TASKS, "semeval2021t6"):
        metrics = summary["tasks"][task]
        name = headline_metric(task, metrics)
        assert name in result.output and task in result.output
        if task != "semeval2021t6":  # the pipeline row has no confidences of its own
            calibration = json.loads((trained_run / "calibration" / "dev" / f"{task}.json").read_text())
            assert len(calibration["confidences"]) == len(calibration["correct"]) > 0
            assert 0.0 <= calibration["ece"] <= 1.0
        # per-document statistics, summed, reproduce the corpus metric exactly
        stats = read_document_stats(trained_run / "per_document" / "dev" / f"{task}.jsonl")
        derived = derive_metrics(stats.sums())
        assert derived[name] == pytest.approx(metrics[name], abs=1e-12), task


def test_prediction_files_score_the_same_with_mtpeft_score(trained_run):
    """What evaluate prints is what scoring its official files gives (the official path)."""
    CliRunner().invoke(app, ["evaluate", str(trained_run), "--checkpoint", "last"])
    summary = json.loads((trained_run / "evaluation" / "dev.json").read_text())
    predictions = trained_run / "predictions" / "dev"
    gold_2017 = trained_run / "predictions" / "dev" / "semeval2017t3" / "gold" / "gold.relevancy"
    pred_2017 = predictions / "semeval2017t3" / "predictions" / "predictions.pred"
    assert score("semeval2017t3", gold_2017, pred_2017) == summary["tasks"]["semeval2017t3"]
    gold_2014 = predictions / "semeval2014t7" / "gold"
    scored = score("semeval2014t7", gold_2014, predictions / "semeval2014t7" / "predictions")
    evaluated = summary["tasks"]["semeval2014t7"]
    assert scored == {k: evaluated[k] for k in scored}
    # evaluate adds only what the files cannot say: whether and how the CUIs were predicted
    assert {k for k in evaluated if k not in scored} <= {"cuis_predicted"} | {k for k in evaluated if k.startswith("cui_source_")}


def test_predict_writes_the_official_format(trained_run, tmp_path):
    out = tmp_path / "pred.json"
    result = CliRunner().invoke(app, ["predict", str(trained_run), "--task", "semeval2021t6_level2",
                                      "--input", str(sample_path("semeval2021t6_level2", "dev")), "--output", str(out)])
    assert result.exit_code == 0, result.output
    gold = sample_path("semeval2021t6_level2", "dev")
    scores = score("semeval2021t6_level2", gold, out)  # the official scorer accepts it: same ids, valid techniques
    assert 0.0 <= scores["oracle_span_f1"] <= 1.0


def test_evaluate_rejects_unknown_task_data(trained_run):
    result = CliRunner().invoke(app, ["evaluate", str(trained_run), "--data", "nope=/tmp/x"])
    assert result.exit_code != 0
    assert "does not have" in str(result.exception)


def test_level2_types_level1_output(trained_run, tmp_path) -> None:
    """Level 1's own file (PERSUASION spans) is level 2's input: spans of any label are spans to type."""
    memes = sample_path("semeval2021t6_level1", "dev")
    spans, typed = tmp_path / "spans.json", tmp_path / "typed.json"
    for task, source, out in (("semeval2021t6_level1", memes, spans), ("semeval2021t6_level2", spans, typed)):
        result = CliRunner().invoke(app, ["predict", str(trained_run), "--task", task, "--input", str(source),
                                          "--output", str(out)])
        assert result.exit_code == 0, result.output
    found = json.loads(spans.read_text())
    named = json.loads(typed.read_text())
    assert {x["technique"] for m in found for x in m["labels"]} <= {"PERSUASION"}
    assert [m["id"] for m in named] == [m["id"] for m in found]
    extents = {(m["id"], x["start"], x["end"]) for m in found for x in m["labels"]}
    assert {(m["id"], x["start"], x["end"]) for m in named for x in m["labels"]} <= extents
    assert all(x["technique"] != "PERSUASION" for m in named for x in m["labels"])
    score("semeval2021t6", memes, typed)  # the official checks pass


def test_loaded_run_predicts_with_its_evaluation_packing(trained_run, tmp_path) -> None:
    """``mtpeft evaluate`` / ``predict`` / ``probe`` use the run's ``evaluation.packing``, not a default."""
    import shutil

    import yaml

    from mtpeft.model.load import load_trained

    _, built, _ = load_trained(trained_run, "last")
    assert built.model.prediction_packing.mode == "packed"  # auto on the tiny Llama: exact, so packed
    copy = tmp_path / "run"
    shutil.copytree(trained_run, copy)
    config = yaml.safe_load((copy / "config.yaml").read_text())
    config["output_dir"] = str(copy)
    config.setdefault("evaluation", {})["packing"] = False
    (copy / "config.yaml").write_text(yaml.safe_dump(config))
    _, built, _ = load_trained(copy, "last")
    assert built.model.prediction_packing.mode == "padded"
