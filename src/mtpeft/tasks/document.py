"""The in-memory form of every task's annotations.

Readers of the official formats produce :class:`Document` objects, writers consume them, and
metrics compare them. Offsets are character offsets into ``Document.text`` with ``end``
exclusive (``text[start:end]`` is the fragment), as in every official format.

One class serves all tasks:

* mention tasks (2014 T7, 2015 T14, 2021 T6, the entities of 2016 T12) fill ``mentions``;
* relation tasks (2016 T12) also fill ``relations``, whose ends are mention ids;
* ranking tasks (2017 T3) put the question in ``text`` / ``attributes`` and the comments in
  ``candidates``.

Attributes are kept as the raw strings of the source format (``{"CUI": "C0011849"}``,
``{"Neg_value": "yes", "Neg_span": "12-15"}``), so a writer can reproduce the file exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

Fragment = tuple[int, int]
"""A contiguous character span ``(start, end)``, end exclusive."""


@dataclass
class Mention:
    """An annotated mention: one or more fragments (several for a discontiguous mention)."""

    id: str
    spans: tuple[Fragment, ...]
    label: str
    attributes: dict[str, str] = field(default_factory=dict)

    @property
    def start(self) -> int:
        return self.spans[0][0]

    @property
    def end(self) -> int:
        return self.spans[-1][1]

    @property
    def is_discontiguous(self) -> bool:
        return len(self.spans) > 1


@dataclass
class Relation:
    """A directed relation between two mentions of the same document (by mention id)."""

    id: str
    label: str
    source: str
    target: str
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass
class Candidate:
    """A candidate answer to rank (a forum comment for 2017 T3)."""

    id: str
    text: str
    label: str | None = None
    score: float | None = None
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass
class Document:
    """One unit of a task's data: a note, a meme, a question thread.

    ``text`` is ``None`` when the source has no text (Anafora annotations without the licensed
    note); such documents can be scored but not encoded for a model.
    ``source`` is the path the document was read from, for error messages.
    """

    id: str
    text: str | None
    mentions: list[Mention] = field(default_factory=list)
    relations: list[Relation] = field(default_factory=list)
    candidates: list[Candidate] = field(default_factory=list)
    attributes: dict[str, str] = field(default_factory=dict)
    source: str | None = None

    def mention_by_id(self) -> dict[str, Mention]:
        return {m.id: m for m in self.mentions}


@dataclass
class Skipped:
    """A record that lenient reading skipped, with where it was and why."""

    file: str
    reason: str
    line: int | None = None
    element: str | None = None

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
        if self.element is not None:
            where += f" ({self.element})"
        return f"{where}: {self.reason}"


@dataclass
class ReadResult:
    """What a reader returns: the documents and every record it skipped (lenient mode only)."""

    documents: list[Document]
    skipped: list[Skipped] = field(default_factory=list)
