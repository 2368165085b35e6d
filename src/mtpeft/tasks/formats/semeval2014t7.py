"""SemEval-2014 Task 7 (ShARe/CLEF disorders): ``NAME.txt`` + ``NAME.pipe``.

One disorder per line of the ``.pipe`` file, fields separated by a double pipe::

    DocName||Disease_Disorder||CUI||start||end[||start||end ...]

Each line becomes a :class:`Mention` with ``label="Disease_Disorder"``, ``attributes={"CUI": ...}``
(a UMLS CUI such as ``C0221755`` or ``CUI-less``) and one fragment per ``start||end`` pair.
The ``DocName`` field is kept in ``Document.attributes["DocName"]`` so the writer reproduces it
(default ``NAME.txt``). Mention ids are ``L<line number>`` in the ``.pipe`` file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from mtpeft.errors import FormatError, Location
from mtpeft.tasks.document import Document, Mention, ReadResult
from mtpeft.tasks.formats._common import check_choice, check_spans, parse_offset, read_pipe_notes, write_pipe_notes

LABEL = "Disease_Disorder"
CUI_LESS = "CUI-less"
CUI_PATTERN = re.compile(r"C\d{7}")
SEPARATOR = "||"


def read(path: str | Path, *, lenient: bool = False) -> ReadResult:
    """Read a folder of ``.txt`` + ``.pipe`` notes (or one file of a pair).

    Strict by default: the first bad line raises ``FormatError`` (file, line, what was expected).
    ``lenient=True`` skips bad lines, and notes whose ``.txt`` is missing, listing each in
    ``ReadResult.skipped``.
    """
    return read_pipe_notes(Path(path), parse_line, lenient=lenient)


def parse_line(line: str, text_length: int, loc: Location) -> tuple[str, Mention]:
    """Parse one ``.pipe`` line into ``(DocName, Mention)``; ``FormatError`` names what is wrong."""
    fields = line.rstrip("\r\n").split(SEPARATOR)
    if len(fields) < 5 or len(fields) % 2 == 0:
        raise FormatError(
            loc,
            f"{len(fields)} '||'-separated fields",
            "DocName||Disease_Disorder||CUI||start||end[||start||end...] (an odd number >= 5)",
        )
    doc_name, label, cui = (field.strip() for field in fields[:3])
    check_choice(label, [LABEL], loc, "label")
    if cui != CUI_LESS and not CUI_PATTERN.fullmatch(cui):
        raise FormatError(loc, f"unknown CUI {cui!r}", f"a UMLS CUI (C + 7 digits) or {CUI_LESS!r}")
    offsets = [parse_offset(value, loc, "offset") for value in fields[3:]]
    spans = check_spans(zip(offsets[0::2], offsets[1::2]), text_length, loc)
    return doc_name, Mention(id=f"L{loc.line}", spans=spans, label=label, attributes={"CUI": cui})


def format_line(doc: Document, mention: Mention) -> str:
    """One ``.pipe`` line for ``mention`` (CUI defaults to ``CUI-less`` when absent)."""
    doc_name = doc.attributes.get("DocName", f"{doc.id}.txt")
    offsets = [str(offset) for span in mention.spans for offset in span]
    fields = [doc_name, LABEL, mention.attributes.get("CUI", CUI_LESS), *offsets]
    return SEPARATOR.join(fields)


def write(documents: Iterable[Document], path: str | Path) -> None:
    """Write ``NAME.pipe`` (and ``NAME.txt`` when the text is known) for each document into ``path``."""
    write_pipe_notes(documents, Path(path), format_line)
