"""Generic JSONL formats: round trips, bad input with file/line/element, lenient mode."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mtpeft.errors import FormatError
from mtpeft.tasks.generic import GenericFormat, infer_labels, read, write

SPANS = [
    {"id": "d1", "text": "Chest pain and fever.", "spans": [
        {"start": 0, "end": 10, "label": "Disorder"},
        {"id": "m2", "fragments": [[0, 5], [15, 20]], "label": "Disorder"},
        {"start": 0, "end": 5, "label": "Site"}]},
    {"id": "d2", "text": "Nothing to report."},
]  # fmt: skip
RELATIONS = [
    {"id": "r1", "text": "Aspirin caused a rash.", "spans": [
        {"id": "e1", "start": 0, "end": 7, "label": "Drug"}, {"id": "e2", "start": 17, "end": 21, "label": "ADE"}],
     "relations": [{"head": "e1", "tail": "e2", "label": "CAUSES"}]},
]  # fmt: skip
RANKING = [
    {"id": "q1", "query": "Where to swim?", "candidates": [
        {"id": "c1", "text": "The beach.", "label": 2}, {"id": "c2", "text": "No idea.", "label": 0},
        {"id": "c3", "text": "Maybe a pool.", "label": 1}]},
]  # fmt: skip


def _write_lines(path: Path, items: list) -> Path:
    path.write_text(
        "".join((item if isinstance(item, str) else json.dumps(item)) + "\n" for item in items), encoding="utf-8"
    )
    return path


@pytest.mark.parametrize(("kind", "items"), [("spans", SPANS), ("relations", RELATIONS), ("ranking", RANKING)])
def test_round_trip(tmp_path: Path, kind: str, items: list) -> None:
    first = read(_write_lines(tmp_path / "a.jsonl", items), kind).documents
    write(first, tmp_path / "b.jsonl", kind)
    second = read(tmp_path / "b.jsonl", kind).documents
    assert [(d.id, d.text, d.mentions, d.relations, d.candidates) for d in first] == [
        (d.id, d.text, d.mentions, d.relations, d.candidates) for d in second
    ]
    assert len(first) == len(items)


def test_reader_content(tmp_path: Path) -> None:
    docs = read(_write_lines(tmp_path / "a.jsonl", SPANS), "spans").documents
    assert [m.id for m in docs[0].mentions] == ["S0", "m2", "S2"]
    assert docs[0].mentions[1].spans == ((0, 5), (15, 20))
    assert docs[1].mentions == []
    ranking = read(_write_lines(tmp_path / "r.jsonl", RANKING), "ranking").documents[0]
    assert ranking.text == "Where to swim?" and [c.label for c in ranking.candidates] == ["2", "0", "1"]
    assert infer_labels(docs, "spans") == ["Disorder", "Site"]
    assert infer_labels([ranking], "ranking") == ["0", "1", "2"]


def test_folder_of_files(tmp_path: Path) -> None:
    _write_lines(tmp_path / "b.jsonl", SPANS[1:])
    _write_lines(tmp_path / "a.jsonl", SPANS[:1])
    assert [d.id for d in GenericFormat("spans").read(tmp_path).documents] == ["d1", "d2"]


BAD = [
    ("spans", '{"id": "x", "text": "abc"', 1, "invalid JSON"),
    ("spans", {"id": "x"}, 1, "missing 'text'"),
    ("spans", {"id": "x", "text": "abc", "span": []}, 1, "unknown key(s) 'span'"),
    ("spans", {"id": 3, "text": "abc"}, 1, '"id" is 3'),
    ("spans", {"id": "x", "text": "abc", "spans": [{"start": 2, "end": 1, "label": "A"}]}, 1, "ends before it starts"),
    ("spans", {"id": "x", "text": "abc", "spans": [{"start": 0, "end": 9, "label": "A"}]}, 1, "past the end"),
    ("spans", {"id": "x", "text": "abc", "spans": [{"start": 0, "end": 2, "label": "B"}]}, 1, "unknown label 'B'"),
    ("spans", {"id": "x", "text": "abc", "spans": [{"start": 0, "label": "A"}]}, 1, "only one of start/end"),
    ("spans", {"id": "x", "text": "abc", "spans": [{"fragments": [[0, 2], [1, 3]], "label": "A"}]}, 1, "overlap"),
    ("spans", {"id": "x", "text": "abc", "spans": [{"start": -1, "end": 2, "label": "A"}]}, 1, "non-negative"),
    ("relations", {"id": "x", "text": "abc", "spans": [{"start": 0, "end": 1, "label": "A"}]}, 1, "missing 'id'"),
    ("relations", {"id": "x", "text": "abc", "spans": [{"id": "e", "start": 0, "end": 1, "label": "A"}],
                   "relations": [{"head": "e", "tail": "f", "label": "A"}]}, 1, "refers to span 'f'"),
    ("ranking", {"id": "q", "query": "?", "candidates": [{"id": "c", "text": "t"}, {"id": "c", "text": "u"}]}, 1,
     "duplicate candidate"),
    ("ranking", {"id": "q", "query": "?", "candidates": [{"id": "c"}]}, 1, "missing 'text'"),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "line", "line_number", "message"), BAD, ids=[b[3] for b in BAD])
def test_bad_input_names_file_line_and_problem(tmp_path: Path, kind: str, line, line_number: int, message: str) -> None:
    path = _write_lines(tmp_path / "bad.jsonl", ["", line])
    labels = ["A"] if kind == "spans" else None
    with pytest.raises(FormatError) as err:
        read(path, kind, labels=labels)
    assert err.value.location.file == str(path) and err.value.location.line == line_number + 1
    assert message in str(err.value)
    assert str(path) in str(err.value)


def test_duplicate_document_id(tmp_path: Path) -> None:
    path = _write_lines(tmp_path / "dup.jsonl", [SPANS[1], SPANS[1]])
    with pytest.raises(FormatError, match="duplicate id 'd2'"):
        read(path, "spans")


def test_missing_path() -> None:
    with pytest.raises(FormatError, match="no such file"):
        read("/nonexistent/x.jsonl", "spans")


def test_lenient_skips_and_lists(tmp_path: Path) -> None:
    bad_span = {
        "id": "x",
        "text": "abc",
        "spans": [{"start": 0, "end": 9, "label": "A"}, {"start": 0, "end": 1, "label": "A"}],
    }
    path = _write_lines(tmp_path / "mixed.jsonl", [SPANS[1], "{broken", bad_span])
    result = read(path, "spans", lenient=True)
    assert [d.id for d in result.documents] == ["d2", "x"]
    assert [m.spans for m in result.documents[1].mentions] == [((0, 1),)]
    assert [(s.line, s.element) for s in result.skipped] == [(2, None), (3, "id x, span #0")]
    assert "invalid JSON" in result.skipped[0].reason


def test_relations_to_a_skipped_span_are_skipped_too(tmp_path: Path) -> None:
    spans = [{"id": "e1", "start": 0, "end": 9, "label": "A"}, {"id": "e2", "start": 0, "end": 1, "label": "A"}]
    item = {"id": "x", "text": "abc", "spans": spans, "relations": [{"head": "e1", "tail": "e2", "label": "R"}]}
    result = read(_write_lines(tmp_path / "r.jsonl", [item]), "relations", lenient=True)
    assert result.documents[0].relations == [] and len(result.skipped) == 2


def test_ranking_grades_need_an_order() -> None:
    from mtpeft.tasks.document import Candidate, Document

    with pytest.raises(ValueError, match="least relevant first"):
        infer_labels(
            [Document("q", "?", candidates=[Candidate("c", "t", "high"), Candidate("d", "u", "low")])], "ranking"
        )
