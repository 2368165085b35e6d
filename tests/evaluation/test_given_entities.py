"""2016 T12 runs in the phase-2 setting: a model's evaluation does not report the given entity spans."""

from __future__ import annotations

from mtpeft.config import config_from_dict
from mtpeft.evaluation.evaluate import evaluate_task
from mtpeft.evaluation.score import HEADLINE_KEYS, model_metrics, score
from mtpeft.model.build import build_model
from mtpeft.samples import sample_path


def test_model_evaluation_leaves_out_the_given_span_figures(tmp_path):
    config = config_from_dict({"model": {"backbone": "tiny"}, "output_dir": str(tmp_path / "run"),
                               "tasks": [{"id": "semeval2016t12", "options": {"max_length": 48}}]})  # fmt: skip
    built = build_model(config)
    dev = sample_path("semeval2016t12", "dev")
    evaluation = evaluate_task(built.model, built.tasks["semeval2016t12"], dev, built.backbone.tokenizer,
                               tmp_path / "out", limit=2)  # fmt: skip
    assert not any(k.startswith(("event_span_", "timex3_span_")) for k in evaluation.metrics)
    assert {"contains_precision", "contains_recall", "contains_f1"} <= set(evaluation.metrics)
    # the files score with the span figures, which are 1.0 by construction: the gold mentions are copied
    scored = score("semeval2016t12", tmp_path / "out" / "gold", evaluation.prediction_path)
    assert scored["event_span_f1"] == scored["timex3_span_f1"] == 1.0
    assert model_metrics("semeval2016t12", scored) == evaluation.metrics


def test_scoring_a_submission_keeps_every_figure():
    scores = {"event_span_f1": 0.5, "timex3_span_f1": 0.25, "contains_f1": 0.1}
    assert model_metrics("semeval2017t3", scores) == scores
    assert set(HEADLINE_KEYS["semeval2016t12"]) >= {"event_span_f1", "timex3_span_f1"}  # `mtpeft score` shows them
