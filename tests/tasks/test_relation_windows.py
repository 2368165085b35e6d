"""Relations across window boundaries: labelled in every window that holds both entities, decided once."""

from __future__ import annotations

import pytest

from mtpeft.tasks.encoding.alignment import tokenize
from mtpeft.tasks.encoding.relations import entity_range
from mtpeft.tasks.encoding.windows import owner, plan_windows
from mtpeft.tasks.features import WindowPrediction
from mtpeft.tasks.registry import get_task
from tests.tasks.test_relation_task import _temporal_document

MAX_LENGTH, STRIDE = 16, 8  # the setting of the reproduction


def _encoded(tokenizer):
    doc = _temporal_document()
    task = get_task("semeval2016t12", relation_window=None, max_length=MAX_LENGTH, stride=STRIDE)
    return doc, task, task.encode([doc], tokenizer)


def _ranges(doc, tokenizer) -> dict[str, tuple[int, int]]:
    tokens = tokenize(doc.text, tokenizer)
    return {m.id: entity_range(tokens, m) for m in doc.mentions}


def test_a_relation_across_a_window_boundary_is_labelled_where_both_entities_are(tokenizer) -> None:
    doc, task, result = _encoded(tokenizer)
    ranges = _ranges(doc, tokenizer)
    windows = plan_windows(len(tokenize(doc.text, tokenizer)), MAX_LENGTH, STRIDE)
    kept = [r for r in doc.relations if r.label == "CONTAINS" and doc.mention_by_id()[r.source].label != "DOCTIME"]
    crossing = []  # the owner of the pair's first token cannot hold it, a later window can
    for r in kept:
        (a0, a1), (b0, b1) = ranges[r.source], ranges[r.target]
        first, last = min(a0, b0), max(a1, b1)
        if not owner(windows, first).contains(first, last) and any(w.contains(first, last) for w in windows):
            crossing.append(r)
    assert crossing, "the document must have pairs across a window boundary for the test to mean anything"
    label = task.label_id("CONTAINS")
    for r in kept:
        (a0, a1), (b0, b1) = ranges[r.source], ranges[r.target]
        holding = [f for f in result.features if f.window in {w.index for w in windows if w.contains(min(a0, b0), max(a1, b1))}]
        for f in holding:  # every window holding both entities trains the pair with its gold label
            assert (f.entity_ids.index(r.source), f.entity_ids.index(r.target), label) in f.relations, (r.id, f.window)
    lost = {loss.item for loss in result.losses if loss.kind == "window_boundary"}
    assert not lost & {r.id for r in crossing}  # a pair some window holds is never a loss
    assert result.counts["relations_encoded"] == len(kept) - len(lost)


def test_each_pair_is_decided_by_exactly_one_window(tokenizer) -> None:
    doc, task, result = _encoded(tokenizer)
    # every window predicts every candidate pair as CONTAINS: a pair must come out once, from one window
    predictions = [
        WindowPrediction(f.task, f.doc_id, f.window, relations=[
            (h, t, 0, 0.5) for h in range(len(f.entities)) for t in range(len(f.entities)) if h != t
        ])
        for f in result.features
    ]  # fmt: skip
    (decoded,) = task.decode([doc], predictions, result.features)
    pairs = [(r.source, r.target) for r in decoded.relations]
    assert len(pairs) == len(set(pairs)) == result.counts["candidate_pairs"]
    # and the gold predicted by every window decodes to the gold, including the pairs across boundaries
    gold = [WindowPrediction(f.task, f.doc_id, f.window, relations=[(h, t, lab, 1.0) for h, t, lab in f.relations])
            for f in result.features]  # fmt: skip
    (decoded,) = task.decode([doc], gold, result.features)
    lost = {loss.item for loss in result.losses}
    expected = {(r.source, r.target) for r in doc.relations if r.id not in lost}
    assert {(r.source, r.target) for r in decoded.relations} == expected


@pytest.mark.parametrize(("max_length", "stride"), [(6, 3), (8, 0)])
def test_a_pair_no_window_holds_is_the_only_boundary_loss(tokenizer, max_length: int, stride: int) -> None:
    doc = _temporal_document()
    task = get_task("semeval2016t12", relation_window=None, max_length=max_length, stride=stride)
    result = task.encode([doc], tokenizer)
    ranges = _ranges(doc, tokenizer)
    windows = plan_windows(len(tokenize(doc.text, tokenizer)), max_length, stride)
    lost = {loss.item for loss in result.losses if loss.kind == "window_boundary"}
    by_id = doc.mention_by_id()
    for r in doc.relations:
        if r.label != "CONTAINS" or by_id[r.source].label == "DOCTIME":
            continue
        (a0, a1), (b0, b1) = ranges[r.source], ranges[r.target]
        held = any(w.contains(min(a0, b0), max(a1, b1)) for w in windows)
        assert (r.id in lost) == (not held), r.id
    assert lost
