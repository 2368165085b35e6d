"""Tasks defined in a config without Python: generic formats end to end, and config errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mtpeft.errors import ConfigError
from mtpeft.tasks.features import IGNORE_INDEX, WindowPrediction
from mtpeft.tasks.from_config import task_from_config
from mtpeft.tasks.ranking_task import RankingTask
from mtpeft.tasks.relation_task import RelationTask
from mtpeft.tasks.span_task import SpanTask
from mtpeft.tasks.token_task import TokenTask
from mtpeft.tasks.typing_task import SpanTypingTask
from tests.tasks.test_generic import RANKING, RELATIONS, SPANS, _write_lines


def _gold_predictions(task, features) -> list[WindowPrediction]:
    out = []
    for f in features:
        p = WindowPrediction(f.task, f.doc_id, f.window, candidate_id=f.candidate_id, group_id=f.group_id)
        if f.token_labels is not None:
            p.token_labels = [0 if label == IGNORE_INDEX else label for label in f.token_labels]
        if f.span_labels is not None:
            p.spans, p.links = [(*s, 1.0) for s in f.span_labels], [(*link, 1.0) for link in f.span_links]
        if f.relations is not None:
            p.relations = [(*r, 1.0) for r in f.relations]
        if f.entity_label_sets is not None:  # multi-label typing: probability 1 for the gold labels, 0 otherwise
            p.entity_probs = [[float(k in labels) for k in range(len(task.labels))] for labels in f.entity_label_sets]
        if f.rank_label is not None:
            p.rank_probs = [float(k == f.rank_label) for k in range(len(task.labels))]
            p.rank_score = float(f.rank_label)
        out.append(p)
    return out


CASES = [
    ({"head": "token", "scheme": "biohd"}, SPANS, TokenTask),
    ({"head": "span", "max_span_len": 4}, SPANS, SpanTask),
    ({"head": "relation", "relation_window": 10}, RELATIONS, RelationTask),
    ({"head": "relation", "mode": "typing"}, SPANS, SpanTypingTask),
    ({"head": "ranking", "level": 2}, RANKING, RankingTask),
]


@pytest.mark.parametrize(("extra", "items", "cls"), CASES, ids=[c[2].__name__ for c in CASES])
def test_generic_task_end_to_end(tokenizer, tmp_path: Path, extra: dict, items: list, cls: type) -> None:
    data = _write_lines(tmp_path / "train.jsonl", items)
    task = task_from_config({"id": "mine", "format": "generic", "data": str(data), **extra})
    assert isinstance(task, cls) and task.level == extra.get("level", 1)
    documents = task.read(data).documents
    features = task.encode(documents, tokenizer).features
    decoded = task.decode(documents, _gold_predictions(task, features), features)
    task.write(decoded, tmp_path / "out.jsonl")
    again = task.read(tmp_path / "out.jsonl").documents
    if cls is RankingTask:
        assert [[(c.id, c.label) for c in d.candidates] for d in again] == [
            [(c.id, c.label) for c in d.candidates] for d in documents
        ]
    elif cls is RelationTask:
        assert [{(r.source, r.target, r.label) for r in d.relations} for d in again] == [
            {(r.source, r.target, r.label) for r in d.relations} for d in documents
        ]
    elif cls is SpanTypingTask:
        assert [[(m.id, m.label, m.spans) for m in d.mentions] for d in again] == [
            [(m.id, m.label, m.spans) for m in d.mentions] for d in documents
        ]
    else:  # mention tasks: exactly the gold mentions the round trip says survive, plus its spurious ones
        report = task.round_trip(documents, tokenizer)
        lost = {(loss.doc_id, loss.item) for loss in report.lost}
        kept = {(d.id, m.label, m.spans) for d in documents for m in d.mentions if (d.id, m.id) not in lost}
        written = {(d.id, m.label, m.spans) for d in again for m in d.mentions}
        assert kept <= written and len(written) == len(kept) + report.spurious
        assert report.lost  # the sample has an overlap these heads cannot carry ("Chest" as Site and Disorder)


def test_labels_are_inferred_from_data(tmp_path: Path) -> None:
    data = _write_lines(tmp_path / "train.jsonl", SPANS)
    task = task_from_config({"id": "mine", "format": "generic", "head": "token", "data": str(data)})
    assert task.labels == ["O", "B-Disorder", "I-Disorder", "B-Site", "I-Site"]
    ranking = _write_lines(tmp_path / "rank.jsonl", RANKING)
    assert task_from_config({"id": "r", "format": "generic", "head": "ranking", "data": str(ranking)}).labels == [
        "0",
        "1",
        "2",
    ]


def test_given_labels_are_enforced_by_the_reader(tmp_path: Path) -> None:
    from mtpeft.errors import FormatError

    data = _write_lines(tmp_path / "train.jsonl", SPANS)
    task = task_from_config({"id": "mine", "format": "generic", "head": "span", "labels": ["Disorder"]})
    with pytest.raises(FormatError, match="unknown label 'Site'"):
        task.read(data)


def test_official_tasks_through_the_same_function() -> None:
    task = task_from_config({"id": "semeval2014t7", "scheme": "bio", "max_length": 128})
    assert (task.id, task.max_length, task.labels[1]) == ("semeval2014t7", 128, "B-Disease_Disorder")


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"format": "generic", "head": "token", "labels": ["A"]}, "'id'"),
        ({"id": "x", "format": "csv", "head": "token", "labels": ["A"]}, "valid choices: official, generic"),
        ({"id": "x", "format": "generic", "head": "tagger", "labels": ["A"]}, "head 'tagger'"),
        ({"id": "x", "format": "generic", "head": "token"}, "no 'labels' and no 'data'"),
        (
            {"id": "x", "format": "generic", "head": "token", "labels": ["A"], "max_span_len": 3},
            "valid options: scheme",
        ),
        ({"id": "x", "format": "generic", "head": "token", "labels": ["A"], "level": 3}, "level must be 1 or 2"),
        ({"id": "x", "format": "generic", "head": "token", "labels": "A"}, "'labels'"),
        ({"id": "semeval2014t7", "max_span_len": 3}, "valid options: scheme"),
    ],
)
def test_config_errors(config: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        task_from_config(config)
    assert message in str(err.value)


def test_config_file_json_round_trip(tmp_path: Path) -> None:
    config = {"id": "mine", "format": "generic", "head": "span", "labels": ["Disorder", "Site"], "max_span_len": 3}
    (tmp_path / "task.json").write_text(json.dumps(config))
    task = task_from_config(json.loads((tmp_path / "task.json").read_text()))
    assert task.head_options() == {"max_span_len": 3}
