"""Building texts piece by piece while recording the character spans of annotated pieces."""

from __future__ import annotations

import random
import re

Fragment = tuple[int, int]


class TextBuilder:
    """Appends pieces of text; ``add`` returns the ``(start, end)`` span of the piece just added."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._length = 0

    def add(self, piece: str) -> Fragment:
        start = self._length
        self._parts.append(piece)
        self._length += len(piece)
        return (start, self._length)

    @property
    def text(self) -> str:
        return "".join(self._parts)


_MARK = re.compile(r"<([A-Z]{2})\||>")


def parse_markup(marked: str, names: dict[str, str]) -> tuple[str, list[tuple[int, int, str]]]:
    """Strip ``<XX|...>`` marks (nestable) and return the text and ``(start, end, names[XX])`` spans.

    Nesting gives overlapping labels: ``<SM|they <LL|lied>>`` labels the whole clause and one word.
    Spans are listed in the order their marks close.
    """
    text: list[str] = []
    length = 0
    open_marks: list[tuple[str, int]] = []
    spans = []
    position = 0
    for match in _MARK.finditer(marked):
        piece = marked[position : match.start()]
        text.append(piece)
        length += len(piece)
        position = match.end()
        if match.group(1):
            open_marks.append((match.group(1), length))
        else:
            code, start = open_marks.pop()
            spans.append((start, length, names[code]))
    if open_marks:
        raise ValueError(f"unclosed mark in template {marked!r}")
    text.append(marked[position:])
    return "".join(text), spans


def fill(template: str, slots: dict[str, list[str]], rng: random.Random) -> str:
    """Replace each ``{NAME}`` with a random choice from ``slots[NAME]`` (choices may hold marks)."""
    return re.sub(r"\{([A-Z_]+)\}", lambda m: rng.choice(slots[m.group(1)]), template)
