"""SemEval-2021 T6 subtask 2: level 2 decoded once per extent, thresholds, the pipeline and its row."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mtpeft.errors import ConfigError
from mtpeft.evaluation import evaluate as evaluate_module
from mtpeft.evaluation.evaluate import evaluate_task
from mtpeft.evaluation.score import COMPONENT_OF, headline_scores
from mtpeft.evaluation.subtask2 import all_named, most_frequent_technique, require_pipeline
from mtpeft.evaluation.thresholds import choose_threshold, record_threshold, recorded_threshold
from mtpeft.tasks.document import Document, Mention
from mtpeft.tasks.features import WindowPrediction
from mtpeft.tasks.registry import get_task

TEXT = "Wake up, patriots! They lied again."
A, B, C = "Loaded Language", "Smears", "Flag-waving"


def _meme_file(tmp_path: Path, labels: list[tuple[int, int, str]], name: str = "gold.txt") -> Path:
    item = {"id": "1", "text": TEXT, "labels": [{"start": s, "end": e, "technique": t} for s, e, t in labels]}
    path = tmp_path / name
    path.write_text(json.dumps([item]), encoding="utf-8")
    return path


def _fixed_probabilities(monkeypatch, task, probabilities_of) -> None:
    """Make evaluation's model calls return ``probabilities_of(extent_key)`` for every extent."""

    def predict(model, task_id, features, batch_size=16):
        return [WindowPrediction(f.task, f.doc_id, f.window, entity_probs=[probabilities_of(k) for k in f.entity_ids])
                for f in features]

    monkeypatch.setattr(evaluate_module, "predict_features", predict)


def test_an_extent_with_three_gold_techniques_predicted_with_one_scores_recall_one_third(
    tokenizer, tmp_path: Path, monkeypatch
) -> None:
    """Decoding once per gold mention gave three copies of the one predicted label, each credited:
    recall 1.0. Once per extent, the oracle-span row says what the model did: 1 of 3."""
    task = get_task("semeval2021t6_level2", threshold=0.5)
    gold = _meme_file(tmp_path, [(0, 18, A), (0, 18, B), (0, 18, C)])
    probabilities = [0.1] * len(task.labels)
    probabilities[task.label_id(A)] = 0.9
    _fixed_probabilities(monkeypatch, task, lambda _: probabilities)
    evaluation = evaluate_task(None, task, gold, tokenizer, tmp_path / "out")
    metrics = evaluation.metrics
    assert metrics["oracle_span_recall"] == pytest.approx(1 / 3)
    assert metrics["oracle_span_precision"] == pytest.approx(1.0)
    assert metrics["pred_spans"] == 1.0 and metrics["threshold"] == 0.5
    written = json.loads((tmp_path / "out" / "predictions" / "predictions.json").read_text())
    assert [(x["start"], x["end"], x["technique"]) for x in written[0]["labels"]] == [(0, 18, A)]


def test_the_threshold_is_chosen_on_dev_and_recorded(tokenizer, tmp_path: Path, monkeypatch) -> None:
    task = get_task("semeval2021t6_level2")
    assert task.threshold is None and task.decision_threshold == 0.5
    gold = _meme_file(tmp_path, [(0, 18, A), (0, 18, B), (19, 35, C)])
    first, second = [0.1] * len(task.labels), [0.1] * len(task.labels)
    first[task.label_id(A)], first[task.label_id(B)] = 0.9, 0.35  # gold {A, B}
    second[task.label_id(C)], second[task.label_id(A)] = 0.8, 0.3  # gold {C}; A at 0.3 is wrong
    _fixed_probabilities(monkeypatch, task, lambda key: first if key == "0-18" else second)
    documents = task.read(gold).documents
    features = task.encode(documents, tokenizer).features
    predictions = evaluate_module.predict_features(None, task.id, features)
    # only thresholds in (0.30, 0.35] keep B and drop the wrong A: 0.35 of the grid
    assert choose_threshold(task, documents, predictions, features) == (0.35, pytest.approx(1.0))
    evaluation = evaluate_task(None, task, gold, tokenizer, tmp_path / "out", choose_threshold=True)
    assert task.threshold == 0.35 and evaluation.metrics["threshold"] == 0.35
    assert evaluation.metrics["oracle_span_f1"] == pytest.approx(1.0)
    record_threshold(tmp_path, 7, task.id, 0.35, 1.0, str(gold))
    assert recorded_threshold(tmp_path, 7, task.id) == 0.35 and recorded_threshold(tmp_path, 8, task.id) is None


def test_a_fixed_threshold_is_not_chosen(tokenizer, tmp_path: Path, monkeypatch) -> None:
    task = get_task("semeval2021t6_level2", threshold=0.9)
    gold = _meme_file(tmp_path, [(0, 18, A)])
    _fixed_probabilities(monkeypatch, task, lambda _: [0.5] * len(task.labels))
    evaluate_task(None, task, gold, tokenizer, tmp_path / "out", choose_threshold=True)
    assert task.threshold == 0.9


def test_a_run_without_both_levels_names_the_missing_one() -> None:
    level1, level2 = get_task("semeval2021t6_level1"), get_task("semeval2021t6_level2")
    with pytest.raises(ConfigError, match="no semeval2021t6_level2 to name their techniques"):
        require_pipeline({level1.id: level1})
    with pytest.raises(ConfigError, match="no semeval2021t6_level1 to find the spans"):
        require_pipeline({level2.id: level2})
    assert require_pipeline({level1.id: level1, level2.id: level2}).mode == "tag-then-type"
    joint = get_task("semeval2021t6_level1", tagging="technique")
    assert require_pipeline({joint.id: joint}).mode == "joint"


def test_most_frequent_technique_and_the_trivial_pipeline() -> None:
    docs = [Document("1", TEXT, [Mention("T0", ((0, 4),), B), Mention("T1", ((5, 9),), A)]),
            Document("2", TEXT, [Mention("T0", ((0, 4),), A)])]
    assert most_frequent_technique(docs) == A
    assert most_frequent_technique(docs[:1]) == "Loaded Language"  # a tie: the first of the official list
    assert {m.label for d in all_named(docs, C) for m in d.mentions} == {C}
    assert [m.label for m in docs[0].mentions] == [B, A]  # the input is left alone


def test_the_subtask2_row_is_the_2021_headline_for_selection() -> None:
    results = {"semeval2017t3": {"map": 0.5}, "semeval2021t6_level1": {"f1": 0.9},
               "semeval2021t6_level2": {"oracle_span_f1": 0.7}, "semeval2021t6": {"f1": 0.2}}
    assert headline_scores(results) == {"semeval2017t3": 0.5, "semeval2021t6": 0.2}
    del results["semeval2021t6"]  # without the row, the levels are the run's rows
    assert headline_scores(results) == {"semeval2017t3": 0.5, "semeval2021t6_level1": 0.9, "semeval2021t6_level2": 0.7}
    assert set(COMPONENT_OF.values()) == {"semeval2021t6"}


def test_the_joint_and_tag_then_type_configs_differ_only_in_their_tasks() -> None:
    from mtpeft.config import load_config
    from mtpeft.model.build import build_task

    configs = Path(__file__).resolve().parents[2] / "configs"
    joint = load_config(configs / "semeval2021t6-joint.yaml")
    chained = load_config(configs / "semeval2021t6-tag-then-type.yaml")
    assert joint.model_dump(exclude={"output_dir", "tasks"}) == chained.model_dump(exclude={"output_dir", "tasks"})
    assert require_pipeline({t.id: build_task(t) for t in joint.tasks}).mode == "joint"
    assert require_pipeline({t.id: build_task(t) for t in chained.tasks}).mode == "tag-then-type"
    assert {t.train for t in chained.tasks} == {joint.tasks[0].train}  # the same data
