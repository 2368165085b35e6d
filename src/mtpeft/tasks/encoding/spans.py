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
from collections.abc import Iterable, Mapping, Sequence

from mtpeft.tasks.features import TokenRange

MAX_PATHS_PER_DOCUMENT = 1000
"""More linked mentions than this in one document fall back to one outgoing link per fragment."""


def candidate_spans(seq_len: int, max_span_len: int) -> set[TokenRange]:
    """Every ``(i, j)`` with ``0 <= i <= j < seq_len`` and ``j - i < max_span_len`` (end inclusive).

    A plain-Python statement of the span head's enumeration, used to check coverage
    independently of the head's vectorised code.
    """
    return {(i, j) for i in range(seq_len) for j in range(i, min(i + max_span_len, seq_len))}


def uncovered_spans(
    span_labels: Iterable[tuple[int, int, int]], seq_len: int, max_span_len: int
) -> list[tuple[int, int, int]]:
    """The gold ``(start, end, label)`` fragments that are not candidates of the enumeration."""
    candidates = candidate_spans(seq_len, max_span_len)
    return [span for span in span_labels if (span[0], span[1]) not in candidates]


def fragment_ranges_ok(ranges: Sequence[TokenRange]) -> bool:
    """Whether each fragment starts after the previous one ends (``start_j > end_i``), as the span
    head's links require."""
    return all(b[0] > a[1] for a, b in zip(ranges, ranges[1:]))


def _count_paths(successors: Mapping[TokenRange, list[TokenRange]], sources: Iterable[TokenRange]) -> int:
    """Number of maximal paths from ``sources`` (links go forward, so the graph is acyclic)."""
    paths: dict[TokenRange, int] = {}
    for node in sorted(set(successors) | {n for ns in successors.values() for n in ns}, reverse=True):
        paths[node] = sum(paths[n] for n in successors.get(node, ())) or 1
    return sum(paths[s] for s in sources)


def assemble_mentions(
    spans: Mapping[TokenRange, tuple[int, float]],
    links: Mapping[tuple[TokenRange, TokenRange], float],
    max_paths: int = MAX_PATHS_PER_DOCUMENT,
) -> list[tuple[int, list[TokenRange]]]:
    """Mentions ``(label, fragments)`` from predicted fragments and scored links.

    ``spans`` maps a fragment to ``(label, confidence)``, ``links`` a pair (earlier, later) to its
    confidence; links that do not go forward (``later start > earlier end``) are ignored. A
    linked mention takes the label of its first fragment. When the links would make more than
    ``max_paths`` mentions (an untrained link scorer links nearly everything), each fragment
    keeps only its most confident outgoing link, which bounds the mentions by the fragments.
    """
    successors: dict[TokenRange, list[TokenRange]] = defaultdict(list)
    for (first, second), _ in sorted(links.items()):
        if first in spans and second in spans and second[0] > first[1]:
            successors[first].append(second)
    sources = _sources(successors)
    if _count_paths(successors, sources) > max_paths:
        successors = defaultdict(list, {a: [max(bs, key=lambda b: (links[(a, b)], b))] for a, bs in successors.items()})
        sources = _sources(successors)
    linked = set(successors) | {n for ns in successors.values() for n in ns}
    mentions: list[tuple[int, list[TokenRange]]] = [(spans[r][0], [r]) for r in sorted(spans) if r not in linked]
    for source in sources:
        stack = [[source]]
        while stack:
            path = stack.pop()
            nexts = successors.get(path[-1], ())
            if nexts:
                stack.extend(path + [n] for n in sorted(nexts, reverse=True))
            else:
                mentions.append((spans[path[0]][0], path))
    mentions.sort(key=lambda m: (m[1][0], m[1][-1]))
    return mentions


def _sources(successors: Mapping[TokenRange, list[TokenRange]]) -> list[TokenRange]:
    targets = {n for ns in successors.values() for n in ns}
    return sorted(a for a, ns in successors.items() if ns and a not in targets)
