"""Encoding the real official files of ../shared/data (skipped when absent)."""

from __future__ import annotations

import re
from pathlib import Path

from mtpeft.tasks.features import WindowPrediction
from mtpeft.tasks.registry import get_task
from mtpeft.tasks.stats import data_stats

KNOWN_KINDS = {"overlap", "discontiguous_shape", "token_boundary", "decoding"}


def test_2021t6_level1_round_trip_accounts_for_every_span(tokenizer, shared_data: Path) -> None:
    path = shared_data / "semeval2021t6" / "training_set_task2.txt"
    task = get_task("semeval2021t6_level1")
    documents = task.read(path).documents
    report = task.round_trip(documents, tokenizer)
    distinct = sum(len({m.spans for m in d.mentions}) for d in documents)
    assert report.mentions == distinct  # one PERSUASION mention per distinct extent
    assert report.exact + len(report.lost) == report.mentions
    assert set(report.lost_by_kind()) <= KNOWN_KINDS
    technique = get_task("semeval2021t6_level1", tagging="technique").round_trip(documents, tokenizer)
    assert technique.mentions == sum(len(d.mentions) for d in documents)
    # the reason for the default: with one type, level 1 can give level 2 the extents of more of
    # the gold technique spans than BIO over the techniques can give exactly
    features = task.encode(documents, tokenizer).features
    predictions = [
        WindowPrediction(f.task, f.doc_id, f.window, token_labels=[max(label, 0) for label in f.token_labels])
        for f in features
    ]
    decoded = {d.id: {m.spans for m in d.mentions} for d in task.decode(documents, predictions, features)}
    extents_for_level2 = sum(m.spans in decoded[d.id] for d in documents for m in d.mentions)
    assert extents_for_level2 > technique.exact


def test_2021t6_level2_encodes_every_span(tokenizer, shared_data: Path) -> None:
    task = get_task("semeval2021t6_level2")
    documents = task.read(shared_data / "semeval2021t6" / "dev_set_task2.txt").documents
    result = task.encode(documents, tokenizer)
    n_spans = sum(len(d.mentions) for d in documents)
    assert result.counts["mentions_encoded"] + len(result.losses) == n_spans
    # one entity per distinct extent (dev: 182 spans, 154 extents), each in exactly one window
    extents = sum(len({m.spans for m in d.mentions}) for d in documents)
    assert result.counts["extents"] == extents < n_spans
    assert sum(len(f.entity_ids) for f in result.features) == result.counts["extents_encoded"]
    assert sum(len(labels) for f in result.features for labels in f.entity_label_sets) == result.counts["mentions_encoded"]


def test_2017t3_one_example_per_comment(tokenizer, shared_data: Path) -> None:
    path = shared_data / "semeval2017t3" / "SemEval2016-Task3-CQA-QL-train-part2-subtaskA.xml"
    raw = path.read_text(encoding="utf-8")
    task = get_task("semeval2017t3")
    result = task.encode(task.read(path).documents, tokenizer)
    assert len(result.features) == len(re.findall(r"<RelComment\b", raw))
    assert len({f.group_id for f in result.features}) == len(re.findall(r"<RelQuestion\b", raw))


def test_2016t12_stats_without_text(shared_data: Path) -> None:
    folder = shared_data / "semeval2016t12"
    stats = data_stats(get_task("semeval2016t12"), folder, tokenizer=object())
    xml = "".join(p.read_text(encoding="utf-8") for p in sorted(folder.glob("*/*.xml")))
    assert stats["documents"] == stats["documents_without_text"] == len(list(folder.glob("*/*.xml")))
    assert stats["annotations"]["mentions"] == len(re.findall(r"<entity>", xml))
    assert stats["annotations"]["relations"] == len(re.findall(r"<relation>", xml))
    assert stats["annotations"]["relation_labels"]["CONTAINS"] == len(re.findall(r"<Type>CONTAINS</Type>", xml))
    assert "needs the text" in stats["encoding"]["unavailable"]
