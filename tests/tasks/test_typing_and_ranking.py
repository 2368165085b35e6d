"""Span typing (2021 T6 level 2) and ranking pairs (2017 T3)."""

from __future__ import annotations

import pytest

from mtpeft.tasks.document import Candidate, Document, Mention
from mtpeft.tasks.encoding.ranking import fit_pair
from mtpeft.tasks.features import WindowPrediction
from mtpeft.tasks.registry import get_task
from tests.tasks.conftest import char_span

MEME = "THEY LIED TO YOU AGAIN\nWake up, patriots! Only a fool believes the media."


def _meme() -> Document:
    return Document(
        "m1",
        MEME,
        [
            Mention("T0", (char_span(MEME, "THEY LIED TO YOU AGAIN"),), "Smears"),
            Mention("T1", (char_span(MEME, "LIED"),), "Loaded Language"),
            Mention("T2", (char_span(MEME, "Wake up, patriots!"),), "Flag-waving"),
            Mention("T3", (char_span(MEME, "Only a fool"),), "Name calling/Labeling"),
            Mention("T4", (char_span(MEME, "Only a fool"),), "Loaded Language"),
        ],
    )


@pytest.mark.parametrize(("max_length", "stride"), [(512, 128), (8, 6)])
def test_typing_round_trip(tokenizer, max_length: int, stride: int) -> None:
    task = get_task("semeval2021t6_level2", max_length=max_length, stride=stride)
    doc = _meme()
    result = task.encode([doc], tokenizer)
    encoded = [mid for f in result.features for mid in f.entity_ids]
    lost = {loss.item for loss in result.losses}
    assert sorted(encoded) == sorted(m.id for m in doc.mentions if m.id not in lost)  # each entity in one window
    assert result.counts["same_extent_other_label"] == 1
    predictions = [
        WindowPrediction(f.task, f.doc_id, f.window, entity_labels=[(label, 1.0) for label in f.entity_labels])
        for f in result.features
    ]
    (decoded,) = task.decode([doc], predictions, result.features)
    assert [(m.id, m.spans, m.label) for m in decoded.mentions] == [
        (m.id, m.spans, m.label) for m in doc.mentions if m.id not in lost
    ]


def test_typing_level1_output_without_targets(tokenizer) -> None:
    doc = _meme()
    for m in doc.mentions:
        m.label = "PERSUASION"
    task = get_task("semeval2021t6_level2")
    result = task.encode([doc], tokenizer)
    assert all(f.entity_labels is None for f in result.features)
    assert result.loss_counts() == {"unlabelled": 1}
    none = len(task.labels)  # the head's "none of the labels" column
    predictions = [
        WindowPrediction(
            f.task, f.doc_id, f.window, entity_labels=[(3 if i % 2 else none, 0.8) for i in range(len(f.entities))]
        )
        for f in result.features
    ]
    (decoded,) = task.decode([doc], predictions, result.features)
    assert [m.id for m in decoded.mentions] == ["T1", "T3"]
    assert {m.label for m in decoded.mentions} == {task.labels[3]}


def _thread() -> Document:
    return Document(
        "Q1",
        "Best beach?\nWhere can I swim in Doha?",
        candidates=[
            Candidate("Q1_C1", "Try the Katara beach, it is clean.", "Good"),
            Candidate("Q1_C2", "Why would you swim in summer?", "Bad"),
            Candidate("Q1_C3", "Maybe the Pearl, not sure.", "PotentiallyUseful"),
        ],
    )


def test_one_feature_per_pair(tokenizer) -> None:
    task = get_task("semeval2017t3")
    result = task.encode([_thread()], tokenizer)
    assert [f.candidate_id for f in result.features] == ["Q1_C1", "Q1_C2", "Q1_C3"]
    assert [task.labels[f.rank_label] for f in result.features] == ["Good", "Bad", "PotentiallyUseful"]
    for f, c in zip(result.features, _thread().candidates):
        assert f.group_id == "Q1" and len(f.input_ids) == len(f.token_offsets)
        start = f.meta["candidate_start"]
        assert tokenizer.decode(f.input_ids[start:]) == c.text
        assert f.owned == (0, len(f.input_ids) - 1)
    assert result.lengths == [len(f.input_ids) for f in result.features]


def test_long_pairs_are_truncated_and_reported(tokenizer) -> None:
    doc = _thread()
    doc.text = "Question? " + "very long body " * 50
    task = get_task("semeval2017t3", max_length=32)
    result = task.encode([doc], tokenizer)
    assert all(len(f.input_ids) <= 32 for f in result.features)
    assert result.loss_counts() == {"truncated": 3}
    assert all(n > 32 for n in result.lengths)


@pytest.mark.parametrize(
    ("q", "c", "sep", "max_length"), [(10, 10, 2, 100), (100, 5, 2, 30), (5, 100, 2, 30), (80, 80, 2, 30)]
)
def test_fit_pair(q: int, c: int, sep: int, max_length: int) -> None:
    layout = fit_pair(q, c, sep, max_length)
    assert layout.question + layout.candidate + sep <= max_length
    assert layout.question <= q and layout.candidate <= c
    assert layout.dropped == q + c - layout.question - layout.candidate
    if q + c + sep > max_length:
        assert layout.question + layout.candidate + sep == max_length


def test_ranking_decode(tokenizer) -> None:
    task = get_task("semeval2017t3")
    doc = _thread()
    features = task.encode([doc], tokenizer).features
    probs = {"Q1_C1": [0.1, 0.2, 0.7], "Q1_C2": [0.8, 0.1, 0.1], "Q1_C3": [0.2, 0.5, 0.3]}
    predictions = [
        WindowPrediction(f.task, f.doc_id, f.window, rank_probs=probs[f.candidate_id],
                         rank_score=probs[f.candidate_id][2], candidate_id=f.candidate_id, group_id=f.group_id)
        for f in features
    ]  # fmt: skip
    (decoded,) = task.decode([doc], list(reversed(predictions)), features)
    assert [(c.id, c.label, c.score) for c in decoded.candidates] == [
        ("Q1_C1", "Good", 0.7), ("Q1_C2", "Bad", 0.1), ("Q1_C3", "PotentiallyUseful", 0.3)
    ]  # fmt: skip
    assert decoded.text == doc.text


def test_unlabelled_candidates_have_no_targets(tokenizer) -> None:
    doc = _thread()
    doc.candidates[1].label = None
    result = get_task("semeval2017t3").encode([doc], tokenizer)
    assert all(f.rank_label is None for f in result.features)
    assert result.loss_counts() == {"unlabelled": 1}
