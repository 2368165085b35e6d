"""Span-head data: gold fragments as token ranges, links between fragments, coverage, assembly.

A mention is a chain of fragments; the span head classifies every candidate span of up to
``max_span_len`` tokens and links consecutive fragments (earlier -> later) of a discontiguous
mention. Decoding turns predicted fragments and links back into mentions: a fragment with no
link is a contiguous mention; every maximal path along links is one discontiguous mention, so a
fragment shared by two mentions (``left atrium ... dilated``, ``right ventricle ... dilated``)
can be the end of two paths.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from mtpeft.tasks.features import TokenRange

MAX_PATHS_PER_DOCUMENT = 1000
"""Assembly stops after this many linked mentions in one document (a runaway link predictor)."""


def candidate_spans(seq_len: int, max_span_len: int) -> set[TokenRange]:
    """Every ``(i, j)`` with ``0 <= i <= j < seq_len`` and ``j - i < max_span_len`` (end inclusive).

    A plain-Python statement of the span head's enumeration, used to check coverage
    independently of the head's vectorised code.
    """
    return {(i, j) for i in range(seq_len) for j in range(i, min(i + max_span_len, seq_len))}


def uncovered_spans(span_labels: Iterable[tuple[int, int, int]], seq_len: int, max_span_len: int) -> list[tuple[int, int, int]]:
    """The gold ``(start, end, label)`` fragments that are not candidates of the enumeration."""
    candidates = candidate_spans(seq_len, max_span_len)
    return [span for span in span_labels if (span[0], span[1]) not in candidates]


def fragment_ranges_ok(ranges: Sequence[TokenRange]) -> bool:
    """Whether each fragment starts after the previous one ends (``start_j > end_i``), as the span
    head's links require."""
    return all(b[0] > a[1] for a, b in zip(ranges, ranges[1:]))


def assemble_mentions(
    spans: dict[TokenRange, tuple[int, float]], links: Iterable[tuple[TokenRange, TokenRange]]
) -> tuple[list[tuple[int, list[TokenRange]]], int]:
    """Mentions ``(label, fragments)`` from predicted fragments and links, and the number of chain
    starts whose mentions were cut off by :data:`MAX_PATHS_PER_DOCUMENT`.

    ``spans`` maps a fragment to ``(label, confidence)``; a linked mention takes the label of its
    first fragment. Links that do not go forward (``later start > earlier end``) are ignored.
    """
    successors: dict[TokenRange, list[TokenRange]] = defaultdict(list)
    has_predecessor: set[TokenRange] = set()
    for first, second in set(links):
        if first in spans and second in spans and second[0] > first[1]:
            successors[first].append(second)
            has_predecessor.add(second)
    linked = set(successors) | has_predecessor
    mentions: list[tuple[int, list[TokenRange]]] = [
        (spans[r][0], [r]) for r in sorted(spans) if r not in linked
    ]
    paths: list[list[TokenRange]] = []
    overflow = 0  # sources whose paths were not all enumerated
    for source in sorted(r for r in successors if r not in has_predecessor):
        if len(paths) >= MAX_PATHS_PER_DOCUMENT:
            overflow += 1
            continue
        stack = [[source]]
        while stack and len(paths) < MAX_PATHS_PER_DOCUMENT:
            path = stack.pop()
            nexts = sorted(successors.get(path[-1], ()), reverse=True)
            if nexts:
                stack.extend(path + [n] for n in nexts)
            else:
                paths.append(path)
        overflow += bool(stack)
    mentions.extend((spans[path[0]][0], path) for path in paths)
    mentions.sort(key=lambda m: (m[1][0], m[1][-1]))
    return mentions, overflow
