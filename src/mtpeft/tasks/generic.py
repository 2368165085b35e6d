"""Generic JSONL formats, one per kind of annotation, for tasks defined without Python.

One JSON object per line (blank lines are ignored); a path is a ``.jsonl`` file or a folder of
them (read in name order). See ``docs/generic-formats.md`` for the full description.

``spans`` (token and span heads)::

    {"id": "d1", "text": "Chest pain and fever.", "spans": [
        {"start": 0, "end": 10, "label": "Disorder"},
        {"fragments": [[0, 5], [15, 20]], "label": "Disorder", "id": "m2"}]}

``relations`` (relation head): ``spans`` as above, each with an ``id``, plus
``"relations": [{"head": "m1", "tail": "m2", "label": "CAUSES"}]``.

``ranking`` (ranking head)::

    {"id": "q1", "query": "...", "candidates": [{"id": "c1", "text": "...", "label": "Good"}]}

Offsets are characters of ``text`` with ``end`` exclusive; fragments increase and do not
overlap. Labels are strings (integers are accepted and kept as their decimal string, handy for
graded relevance). Unknown keys are errors, so a typo (``"lable"``) is caught.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from mtpeft.errors import FormatError, Location
from mtpeft.tasks.document import Candidate, Document, Mention, ReadResult, Relation
from mtpeft.tasks.formats._common import Collector, check_spans, read_text_exact, write_text_exact

KINDS = ("spans", "relations", "ranking")
_DOC_KEYS = {
    "spans": {"id", "text", "spans"},
    "relations": {"id", "text", "spans", "relations"},
    "ranking": {"id", "query", "candidates"},
}
_SPAN_KEYS = {"id", "start", "end", "fragments", "label"}
_RELATION_KEYS = {"id", "head", "tail", "label"}
_CANDIDATE_KEYS = {"id", "text", "label"}


class GenericFormat:
    """Reader and writer of one generic JSONL kind; ``labels`` (if given) are the only labels allowed."""

    def __init__(self, kind: str, labels: Sequence[str] | None = None) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown generic format {kind!r}; valid choices: {', '.join(KINDS)}")
        self.kind = kind
        self.labels = None if labels is None else list(labels)

    def read(self, path: str | Path, *, lenient: bool = False) -> ReadResult:
        return read(path, self.kind, lenient=lenient, labels=self.labels)

    def write(self, documents: Iterable[Document], path: str | Path) -> None:
        write(documents, path, self.kind)

    def __repr__(self) -> str:
        return f"GenericFormat({self.kind!r})"


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(path.glob("*.jsonl"))
        if not files:
            raise FormatError(Location(str(path)), "no .jsonl file in the folder", "a .jsonl file or a folder of them")
        return files
    if not path.is_file():
        raise FormatError(Location(str(path)), "no such file or folder", "a .jsonl file or a folder of them")
    return [path]


def read(path: str | Path, kind: str, *, lenient: bool = False, labels: Sequence[str] | None = None) -> ReadResult:
    """Read generic JSONL of ``kind`` (spans, relations, ranking).

    Strict by default: the first problem raises :class:`FormatError` naming the file, line,
    element and what was expected. ``lenient=True`` skips the bad line, span, relation or
    candidate (and the relations that point to a skipped span) and lists each in ``skipped``.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown generic format {kind!r}; valid choices: {', '.join(KINDS)}")
    collector = Collector(lenient)
    documents: list[Document] = []
    seen: dict[str, Location] = {}
    for file in _files(Path(path)):
        with collector.record():
            lines = read_text_exact(file).splitlines()
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                with collector.record():
                    loc = Location(str(file), line=number)
                    doc = _read_line(line, loc, kind, labels, collector)
                    if doc.id in seen:
                        raise FormatError(
                            loc, f"duplicate id {doc.id!r} (first at {seen[doc.id]})", "unique document ids"
                        )
                    seen[doc.id] = loc
                    documents.append(doc)
    return ReadResult(documents=documents, skipped=collector.skipped)


def _read_line(line: str, loc: Location, kind: str, labels: Sequence[str] | None, collector: Collector) -> Document:
    try:
        item = json.loads(line)
    except json.JSONDecodeError as err:
        raise FormatError(loc, f"invalid JSON at column {err.colno}: {err.msg}", "one JSON object per line") from None
    _check_object(
        item, _DOC_KEYS[kind], {"id", "query", "candidates"} if kind == "ranking" else {"id", "text"}, loc, "line"
    )
    doc_id = _string(item["id"], loc, "id")
    loc = Location(loc.file, loc.line, f"id {doc_id}")
    if kind == "ranking":
        doc = Document(id=doc_id, text=_string(item["query"], loc, "query"), source=loc.file)
        for index, raw in enumerate(_list(item, "candidates", loc)):
            with collector.record():
                doc.candidates.append(
                    _read_candidate(raw, Location(loc.file, loc.line, f"id {doc_id}, candidate #{index}"), labels)
                )
        ids = [c.id for c in doc.candidates]
        if len(set(ids)) != len(ids):
            raise FormatError(loc, "duplicate candidate ids", "unique candidate ids within a line")
        return doc
    text = _string(item["text"], loc, "text")
    doc = Document(id=doc_id, text=text, source=loc.file)
    span_labels = None if kind == "relations" else labels
    for index, raw in enumerate(_list(item, "spans", loc)):
        with collector.record():
            span_loc = Location(loc.file, loc.line, f"id {doc_id}, span #{index}")
            mention = _read_span(raw, index, len(text), span_loc, span_labels, require_id=kind == "relations")
            if any(m.id == mention.id for m in doc.mentions):
                raise FormatError(span_loc, f"duplicate span id {mention.id!r}", "unique span ids within a line")
            doc.mentions.append(mention)
    if kind == "relations":
        span_ids = {m.id for m in doc.mentions}
        for index, raw in enumerate(_list(item, "relations", loc)):
            with collector.record():
                rel_loc = Location(loc.file, loc.line, f"id {doc_id}, relation #{index}")
                doc.relations.append(_read_relation(raw, index, span_ids, rel_loc, labels))
    return doc


def _check_object(item: Any, allowed: set[str], required: set[str], loc: Location, what: str) -> None:
    if not isinstance(item, dict):
        raise FormatError(
            loc, f"{what} is a {type(item).__name__}", f"a JSON object with {', '.join(sorted(required))}"
        )
    missing = sorted(required - set(item))
    if missing:
        raise FormatError(loc, f"missing {', '.join(repr(k) for k in missing)}", f"keys {', '.join(sorted(allowed))}")
    unknown = sorted(set(item) - allowed)
    if unknown:
        raise FormatError(
            loc, f"unknown key(s) {', '.join(repr(k) for k in unknown)}", f"only {', '.join(sorted(allowed))}"
        )


def _string(value: Any, loc: Location, what: str) -> str:
    if not isinstance(value, str):
        raise FormatError(loc, f'"{what}" is {value!r}', "a string")
    return value


def _list(item: dict, key: str, loc: Location) -> list:
    value = item.get(key, [])
    if not isinstance(value, list):
        raise FormatError(loc, f'"{key}" is a {type(value).__name__}', "a list")
    return value


def _label(value: Any, loc: Location, labels: Sequence[str] | None, required: bool = True) -> str | None:
    if value is None and not required:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value:
        raise FormatError(loc, f'"label" is {value!r}', "a non-empty string (or an integer grade)")
    if labels is not None and value not in labels:
        raise FormatError(loc, f"unknown label {value!r}", "one of " + ", ".join(repr(label) for label in labels))
    return value


def _offset(value: Any, loc: Location, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise FormatError(loc, f"{what} is {value!r}", "a non-negative integer character offset")
    return value


def _read_span(
    raw: Any, index: int, text_length: int, loc: Location, labels: Sequence[str] | None, require_id: bool
) -> Mention:
    _check_object(raw, _SPAN_KEYS, {"label", "id"} if require_id else {"label"}, loc, "span")
    if ("fragments" in raw) == ("start" in raw or "end" in raw):
        raise FormatError(loc, "a span needs start/end or fragments (not both)", '"start" and "end", or "fragments"')
    if "fragments" in raw:
        fragments = raw["fragments"]
        if not isinstance(fragments, list) or not all(isinstance(f, list) and len(f) == 2 for f in fragments):
            raise FormatError(loc, f'"fragments" is {fragments!r}', "a list of [start, end] pairs")
        pairs = [(_offset(f[0], loc, "fragment start"), _offset(f[1], loc, "fragment end")) for f in fragments]
    else:
        if "start" not in raw or "end" not in raw:
            raise FormatError(loc, "a span with only one of start/end", '"start" and "end"')
        pairs = [(_offset(raw["start"], loc, '"start"'), _offset(raw["end"], loc, '"end"'))]
    spans = check_spans(pairs, text_length, loc)
    mention_id = _string(raw["id"], loc, "id") if "id" in raw else f"S{index}"
    return Mention(id=mention_id, spans=spans, label=_label(raw["label"], loc, labels))


def _read_relation(raw: Any, index: int, span_ids: set[str], loc: Location, labels: Sequence[str] | None) -> Relation:
    _check_object(raw, _RELATION_KEYS, {"head", "tail", "label"}, loc, "relation")
    head, tail = _string(raw["head"], loc, "head"), _string(raw["tail"], loc, "tail")
    for end in (head, tail):
        if end not in span_ids:
            raise FormatError(loc, f"refers to span {end!r}, which is not on this line", "ids of this line's spans")
    relation_id = _string(raw["id"], loc, "id") if "id" in raw else f"R{index}"
    return Relation(id=relation_id, label=_label(raw["label"], loc, labels), source=head, target=tail)


def _read_candidate(raw: Any, loc: Location, labels: Sequence[str] | None) -> Candidate:
    _check_object(raw, _CANDIDATE_KEYS, {"id", "text"}, loc, "candidate")
    return Candidate(
        id=_string(raw["id"], loc, "id"), text=_string(raw["text"], loc, "text"),
        label=_label(raw.get("label"), loc, labels, required=False),
    )  # fmt: skip


def to_json(doc: Document, kind: str) -> dict[str, Any]:
    """The JSON object of one document in the generic format ``kind``."""
    if kind == "ranking":
        candidates = [
            {"id": c.id, "text": c.text, **({"label": c.label} if c.label is not None else {})} for c in doc.candidates
        ]
        return {"id": doc.id, "query": doc.text, "candidates": candidates}
    if doc.text is None:
        raise ValueError(f"document {doc.id!r} has no text; the generic {kind} format needs it")
    spans = []
    for m in doc.mentions:
        where = {"start": m.start, "end": m.end} if len(m.spans) == 1 else {"fragments": [list(f) for f in m.spans]}
        spans.append({"id": m.id, **where, "label": m.label})
    item: dict[str, Any] = {"id": doc.id, "text": doc.text, "spans": spans}
    if kind == "relations":
        item["relations"] = [{"id": r.id, "head": r.source, "tail": r.target, "label": r.label} for r in doc.relations]
    return item


def write(documents: Iterable[Document], path: str | Path, kind: str) -> None:
    """Write documents as generic JSONL of ``kind`` (one line per document, UTF-8)."""
    if kind not in KINDS:
        raise ValueError(f"unknown generic format {kind!r}; valid choices: {', '.join(KINDS)}")
    lines = [json.dumps(to_json(doc, kind), ensure_ascii=False) + "\n" for doc in documents]
    write_text_exact(Path(path), "".join(lines))


def infer_labels(documents: Iterable[Document], kind: str) -> list[str]:
    """The labels used in ``documents``: span labels (spans), relation labels (relations), or
    candidate grades (ranking; integers only, sorted by value, since their order is the grade)."""
    docs = list(documents)
    if kind == "spans":
        return sorted({m.label for d in docs for m in d.mentions})
    if kind == "relations":
        return sorted({r.label for d in docs for r in d.relations})
    grades = {c.label for d in docs for c in d.candidates if c.label is not None}
    if not all(g.lstrip("-").isdigit() for g in grades):
        raise ValueError(
            f"cannot infer the order of ranking grades {sorted(grades)}; list them as labels, least relevant first"
        )
    return sorted(grades, key=int)
