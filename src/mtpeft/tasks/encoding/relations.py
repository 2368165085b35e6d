"""Relation-head data: entities as token ranges, candidate pairs within a token window.

The distance between two entities is the start of the later one minus the end of the earlier
one (ends inclusive): 1 for adjacent entities, 0 when they overlap -- the definition of
:func:`mtpeft.heads.relation.entity_distance`, so the pairs counted here as outside the window
are exactly those the head never scores.
"""

from __future__ import annotations

from collections.abc import Sequence

from mtpeft.tasks.document import Mention
from mtpeft.tasks.encoding.alignment import TokenizedText
from mtpeft.tasks.features import TokenRange


def entity_range(tokens: TokenizedText, mention: Mention) -> TokenRange | None:
    """The tokens from the first fragment's first token to the last fragment's last token
    (a discontiguous entity is represented by its extent), or ``None`` if it covers no token."""
    first = tokens.char_span_to_tokens(*mention.spans[0])
    last = tokens.char_span_to_tokens(*mention.spans[-1])
    if first is None or last is None:
        return None
    return first[0], last[1]


def pair_distance(a: TokenRange, b: TokenRange) -> int:
    """Token distance of two entities: later start minus earlier end, 0 when they overlap."""
    return max(0, max(a[0], b[0]) - min(a[1], b[1]))


def candidate_pairs(entities: Sequence[TokenRange], window: int | None) -> list[tuple[int, int]]:
    """Ordered pairs ``(head, tail)`` of distinct entities at most ``window`` tokens apart
    (``None``: all pairs), in index order."""
    return [
        (i, j)
        for i, a in enumerate(entities)
        for j, b in enumerate(entities)
        if i != j and (window is None or pair_distance(a, b) <= window)
    ]
