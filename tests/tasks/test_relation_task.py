"""Relation tasks: entities, candidate pairs within the token window, counts, decoding."""

from __future__ import annotations

import random

import pytest

from mtpeft.tasks.document import Document, Mention, Relation
from mtpeft.tasks.encoding.alignment import tokenize
from mtpeft.tasks.encoding.relations import candidate_pairs, pair_distance
from mtpeft.tasks.features import WindowPrediction
from mtpeft.tasks.registry import get_task


def test_pair_distance_matches_the_relation_head() -> None:
    torch = pytest.importorskip("torch")
    from mtpeft.heads.relation import entity_distance

    rng = random.Random(1)
    ranges = [(a, a + rng.randint(0, 3)) for a in (rng.randint(0, 30) for _ in range(12))]
    starts = torch.tensor([r[0] for r in ranges])
    ends = torch.tensor([r[1] for r in ranges])
    expected = entity_distance(starts, ends)
    for i, a in enumerate(ranges):
        for j, b in enumerate(ranges):
            assert pair_distance(a, b) == int(expected[i, j])


def test_candidate_pairs() -> None:
    entities = [(0, 1), (3, 3), (10, 12)]
    assert candidate_pairs(entities, 2) == [(0, 1), (1, 0)]
    assert len(candidate_pairs(entities, None)) == 6


def _temporal_document(n_events: int = 40, seed: int = 3) -> Document:
    rng = random.Random(seed)
    text, mentions, relations = "", [], []
    for k in range(n_events):
        text += " ".join(rng.choice(["then", "the", "patient", "was", "seen"]) for _ in range(rng.randint(1, 12))) + " "
        kind = "TIMEX3" if k % 5 == 0 else "EVENT"
        word = "March 3" if kind == "TIMEX3" else "surgery"
        mentions.append(Mention(f"{k}@e@doc@gold", ((len(text), len(text) + len(word)),), kind))
        text += word + ". "
    mentions.append(Mention("99@e@doc@gold", ((0, 4),), "DOCTIME"))
    for k in range(0, n_events - 1):
        target = min(n_events - 1, k + rng.randint(1, 6))
        label = "CONTAINS" if k % 3 else "OVERLAP"
        relations.append(Relation(f"{k}@r@doc@gold", label, mentions[k].id, mentions[target].id, {"@type": "TLINK"}))
    relations.append(Relation("98@r@doc@gold", "CONTAINS", "99@e@doc@gold", mentions[1].id, {"@type": "TLINK"}))
    relations.append(Relation("97@r@doc@gold", "INITIATES", mentions[2].id, mentions[3].id, {"@type": "ALINK"}))
    return Document("doc", text, mentions, relations)


@pytest.mark.parametrize("window", [0, 5, 20, None])
def test_gold_pairs_outside_the_window_are_counted(tokenizer, window: int | None) -> None:
    doc = _temporal_document()
    task = get_task("semeval2016t12", relation_window=window, max_length=100_000)
    result = task.encode([doc], tokenizer)
    tokens = tokenize(doc.text, tokenizer)
    by_id = doc.mention_by_id()

    def token_range(mention_id: str) -> tuple[int, int]:
        return tokens.char_span_to_tokens(*by_id[mention_id].spans[0])

    contains = [r for r in doc.relations if r.label == "CONTAINS" and by_id[r.source].label != "DOCTIME"]
    far = [
        r
        for r in contains
        if window is not None and pair_distance(token_range(r.source), token_range(r.target)) > window
    ]
    losses = result.loss_counts()
    assert losses.get("pair_outside_window", 0) == len(far)
    assert losses["label_not_kept"] == sum(r.label != "CONTAINS" for r in doc.relations)
    assert losses["entity_not_kept"] == 1  # the DOCTIME source
    (f,) = result.features
    assert len(f.relations) == result.counts["relations_encoded"] == len(contains) - len(far)
    entities = [m for m in doc.mentions if m.label != "DOCTIME"]
    assert len(f.entities) == len(entities)
    assert result.counts["candidate_pairs"] == len(candidate_pairs(f.entities, window))


@pytest.mark.parametrize(("max_length", "stride"), [(100_000, 0), (40, 30), (64, 48)])
def test_round_trip_of_relations(tokenizer, max_length: int, stride: int) -> None:
    doc = _temporal_document()
    task = get_task("semeval2016t12", relation_window=30, max_length=max_length, stride=stride)
    result = task.encode([doc], tokenizer)
    predictions = [
        WindowPrediction(f.task, f.doc_id, f.window, relations=[(h, t, label, 1.0) for h, t, label in f.relations])
        for f in result.features
    ]
    (decoded,) = task.decode([doc], predictions, result.features)
    assert decoded.mentions == doc.mentions
    predicted = {(r.source, r.target, r.label) for r in decoded.relations}
    lost = {loss.item for loss in result.losses}
    expected = {(r.source, r.target, r.label) for r in doc.relations if r.id not in lost}
    assert predicted == expected and len(expected) == result.counts["relations_encoded"]
    assert all(r.id.endswith("@system") for r in decoded.relations)


def test_other_tlink_types_can_be_kept(tokenizer) -> None:
    doc = _temporal_document()
    task = get_task("semeval2016t12", relation_labels=["CONTAINS", "OVERLAP"], relation_window=None, max_length=100_000)
    result = task.encode([doc], tokenizer)
    (f,) = result.features
    assert {label for _, _, label in f.relations} == {0, 1}
    assert result.loss_counts()["label_not_kept"] == 1  # only the ALINK
