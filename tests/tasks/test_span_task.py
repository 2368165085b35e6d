"""Span tasks: fragments and links, coverage of the candidate enumeration, windows, assembly."""

from __future__ import annotations

import pytest

from mtpeft.tasks.document import Document, Mention
from mtpeft.tasks.encoding.spans import assemble_mentions, candidate_spans, uncovered_spans
from mtpeft.tasks.features import WindowPrediction
from mtpeft.tasks.registry import get_task
from tests.tasks.conftest import char_span, clinical_document


def test_candidate_set_matches_the_span_head() -> None:
    torch = pytest.importorskip("torch")
    from mtpeft.heads.span import enumerate_spans

    for seq_len, max_span_len in [(0, 3), (1, 1), (7, 3), (20, 8), (5, 10)]:
        starts, ends = enumerate_spans(seq_len, max_span_len)
        assert set(zip(starts.tolist(), ends.tolist())) == candidate_spans(seq_len, max_span_len)
        assert isinstance(starts, torch.Tensor)


def test_uncovered_spans() -> None:
    gold = [(0, 0, 0), (2, 4, 0), (3, 9, 0), (8, 10, 0)]
    assert uncovered_spans(gold, seq_len=10, max_span_len=3) == [(3, 9, 0), (8, 10, 0)]


@pytest.mark.parametrize("max_span_len", [1, 2, 3, 8])
def test_every_fitting_mention_is_covered_and_the_others_reported(tokenizer, max_span_len: int) -> None:
    doc = clinical_document()
    task = get_task("semeval2015t14", max_span_len=max_span_len)
    result = task.encode([doc], tokenizer)
    (f,) = result.features
    assert uncovered_spans(f.span_labels, len(f.input_ids), max_span_len) == []
    assert result.counts["fragments_not_candidates"] == 0
    too_long = {loss.item for loss in result.losses if loss.kind == "span_too_long"}
    from mtpeft.tasks.encoding.alignment import tokenize

    tokens = tokenize(doc.text, tokenizer)
    for m in doc.mentions:
        lengths = [r[1] - r[0] + 1 for r in (tokens.char_span_to_tokens(*s) for s in m.spans)]
        assert (m.id in too_long) == (max(lengths) > max_span_len)


def test_round_trip_carries_overlaps_and_shared_fragments(tokenizer) -> None:
    report = get_task("semeval2015t14").round_trip([clinical_document()], tokenizer)
    assert (report.mentions, report.exact) == (10, 9)
    assert [(loss.item, loss.kind) for loss in report.lost] == [("g", "token_boundary")]


def test_links_join_consecutive_fragments(tokenizer) -> None:
    doc = clinical_document()
    (f,) = get_task("semeval2015t14").encode([doc], tokenizer).features
    # one link per two-fragment mention: a, b (sharing "dilated"), d, h, i (sharing "back")
    assert len(f.span_links) == 5
    for i, j in f.span_links:
        assert f.span_labels[j][0] > f.span_labels[i][1]
    assert len(set(f.span_labels)) == len(f.span_labels)


def test_windows_split_links_are_reported(tokenizer) -> None:
    doc = clinical_document()
    task = get_task("semeval2015t14", max_length=8, stride=4)
    result = task.encode([doc], tokenizer)
    report = task.round_trip([doc], tokenizer)
    split = {loss.item for loss in result.losses if loss.kind == "window_boundary"}
    assert split and split <= {"a", "b", "d", "h", "i"}
    assert {loss.item for loss in report.lost} == split | {"g"}
    wide = get_task("semeval2015t14", max_length=16, stride=12).round_trip([doc], tokenizer)
    assert wide.exact == 9


def test_assembly_of_shared_fragments_and_chains() -> None:
    spans = {(0, 1): (0, 0.9), (3, 4): (0, 0.9), (6, 6): (0, 0.8), (8, 8): (0, 0.7), (10, 12): (0, 0.6)}
    links = {
        ((0, 1), (6, 6)): 0.9,
        ((3, 4), (6, 6)): 0.9,
        ((6, 6), (8, 8)): 0.8,
        ((8, 8), (3, 4)): 0.9,
    }  # the last goes back
    mentions = assemble_mentions(spans, links)
    assert [ranges for _, ranges in mentions] == [
        [(0, 1), (6, 6), (8, 8)],
        [(3, 4), (6, 6), (8, 8)],
        [(10, 12)],
    ]
    # a fragment with two outgoing links starts two mentions ("abdominal ... pain", "abdominal ... tenderness")
    fork = assemble_mentions(
        {(0, 0): (0, 1.0), (2, 2): (0, 1.0), (4, 4): (0, 1.0)}, {((0, 0), (2, 2)): 0.6, ((0, 0), (4, 4)): 0.7}
    )
    assert [ranges for _, ranges in fork] == [[(0, 0), (2, 2)], [(0, 0), (4, 4)]]
    pruned = assemble_mentions(
        {(0, 0): (0, 1.0), (2, 2): (0, 1.0), (4, 4): (0, 1.0)},
        {((0, 0), (2, 2)): 0.6, ((0, 0), (4, 4)): 0.7},
        max_paths=1,
    )
    assert [ranges for _, ranges in pruned] == [[(0, 0), (4, 4)], [(2, 2)]]


def test_decode_keeps_owned_spans_once(tokenizer) -> None:
    text = "Severe chest pain today. " * 6
    mentions = [Mention(f"m{k}", (char_span(text, "chest pain", k),), "Disease_Disorder") for k in range(6)]
    doc = Document("d", text, mentions)
    task = get_task("semeval2015t14", max_length=10, stride=6)
    features = task.encode([doc], tokenizer).features
    predictions = [
        WindowPrediction(
            f.task, f.doc_id, f.window, spans=[(s, e, label, 0.9) for s, e, label in f.span_labels], links=[]
        )
        for f in features
    ]
    (decoded,) = task.decode([doc], predictions, features)
    assert sorted(m.spans for m in decoded.mentions) == sorted(m.spans for m in mentions)


def test_runaway_links_fall_back_to_one_link_per_fragment() -> None:
    # a ladder of 2 x 12 fragments where every fragment links to both of the next pair: 2**12 paths
    spans = {(2 * k + side, 2 * k + side): (0, 0.5) for k in range(0, 60, 5) for side in (0, 1)}
    ordered = sorted(spans)
    links = {(a, b): 0.5 + 0.01 * (b[0] % 2) for a in ordered for b in ordered if b[0] // 10 == a[0] // 10 + 1}
    mentions = assemble_mentions(spans, links)
    assert len(mentions) <= len(spans)  # at most one mention per fragment once pruned
    for _, ranges in mentions:  # every chain follows the most confident link (to the odd fragment)
        assert all(r[0] % 2 == 1 for r in ranges[1:])
    assert [len(r) for _, r in mentions if r[0] in ((0, 0), (1, 1))] == [12, 12]
