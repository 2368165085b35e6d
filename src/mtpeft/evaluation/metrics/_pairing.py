"""Pairing predicted documents with gold documents by id, with errors that name the ids.

Official scorers differ in how they treat a prediction file whose ids do not match the gold
(2021 T6 refuses to score, ``ev.py`` stops at the first mismatched line, the 2015 Perl
scorer silently ignores unknown documents). mtpeft always stops with an error that lists the
offending ids, so a number is never computed on the wrong documents.
"""

from __future__ import annotations

from collections.abc import Sequence

from mtpeft.errors import FormatError, Location
from mtpeft.tasks.document import Document

_SHOWN = 10


def _listing(ids: Sequence[str]) -> str:
    shown = ", ".join(repr(i) for i in list(ids)[:_SHOWN])
    more = f" and {len(ids) - _SHOWN} more" if len(ids) > _SHOWN else ""
    return f"[{shown}{more}]"


def source_of(documents: Sequence[Document], default: str) -> str:
    """The file the documents were read from (the first one that says), for error messages."""
    for doc in documents:
        if doc.source:
            return doc.source
    return default


def index_unique(documents: Sequence[Document], what: str) -> dict[str, Document]:
    """``{id: document}``; a repeated id is an error naming the id and the file."""
    index: dict[str, Document] = {}
    for doc in documents:
        if doc.id in index:
            raise FormatError(
                Location(doc.source or what, element=doc.id), f"document id {doc.id!r} appears twice in the {what}",
                "each id once",
            )
        index[doc.id] = doc
    return index


def pair_documents(
    gold: Sequence[Document], pred: Sequence[Document], *, allow_missing: bool = False
) -> list[tuple[Document, Document | None]]:
    """``(gold_doc, pred_doc)`` for every gold document, in gold order.

    Predicted ids that are not gold ids are always an error. Gold ids without a prediction
    are an error too unless ``allow_missing`` (then ``pred_doc`` is ``None``: nothing was
    predicted for that document).
    """
    gold_index = index_unique(gold, "gold")
    pred_index = index_unique(pred, "predictions")
    where = source_of(pred, "predictions")
    unexpected = [i for i in pred_index if i not in gold_index]
    missing = [i for i in gold_index if i not in pred_index]
    if unexpected:
        raise FormatError(
            Location(where), f"{len(unexpected)} predicted document id(s) are not in the gold: {_listing(unexpected)}",
            "the same document ids as the gold file",
        )
    if missing and not allow_missing:
        raise FormatError(
            Location(where), f"no prediction for {len(missing)} gold document id(s): {_listing(missing)}",
            "the same document ids as the gold file (an empty entry for a document without predictions)",
        )
    return [(doc, pred_index.get(doc.id)) for doc in gold]
