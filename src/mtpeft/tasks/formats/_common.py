"""Helpers shared by the readers and writers of the official formats.

* :class:`Collector` implements strict vs lenient reading in one place: a record with a problem
  raises :class:`~mtpeft.errors.FormatError`, or, when lenient, is skipped and listed.
* ``load_json`` / ``parse_xml`` / ``read_text_exact`` turn the parsers' own exceptions into
  ``FormatError`` with file, line and column, so users never see a traceback from a parser.
* Span helpers check offsets against the text (``end`` exclusive everywhere).

Texts are read and written with ``newline=""``: offsets count characters of the file as it is,
and universal-newline translation would silently shift every offset after a ``\\r\\n``.
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from mtpeft.errors import FormatError, Location
from mtpeft.tasks.document import Document, Fragment, Mention, ReadResult, Skipped


class Collector:
    """Raises record errors, or (lenient) records them as :class:`Skipped`.

    Readers wrap each record in ``with collector.record():``; a ``FormatError`` raised inside
    either propagates (strict) or is appended to ``skipped`` and swallowed (lenient).
    """

    def __init__(self, lenient: bool) -> None:
        self.lenient = lenient
        self.skipped: list[Skipped] = []

    def record(self) -> _RecordGuard:
        return _RecordGuard(self)

    def skip_or_raise(self, error: FormatError) -> None:
        if not self.lenient:
            raise error
        reason = error.problem + (f"; expected {error.expected}" if error.expected else "")
        loc = error.location
        self.skipped.append(Skipped(file=loc.file, reason=reason, line=loc.line, element=loc.element))


class _RecordGuard:
    def __init__(self, collector: Collector) -> None:
        self.collector = collector
        self.failed = False

    def __enter__(self) -> _RecordGuard:
        return self

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: object) -> bool:
        if isinstance(exc, FormatError):
            self.collector.skip_or_raise(exc)  # re-raises when strict
            self.failed = True
            return True
        return False


def read_text_exact(path: Path) -> str:
    """The UTF-8 text of ``path`` with its newlines untouched (offsets index this string)."""
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            return handle.read()
    except UnicodeDecodeError as err:
        raise FormatError(
            Location(str(path)), f"not valid UTF-8 at byte {err.start}", "a UTF-8 text file"
        ) from None
    except OSError as err:
        raise FormatError(Location(str(path)), f"cannot be read ({err.strerror})", "a readable file") from None


def write_text_exact(path: Path, text: str) -> None:
    """Write ``text`` as UTF-8 without newline translation (the inverse of ``read_text_exact``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write(text)


def load_json(path: Path) -> Any:
    """Parse a JSON file; syntax errors become ``FormatError`` with line and column."""
    text = read_text_exact(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise FormatError(
            Location(str(path), line=err.lineno), f"invalid JSON at column {err.colno}: {err.msg}", "valid JSON"
        ) from None


def parse_xml(path: Path) -> ElementTree.Element:
    """Parse an XML file; syntax errors become ``FormatError`` with line and column."""
    try:
        return ElementTree.parse(path).getroot()
    except OSError as err:
        raise FormatError(Location(str(path)), f"cannot be read ({err.strerror})", "a readable XML file") from None
    except ElementTree.ParseError as err:
        line, column = err.position
        message = str(err).split(":", 1)[0]  # expat's text without its own "line X, column Y"
        raise FormatError(
            Location(str(path), line=line), f"malformed XML at column {column + 1}: {message}", "well-formed XML"
        ) from None


def parse_offset(value: str, loc: Location, what: str) -> int:
    """A non-negative integer offset, or a ``FormatError`` saying which field was wrong."""
    token = value.strip()
    if not token.isdigit():
        raise FormatError(loc, f"{what} is {value!r}", "a non-negative integer character offset")
    return int(token)


def check_spans(
    spans: Iterable[Fragment], text_length: int | None, loc: Location, *, ordered: bool = True
) -> tuple[Fragment, ...]:
    """Validate fragments: ``start < end``, within the text, and (``ordered``) increasing, disjoint.

    ``text_length`` is ``None`` when the text is absent (Anafora without notes): bounds unchecked.
    """
    checked = tuple(spans)
    if not checked:
        raise FormatError(loc, "no span", "at least one start/end pair")
    for start, end in checked:
        if end <= start:
            raise FormatError(loc, f"span {start}-{end} ends before it starts", "start < end")
        if text_length is not None and end > text_length:
            raise FormatError(
                loc,
                f"span {start}-{end} goes past the end of the text ({text_length} characters)",
                "end <= text length",
            )
    if ordered:
        for (_, prev_end), (start, end) in zip(checked, checked[1:]):
            if start < prev_end:
                raise FormatError(
                    loc, f"fragments {checked} overlap or are out of order", "increasing, non-overlapping fragments"
                )
    return checked


def parse_dash_spans(value: str, text_length: int | None, loc: Location, what: str) -> tuple[Fragment, ...]:
    """Parse ``start-end[,start-end...]`` (the 2015 T14 span syntax) and validate it."""
    spans = []
    for piece in value.split(","):
        bounds = piece.split("-")
        if len(bounds) != 2:
            raise FormatError(loc, f"{what} {value!r} is not start-end pairs", "start-end[,start-end...]")
        spans.append((parse_offset(bounds[0], loc, what), parse_offset(bounds[1], loc, what)))
    return check_spans(spans, text_length, loc)


def format_dash_spans(spans: Iterable[Fragment]) -> str:
    """The inverse of :func:`parse_dash_spans`."""
    return ",".join(f"{start}-{end}" for start, end in spans)


def check_choice(value: str, allowed: Iterable[str], loc: Location, what: str) -> str:
    """``value`` if it is one of ``allowed``, else a ``FormatError`` listing the valid values."""
    choices = list(allowed)
    if value not in choices:
        raise FormatError(loc, f"unknown {what} {value!r}", "one of " + ", ".join(repr(c) for c in choices))
    return value


def pair_pipe_files(path: Path, pipe_suffix: str = ".pipe") -> Iterator[tuple[str, Path | None, Path | None]]:
    """``(name, txt, pipe)`` for every note under ``path``, sorted by name.

    ``path`` may be a folder (searched recursively, so text and annotations may sit in sibling
    folders as in some distributions), one ``.pipe`` file or one ``.txt`` file. A ``.txt`` without
    ``.pipe`` is an unannotated note (``pipe`` is ``None``); a ``.pipe`` without ``.txt`` yields
    ``txt=None`` and the reader reports it. Two texts with one name are ambiguous: an error.
    """
    if path.is_file():
        if path.name.endswith(pipe_suffix):
            name = path.name[: -len(pipe_suffix)]
            txt = path.with_name(name + ".txt")
            yield name, (txt if txt.is_file() else None), path
        elif path.suffix == ".txt":
            pipe = path.with_name(path.stem + pipe_suffix)
            yield path.stem, path, (pipe if pipe.is_file() else None)
        else:
            raise FormatError(Location(str(path)), "not a .txt or .pipe file", "a folder, a .txt or a .pipe file")
        return
    if not path.is_dir():
        raise FormatError(Location(str(path)), "no such file or folder", "an existing folder of .txt and .pipe files")
    texts: dict[str, Path] = {}
    pipes: dict[str, Path] = {}
    for root, _, files in os.walk(path):
        for file in sorted(files):
            full = Path(root) / file
            if file.endswith(pipe_suffix):
                _add_unique(pipes, file[: -len(pipe_suffix)], full)
            elif file.endswith(".txt"):
                _add_unique(texts, file[: -len(".txt")], full)
    for name in sorted(set(texts) | set(pipes)):
        yield name, texts.get(name), pipes.get(name)


def _add_unique(index: dict[str, Path], name: str, path: Path) -> None:
    if name in index:
        raise FormatError(
            Location(str(path)), f"a second file for note {name!r} (first: {index[name]})", "one file per note name"
        )
    index[name] = path


LineParser = Callable[[str, int, Location], tuple[str, Mention]]
"""Parses one annotation line, given the text length and its location, into (DocName, Mention)."""


def read_pipe_notes(path: Path, parse_line: LineParser, *, lenient: bool) -> ReadResult:
    """Read the ``.txt`` + ``.pipe`` notes under ``path`` with a format's ``parse_line``.

    The ``DocName`` field of the lines goes to ``Document.attributes["DocName"]`` and must be
    the same on every line of a file. A ``.pipe`` without its ``.txt`` is an error naming the file.
    """
    collector = Collector(lenient)
    documents = []
    for name, txt, pipe in pair_pipe_files(path):
        with collector.record():
            if txt is None:
                raise FormatError(
                    Location(str(pipe)), f"annotations without their note text {name}.txt", f"{name}.txt next to it"
                )
            text = read_text_exact(txt)
            doc = Document(id=name, text=text, source=str(pipe or txt))
            if pipe is not None:
                _read_pipe_lines(pipe, doc, parse_line, collector)
            documents.append(doc)
    return ReadResult(documents=documents, skipped=collector.skipped)


def _read_pipe_lines(pipe: Path, doc: Document, parse_line: LineParser, collector: Collector) -> None:
    assert doc.text is not None
    for number, line in enumerate(read_text_exact(pipe).splitlines(), start=1):
        if not line.strip():
            continue
        with collector.record():
            loc = Location(str(pipe), line=number)
            doc_name, mention = parse_line(line, len(doc.text), loc)
            known = doc.attributes.setdefault("DocName", doc_name)
            if doc_name != known:
                raise FormatError(loc, f"DocName {doc_name!r} differs from earlier lines ({known!r})", repr(known))
            doc.mentions.append(mention)


def write_pipe_notes(
    documents: Iterable[Document], path: Path, format_line: Callable[[Document, Mention], str]
) -> None:
    """Write ``NAME.pipe`` (one ``format_line`` per mention) and ``NAME.txt`` when the text is known."""
    path.mkdir(parents=True, exist_ok=True)
    for doc in documents:
        lines = [format_line(doc, mention) + "\n" for mention in doc.mentions]
        write_text_exact(path / f"{doc.id}.pipe", "".join(lines))
        if doc.text is not None:
            write_text_exact(path / f"{doc.id}.txt", doc.text)
