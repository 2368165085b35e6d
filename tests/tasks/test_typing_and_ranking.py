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


def _probabilities(task, features, wanted) -> list[WindowPrediction]:
    """Predictions giving each extent probability 0.9 for the labels ``wanted(extent labels)``, 0.1 otherwise."""
    out = []
    for f in features:
        sets = f.entity_label_sets or [()] * len(f.entities)
        probs = [[0.9 if k in wanted(labels) else 0.1 for k in range(len(task.labels))] for labels in sets]
        out.append(WindowPrediction(f.task, f.doc_id, f.window, entity_probs=probs))
    return out


@pytest.mark.parametrize(("max_length", "stride"), [(512, 128), (8, 6)])
def test_typing_round_trip_once_per_extent(tokenizer, max_length: int, stride: int) -> None:
    task = get_task("semeval2021t6_level2", max_length=max_length, stride=stride, threshold=0.5)
    doc = _meme()
    result = task.encode([doc], tokenizer)
    lost = {loss.item for loss in result.losses}
    kept = [m for m in doc.mentions if m.id not in lost]
    extents = {m.spans for m in kept}
    # one entity per distinct extent ("Only a fool" carries two techniques), each in one window
    encoded = [key for f in result.features for key in f.entity_ids]
    assert len(encoded) == len(set(encoded)) == len(extents)
    assert result.counts["extents_with_several_labels"] == 1 and result.counts["extents"] == 4
    assert result.counts["mentions_encoded"] + len(lost) == len(doc.mentions)
    for f in result.features:
        for key, labels in zip(f.entity_ids, f.entity_label_sets):
            gold = {task.label_id(m.label) for m in kept if ",".join(f"{s}-{e}" for s, e in m.spans) == key}
            assert set(labels) == gold
    (decoded,) = task.decode([doc], _probabilities(task, result.features, set), result.features)
    assert sorted((m.spans, m.label) for m in decoded.mentions) == sorted((m.spans, m.label) for m in kept)


def test_typing_level1_output_without_targets(tokenizer) -> None:
    doc = _meme()
    for m in doc.mentions:
        m.label = "PERSUASION"
    task = get_task("semeval2021t6_level2", threshold=0.5)
    result = task.encode([doc], tokenizer)
    assert all(f.entity_label_sets is None for f in result.features)
    assert result.loss_counts() == {"unlabelled": 1}
    (decoded,) = task.decode([doc], _probabilities(task, result.features, lambda _: {3, 5}), result.features)
    # each of the 4 distinct extents gets the two techniques above the threshold, once
    assert len(decoded.mentions) == 8 and len({m.id for m in decoded.mentions}) == 8
    assert {m.label for m in decoded.mentions} == {task.labels[3], task.labels[5]}
    assert len({m.spans for m in decoded.mentions}) == 4


def test_threshold_and_the_top_label(tokenizer) -> None:
    task = get_task("semeval2021t6_level2", threshold=0.6)
    probs = [0.1] * len(task.labels)
    assert task.predicted_labels(probs) == [0]  # nothing reaches 0.6: the extent keeps its top label
    probs[4], probs[2] = 0.7, 0.65
    assert task.predicted_labels(probs) == [4, 2]
    assert task.predicted_labels(probs, threshold=0.68) == [4]
    assert get_task("semeval2021t6_level2").threshold is None  # chosen on dev by default


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
