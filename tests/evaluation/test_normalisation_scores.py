"""CUIs end to end: a model's predicted CUIs reach both official files, ``mtpeft score`` on those
files reproduces ``evaluate``, and the figures say whether CUIs were predicted."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from mtpeft.backbone import Backbone, tiny_llama
from mtpeft.cli.main import app
from mtpeft.config import config_from_dict
from mtpeft.evaluation.evaluate import evaluate_task
from mtpeft.evaluation.score import CUIS_PREDICTED, format_table
from mtpeft.model.build import build_model
from mtpeft.samples import sample_path

TASKS = ("semeval2014t7", "semeval2015t14")


def _built(tokenizer, normalise: bool):
    config = config_from_dict({
        "seed": 0,
        "model": {"backbone": "tiny"},
        "strategy": {"name": "s3a", "lora_dropout": 0.0},
        "tasks": [{"id": t, "train": str(sample_path(t, "train")), "dev": str(sample_path(t, "dev")),
                   "options": {"max_length": 64, "normalise": normalise}, "limit": 4} for t in TASKS],
    })
    built = build_model(config, Backbone(model=tiny_llama(0), tokenizer=tokenizer, name="tiny", source="test"))
    with torch.no_grad():  # a deterministic, degenerate model: every token / candidate is a disorder ...
        token_head, span_head = built.model.heads["semeval2014t7"], built.model.heads["semeval2015t14"]
        token_head.classifier.bias[1] = 50.0  # B-Disease_Disorder
        span_head.classifier.bias[0] = 50.0  # Disease_Disorder over "no span"
        for task, head in (("semeval2014t7", token_head), ("semeval2015t14", span_head)):
            if head.normaliser is not None:  # ... and the classifier is sure of one CUI
                head.normaliser.classifier.bias[2] = 50.0  # the most frequent training CUI
    return built


def _cui(built, task_id: str) -> str:
    return built.tasks[task_id].normaliser.vocabulary.labels[2]


@pytest.mark.parametrize("task_id", TASKS)
def test_predicted_cuis_are_written_and_score_reproduces_evaluate(tmp_path, tokenizer, task_id) -> None:
    built = _built(tokenizer, normalise=True)
    gold = sample_path(task_id, "dev")
    evaluation = evaluate_task(built.model, built.tasks[task_id], gold, tokenizer, tmp_path, limit=3)
    pipes = sorted((tmp_path / "predictions").glob("*.pipe"))
    lines = [line for p in pipes for line in p.read_text().splitlines()]
    assert lines, "the degenerate model predicts disorders"
    cuis = {line.split("||" if task_id == "semeval2014t7" else "|")[2] for line in lines}
    assert cuis == {_cui(built, task_id)}  # the classifier's CUI, in the official CUI field
    metrics = evaluation.metrics
    assert metrics[CUIS_PREDICTED] == 1.0 and metrics["cui_source_classifier"] == len(lines)
    result = CliRunner().invoke(app, ["score", task_id, "--gold", str(tmp_path / "gold"),
                                      "--pred", str(tmp_path / "predictions"), "--json"])
    assert result.exit_code == 0, result.output
    scored = json.loads(result.output)
    assert scored == {k: metrics[k] for k in scored}
    cui_keys = ("cui_accuracy_strict", "cui_accuracy_relaxed") if task_id == "semeval2014t7" else ("strict_f1", "span_strict_f1")
    assert all(k in scored for k in cui_keys)
    table = format_table(task_id, metrics)
    assert "CUI ignored" in table or "Task B" in table


@pytest.mark.parametrize("task_id", TASKS)
def test_with_normalisation_off_every_disorder_is_cui_less_and_the_figures_say_so(tmp_path, tokenizer, task_id) -> None:
    built = _built(tokenizer, normalise=False)
    assert built.model.heads[task_id].normaliser is None
    evaluation = evaluate_task(built.model, built.tasks[task_id], sample_path(task_id, "dev"), tokenizer, tmp_path, limit=3)
    lines = [line for p in (tmp_path / "predictions").glob("*.pipe") for line in p.read_text().splitlines()]
    assert lines and {line.split("||" if task_id == "semeval2014t7" else "|")[2] for line in lines} == {"CUI-less"}
    assert evaluation.metrics[CUIS_PREDICTED] == 0.0
    assert not any(k.startswith("cui_source_") for k in evaluation.metrics)
    assert "normalisation off" in format_table(task_id, evaluation.metrics)
