"""Fixtures of the task tests: real data location and hand-built documents."""

from __future__ import annotations

from pathlib import Path

import pytest

from mtpeft.tasks.document import Document, Mention
from mtpeft.testing import require_shared_data

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "data" / "samples"


@pytest.fixture
def shared_data() -> Path:
    """The folder of real official files; skips the test when it is absent."""
    return require_shared_data("")


def char_span(text: str, piece: str, occurrence: int = 0) -> tuple[int, int]:
    """``(start, end)`` of the ``occurrence``-th ``piece`` in ``text``."""
    start = -1
    for _ in range(occurrence + 1):
        start = text.index(piece, start + 1)
    return start, start + len(piece)


CLINICAL_TEXT = (
    "The left atrium and right ventricle are dilated. Patient has abdominal pain and tenderness.\n\n"
    "No fever. Chest pain radiating to the arm; painful knee. Mild rash and itching on the back."
)


def clinical_document(doc_id: str = "note1", label: str = "Disease_Disorder") -> Document:
    """A note whose mentions exercise each shape:

    a, b: discontiguous, sharing the head ``dilated``; c: ``abdominal pain`` (contiguous) and
    d: ``abdominal ... tenderness`` (discontiguous, sharing ``abdominal``); e, f: contiguous;
    g: ``pain`` inside the token ``painful`` (token boundary); h, i: ``rash ... back`` and
    ``itching ... back`` (discontiguous, sharing ``back``); j: ``Mild rash`` (contiguous, overlaps
    h's first fragment: BIOHD cannot also carry it).
    """
    t = CLINICAL_TEXT
    mentions = [
        Mention("a", (char_span(t, "left atrium"), char_span(t, "dilated")), label),
        Mention("b", (char_span(t, "right ventricle"), char_span(t, "dilated")), label),
        Mention("c", (char_span(t, "abdominal pain"),), label),
        Mention("d", (char_span(t, "abdominal"), char_span(t, "tenderness")), label),
        Mention("e", (char_span(t, "fever"),), label),
        Mention("f", (char_span(t, "Chest pain"),), label),
        Mention("g", (char_span(t, "pain", 2),), label),
        Mention("h", (char_span(t, "rash"), char_span(t, "back")), label),
        Mention("i", (char_span(t, "itching"), char_span(t, "back")), label),
        Mention("j", (char_span(t, "Mild rash"),), label),
    ]
    return Document(id=doc_id, text=t, mentions=mentions)
