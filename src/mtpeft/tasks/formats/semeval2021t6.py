"""SemEval-2021 Task 6, subtask 2 (persuasion techniques in meme text): JSON.

The files (named ``.txt``) hold a JSON list of memes::

    [{"id": "128", "text": "...", "labels": [{"start": 0, "end": 41,
      "technique": "Slogans", "text_fragment": "..."}]}]

Each meme becomes a :class:`Document`; each label a :class:`Mention` with ``label`` = technique,
one fragment ``(start, end)`` and ``attributes={"text_fragment": ...}`` as given in the file
(predictions may omit it). Spans may overlap. Offsets are trusted: a ``text_fragment`` that
differs from ``text[start:end]`` is kept as written and listed by :func:`fragment_mismatches`.
Mention ids are ``T<index in labels>``.

The official scorer requires a prediction file with exactly the gold ids: see
:func:`write_predictions`.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mtpeft.errors import FormatError, Location
from mtpeft.tasks.document import Document, Mention, ReadResult
from mtpeft.tasks.formats._common import (
    Collector,
    check_choice,
    check_spans,
    load_json,
    read_text_exact,
    write_text_exact,
)

TECHNIQUES: tuple[str, ...] = (
    "Appeal to authority",
    "Appeal to fear/prejudice",
    "Black-and-white Fallacy/Dictatorship",
    "Causal Oversimplification",
    "Doubt",
    "Exaggeration/Minimisation",
    "Flag-waving",
    "Glittering generalities (Virtue)",
    "Loaded Language",
    "Misrepresentation of Someone's Position (Straw Man)",
    "Name calling/Labeling",
    "Obfuscation, Intentional vagueness, Confusion",
    "Presenting Irrelevant Data (Red Herring)",
    "Reductio ad hitlerum",
    "Repetition",
    "Slogans",
    "Smears",
    "Thought-terminating cliché",
    "Whataboutism",
    "Bandwagon",
)
"""The 20 techniques of subtasks 1 and 2, in the order of ``techniques_list_task1-2.txt``."""

PERSUASION = "PERSUASION"
"""The one merged type of spans found without their technique (mtpeft's level 1 by default): a
file of such spans reads with ``techniques=(*TECHNIQUES, PERSUASION)``; the official scorer
rejects it (it needs techniques)."""


@dataclass(frozen=True)
class FragmentMismatch:
    """A label whose ``text_fragment`` differs from ``text[start:end]`` (the offsets win)."""

    doc_id: str
    mention_id: str
    text_fragment: str
    text_at_offsets: str


def read_techniques(path: str | Path) -> tuple[str, ...]:
    """Technique names from a list file, one per line (blank lines ignored)."""
    return tuple(line.strip() for line in read_text_exact(Path(path)).splitlines() if line.strip())


def read(path: str | Path, *, lenient: bool = False, techniques: Sequence[str] | None = None) -> ReadResult:
    """Read one JSON file of memes (gold or predictions), or every ``.txt`` of a folder.

    In a folder, files named ``techniques_list*`` are not data and are left out. ``techniques``
    defaults to :data:`TECHNIQUES`. Strict by default: the first bad meme or label raises
    ``FormatError`` naming the file, meme id (and label index) and what was expected;
    ``lenient=True`` skips that meme or label (or an unreadable file) and lists it in
    ``ReadResult.skipped``.
    """
    root = Path(path)
    files = [root]
    if root.is_dir():
        files = sorted(f for f in root.glob("*.txt") if not f.name.startswith("techniques_list"))
        if not files:
            raise FormatError(Location(str(root)), "no .txt file in the folder", "a JSON file of memes")
    allowed = list(techniques if techniques is not None else TECHNIQUES)
    collector = Collector(lenient)
    documents: list[Document] = []
    seen: set[str] = set()
    for file in files:
        with collector.record():
            data = load_json(file)
            if not isinstance(data, list):
                raise FormatError(Location(str(file)), f"top-level JSON is a {type(data).__name__}", "a list of memes")
            for index, item in enumerate(data):
                with collector.record():
                    doc = _read_meme(item, index, file, allowed, collector)
                    if doc.id in seen:
                        where = Location(str(file), element=f"id {doc.id}")
                        raise FormatError(where, "duplicate meme id", "unique ids")
                    seen.add(doc.id)
                    documents.append(doc)
    return ReadResult(documents=documents, skipped=collector.skipped)


def _read_meme(item: Any, index: int, file: Path, techniques: list[str], collector: Collector) -> Document:
    loc = Location(str(file), element=f"meme #{index}")
    if not isinstance(item, dict):
        raise FormatError(loc, f"a {type(item).__name__}", 'an object {"id", "text", "labels"}')
    meme_id, text, labels = item.get("id"), item.get("text"), item.get("labels", [])
    if not isinstance(meme_id, str):
        raise FormatError(loc, f'"id" is {meme_id!r}', "a string id")
    loc = Location(str(file), element=f"id {meme_id}")
    if not isinstance(text, str):
        raise FormatError(loc, f'"text" is {type(text).__name__}', "a string")
    if not isinstance(labels, list):
        raise FormatError(loc, f'"labels" is {type(labels).__name__}', "a list of labels")
    doc = Document(id=meme_id, text=text, source=str(file))
    for number, label in enumerate(labels):
        with collector.record():
            label_loc = Location(str(file), element=f"id {meme_id}, label #{number}")
            doc.mentions.append(_read_label(label, f"T{number}", len(text), label_loc, techniques))
    return doc


def _read_label(label: Any, mention_id: str, text_length: int, loc: Location, techniques: list[str]) -> Mention:
    if not isinstance(label, dict):
        raise FormatError(loc, f"a {type(label).__name__}", 'an object {"start", "end", "technique"}')
    start, end, technique = label.get("start"), label.get("end"), label.get("technique")
    for name, value in (("start", start), ("end", end)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise FormatError(loc, f'"{name}" is {value!r}', "a non-negative integer character offset")
    if not isinstance(technique, str):
        raise FormatError(loc, f'"technique" is {technique!r}', "a technique name")
    check_choice(technique, techniques, loc, "technique")
    spans = check_spans([(start, end)], text_length, loc)
    attributes = {}
    if "text_fragment" in label:
        if not isinstance(label["text_fragment"], str):
            raise FormatError(loc, f'"text_fragment" is {label["text_fragment"]!r}', "a string")
        attributes["text_fragment"] = label["text_fragment"]
    return Mention(id=mention_id, spans=spans, label=technique, attributes=attributes)


def fragment_mismatches(documents: Iterable[Document]) -> list[FragmentMismatch]:
    """Labels whose ``text_fragment`` differs from the text at their offsets."""
    found = []
    for doc in documents:
        for mention in doc.mentions:
            fragment = mention.attributes.get("text_fragment")
            if fragment is None or doc.text is None:
                continue
            at_offsets = doc.text[mention.start : mention.end]
            if fragment != at_offsets:
                found.append(FragmentMismatch(doc.id, mention.id, fragment, at_offsets))
    return found


def _to_json(doc: Document) -> dict[str, Any]:
    if doc.text is None:
        raise ValueError(f"meme {doc.id} has no text; the format needs it")
    labels = []
    for mention in doc.mentions:
        if mention.is_discontiguous:
            raise ValueError(f"meme {doc.id}, mention {mention.id}: the format has one fragment per label")
        fragment = mention.attributes.get("text_fragment", doc.text[mention.start : mention.end])
        labels.append(
            {"start": mention.start, "end": mention.end, "technique": mention.label, "text_fragment": fragment}
        )
    return {"id": doc.id, "text": doc.text, "labels": labels}


def write(documents: Iterable[Document], path: str | Path) -> None:
    """Write memes as the official JSON list (UTF-8, 4-space indent).

    ``text_fragment`` is the one read (kept even where it differs from the offsets) or, for new
    mentions, ``text[start:end]``.
    """
    items = [_to_json(doc) for doc in documents]
    write_text_exact(Path(path), json.dumps(items, ensure_ascii=False, indent=4) + "\n")


def write_predictions(
    documents: Iterable[Document], path: str | Path, *, gold_ids: Iterable[str] | None = None
) -> None:
    """Write a prediction file for the official scorer (same schema as the gold file).

    The scorer rejects a file whose ids differ from the gold ids: with ``gold_ids`` given, a
    missing, extra or repeated id raises ``ValueError`` before anything is written.
    """
    documents = list(documents)
    if gold_ids is not None:
        ids = [doc.id for doc in documents]
        expected = set(gold_ids)
        missing, extra = sorted(expected - set(ids)), sorted(set(ids) - expected)
        repeated = sorted(i for i, n in Counter(ids).items() if n > 1)
        if missing or extra or repeated:
            raise ValueError(
                f"prediction ids must equal the gold ids: missing {missing[:10]}, extra {extra[:10]}, "
                f"repeated {repeated[:10]} ({len(missing)}, {len(extra)}, {len(repeated)} in all)"
            )
    write(documents, path)
