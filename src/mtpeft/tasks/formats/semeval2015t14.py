"""SemEval-2015 Task 14 (disorders + attribute slot filling): ``NAME.txt`` + ``NAME.pipe``.

One disorder per line, a single pipe between exactly 19 fields (:data:`FIELDS`)::

    DocName|Diso_Spans|CUI|Neg_value|Neg_span|...|Bodyloc_value|Bodyloc_span

Spans are ``start-end``, several comma-separated (increasing) for a discontiguous disorder; a
cue span is ``null`` when absent. Each line becomes a :class:`Mention` with
``label="Disease_Disorder"``, the spans of ``Diso_Spans``, and ``attributes`` holding the 17
fields after ``Diso_Spans`` as raw strings keyed by their field names (``CUI``, ``Neg_value``,
``Neg_span``, ...), so the writer reproduces each line exactly. Values are validated against
:data:`ALLOWED_VALUES` (the sets of ``FORMATS.md``; pass ``allowed_values`` to widen them).
"""

from __future__ import annotations

import re
from functools import partial
from collections.abc import Iterable, Mapping
from pathlib import Path

from mtpeft.errors import FormatError, Location
from mtpeft.tasks.document import Document, Mention, ReadResult
from mtpeft.tasks.formats._common import (
    check_choice,
    format_dash_spans,
    parse_dash_spans,
    read_pipe_notes,
    write_pipe_notes,
)

LABEL = "Disease_Disorder"
FIELDS = (
    "DocName", "Diso_Spans", "CUI",
    "Neg_value", "Neg_span", "Subj_value", "Subj_span", "Uncertain_value", "Uncertain_span",
    "Course_value", "Course_span", "Severity_value", "Severity_span", "Cond_value", "Cond_span",
    "Generic_value", "Generic_span", "Bodyloc_value", "Bodyloc_span",
)  # fmt: skip
ATTRIBUTE_FIELDS = FIELDS[2:]
"""The fields kept in ``Mention.attributes`` (everything after the disorder spans)."""
SPAN_FIELDS = tuple(name for name in ATTRIBUTE_FIELDS if name.endswith("_span"))
NULL_SPAN = "null"
CUI_LESS = "CUI-less"
CUI_PATTERN = re.compile(r"C\d{7}")

ALLOWED_VALUES: dict[str, frozenset[str]] = {
    "Neg_value": frozenset({"yes", "no"}),
    "Subj_value": frozenset({"patient", "family_member", "other", "donor_other"}),
    "Uncertain_value": frozenset({"yes", "no"}),
    "Course_value": frozenset({"unmarked", "increased", "improved", "worsened", "resolved", "decreased", "changed"}),
    "Severity_value": frozenset({"unmarked", "moderate", "severe", "slight"}),
    "Cond_value": frozenset({"true", "false"}),
    "Generic_value": frozenset({"true", "false"}),
}
"""Allowed values of the attribute slots (``CUI`` and ``Bodyloc_value`` are checked as CUIs)."""

DEFAULTS: dict[str, str] = {
    "CUI": CUI_LESS,
    "Neg_value": "no",
    "Subj_value": "patient",
    "Uncertain_value": "no",
    "Course_value": "unmarked",
    "Severity_value": "unmarked",
    "Cond_value": "false",
    "Generic_value": "false",
    "Bodyloc_value": "NULL",
    **{name: NULL_SPAN for name in SPAN_FIELDS},
}
"""Values the writer uses for attributes a mention lacks (e.g. a span-only prediction)."""


def read(
    path: str | Path, *, lenient: bool = False, allowed_values: Mapping[str, Iterable[str]] | None = None
) -> ReadResult:
    """Read a folder of ``.txt`` + ``.pipe`` notes (or one file of a pair).

    ``allowed_values`` replaces entries of :data:`ALLOWED_VALUES` (e.g. to accept a subject
    value of another corpus version). Strict by default; ``lenient=True`` skips bad lines and
    notes without ``.txt``, listing each in ``ReadResult.skipped``.
    """
    allowed = {**ALLOWED_VALUES, **{k: frozenset(v) for k, v in (allowed_values or {}).items()}}
    return read_pipe_notes(Path(path), partial(parse_line, allowed=allowed), lenient=lenient)


def parse_line(
    line: str, text_length: int, loc: Location, allowed: Mapping[str, frozenset[str]] = ALLOWED_VALUES
) -> tuple[str, Mention]:
    """Parse one ``.pipe`` line into ``(DocName, Mention)``; ``FormatError`` names what is wrong."""
    fields = line.rstrip("\r\n").split("|")
    if len(fields) != len(FIELDS):
        raise FormatError(loc, f"{len(fields)} '|'-separated fields", f"exactly {len(FIELDS)}: " + "|".join(FIELDS))
    values = dict(zip(FIELDS, fields))
    spans = parse_dash_spans(values["Diso_Spans"], text_length, loc, "Diso_Spans")
    for name in ("CUI", "Bodyloc_value"):
        _check_cui(values[name], loc, name, allow_null=name == "Bodyloc_value")
    for name, choices in allowed.items():
        check_choice(values[name], sorted(choices), loc, name)
    for name in SPAN_FIELDS:
        if values[name] != NULL_SPAN:
            parse_dash_spans(values[name], text_length, loc, name)
    attributes = {name: values[name] for name in ATTRIBUTE_FIELDS}
    return values["DocName"], Mention(id=f"L{loc.line}", spans=spans, label=LABEL, attributes=attributes)


def _check_cui(value: str, loc: Location, name: str, *, allow_null: bool) -> None:
    if value == CUI_LESS or CUI_PATTERN.fullmatch(value) or (allow_null and value == "NULL"):
        return
    expected = f"a UMLS CUI (C + 7 digits) or {CUI_LESS!r}" + (" or 'NULL'" if allow_null else "")
    raise FormatError(loc, f"unknown {name} {value!r}", expected)


def format_line(doc: Document, mention: Mention) -> str:
    """One ``.pipe`` line for ``mention``; missing attributes take :data:`DEFAULTS`."""
    doc_name = doc.attributes.get("DocName", f"{doc.id}.txt")
    attributes = [mention.attributes.get(name, DEFAULTS[name]) for name in ATTRIBUTE_FIELDS]
    return "|".join([doc_name, format_dash_spans(mention.spans), *attributes])


def write(documents: Iterable[Document], path: str | Path) -> None:
    """Write ``NAME.pipe`` (and ``NAME.txt`` when the text is known) for each document into ``path``."""
    write_pipe_notes(documents, Path(path), format_line)
