"""Token label schemes: mentions (as sets of tokens) <-> one tag per token.

Two schemes, chosen by name (``SCHEMES``):

``bio``
    ``O``, ``B-X``, ``I-X``. One tag per token, so it carries contiguous, non-overlapping mentions
    only; a discontiguous mention is lost, and of overlapping mentions the largest set of
    pairwise disjoint ones is kept (weighted interval scheduling).

``biohd``
    BIO plus ``DB-X``/``DI-X`` (a fragment of a discontiguous mention) and ``HB-X``/``HI-X`` (a
    *head*: tokens shared by several mentions), after Tang et al. (2013) for ShARe/CLEF. Decoding
    groups the D and H fragments of one type within one *sentence* (``sentence_units``):

    * D fragments only: they form ONE mention (``left atrium ... dilated``);
    * D and H fragments: EACH D fragment joined with ALL H fragments is a mention
      (``[abdominal]H [pain]D and [tenderness]D`` -> ``abdominal pain``, ``abdominal tenderness``).

    So a sentence can carry, per type, any number of contiguous mentions plus either one
    discontiguous mention, or a group of mentions that share the same head tokens and differ by
    one contiguous part each; this also covers many overlapping pairs (``left chest pain`` +
    ``chest pain radiating``). What it cannot carry -- two unrelated discontiguous mentions in one
    sentence, a discontiguous mention that crosses a sentence boundary, or fragments separated by
    whitespace only -- is reported, never dropped silently.

Decoded mentions are token sets; fragments are their maximal runs of consecutive tokens.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from mtpeft.registry import Registry
from mtpeft.tasks.encoding.alignment import TokenizedText, runs

OVERLAP = "overlap"
DISCONTIGUOUS = "discontiguous_shape"
TOKEN_BOUNDARY = "token_boundary"

_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s|\n[ \t\r\f\v]*\n")


@dataclass(frozen=True)
class TokenMention:
    """A mention as a set of document tokens; ``key`` names the gold mention it came from."""

    label: str
    tokens: frozenset[int]
    key: str = ""

    @property
    def first(self) -> int:
        return min(self.tokens)

    @property
    def last(self) -> int:
        return max(self.tokens)

    @property
    def n_runs(self) -> int:
        return len(runs(self.tokens))


Losses = dict[str, tuple[str, str]]
"""Mention key -> (loss kind, detail) for the mentions a scheme could not encode."""


def sentence_units(tokens: TokenizedText) -> list[int]:
    """A sentence number per token: a new sentence starts after ``.``, ``!`` or ``?`` followed by
    whitespace, and after a blank line (a single line break does not end a sentence: clinical
    notes wrap lines mid-sentence). Used by ``biohd`` to group discontiguous fragments; an
    abbreviation (``Dr. X``) also ends a sentence, which only matters to a discontiguous mention
    across it (reported as ``discontiguous_shape``)."""
    breaks = [match.end() for match in _SENTENCE_BREAK.finditer(tokens.text)]
    return [bisect_right(breaks, core_start) for core_start, _ in tokens.cores]


def max_disjoint(mentions: Sequence[TokenMention]) -> list[TokenMention]:
    """The largest subset of pairwise disjoint contiguous mentions (weighted interval scheduling
    by dynamic programming); among subsets of that size, one covering the most tokens, so a
    nested mention gives way to the one around it."""
    ordered = sorted(mentions, key=lambda m: (m.last, m.first, m.key))
    ends = [m.last for m in ordered]
    # previous[i]: how many of the mentions before ordered[i] end before it starts
    previous = [bisect_right(ends, m.first - 1, 0, i) for i, m in enumerate(ordered)]
    best: list[tuple[int, int]] = [(0, 0)] * (len(ordered) + 1)  # (mentions, tokens) of the best subset
    for i, m in enumerate(ordered):
        count, size = best[previous[i]]
        best[i + 1] = max(best[i], (count + 1, size + len(m.tokens)))
    chosen, i = [], len(ordered)
    while i > 0:
        if best[i] == best[i - 1]:
            i -= 1
        else:
            chosen.append(ordered[i - 1])
            i = previous[i - 1]
    return sorted(chosen, key=lambda m: m.first)


class TagScheme(ABC):
    """Turns token mentions into tags and back; a subclass per scheme."""

    name: str = ""
    prefixes: tuple[str, ...] = ()

    def tags(self, types: Sequence[str]) -> list[str]:
        """The tag set: ``O`` first (label id 0), then each prefix of each type."""
        return ["O"] + [f"{prefix}-{t}" for t in types for prefix in self.prefixes]

    @abstractmethod
    def encode(self, mentions: Sequence[TokenMention], n_tokens: int, units: Sequence[int]) -> tuple[list[str], Losses]:
        """One tag per token, and the mentions that could not be encoded with why."""

    @abstractmethod
    def decode(self, tags: Sequence[str], units: Sequence[int]) -> list[TokenMention]:
        """The mentions that ``tags`` describe (ill-formed sequences are repaired leniently)."""

    def _encode_contiguous(self, tags: list[str], mentions: Sequence[TokenMention], losses: Losses) -> None:
        """Write the largest disjoint subset of contiguous ``mentions`` as B/I; the rest overlap."""
        free = [m for m in mentions if all(tags[t] == "O" for t in m.tokens)]
        for m in mentions:
            if m not in free:
                losses[m.key] = (OVERLAP, "shares tokens with a mention encoded as discontiguous/head")
        kept = max_disjoint(free)
        kept_set = set(kept)
        for m in free:
            if m not in kept_set:
                other = next(k for k in kept if k.tokens & m.tokens)
                losses[m.key] = (OVERLAP, f"overlaps {other.key or 'another mention'}, which was kept")
        for m in kept:
            for t in sorted(m.tokens):
                tags[t] = ("B-" if t == m.first else "I-") + m.label


def _parse_runs(tags: Sequence[str]) -> list[tuple[str, str, int, int]]:
    """``(kind, type, first, last)`` for each tagged run; kind is "", "D" or "H" (B/I, DB/DI, HB/HI).

    An inside tag that does not continue a run of its kind and type starts a new run.
    """
    out: list[tuple[str, str, int, int]] = []
    for i, tag in enumerate(tags):
        if tag == "O" or "-" not in tag:
            continue
        prefix, label = tag.split("-", 1)
        kind, position = prefix[:-1], prefix[-1]
        continues = out and out[-1][3] == i - 1 and out[-1][0] == kind and out[-1][1] == label
        if position == "I" and continues:
            out[-1] = (kind, label, out[-1][2], i)
        else:
            out.append((kind, label, i, i))
    return out


class BIO(TagScheme):
    """Contiguous, non-overlapping mentions only (see the module docstring)."""

    name = "bio"
    prefixes = ("B", "I")

    def encode(self, mentions: Sequence[TokenMention], n_tokens: int, units: Sequence[int]) -> tuple[list[str], Losses]:
        tags = ["O"] * n_tokens
        losses: Losses = {}
        for m in mentions:
            if m.n_runs > 1:
                losses[m.key] = (DISCONTIGUOUS, "BIO cannot express a discontiguous mention")
        self._encode_contiguous(tags, [m for m in mentions if m.n_runs == 1], losses)
        return tags, losses

    def decode(self, tags: Sequence[str], units: Sequence[int]) -> list[TokenMention]:
        return [TokenMention(label, frozenset(range(a, b + 1))) for _, label, a, b in _parse_runs(tags)]


@dataclass
class _Structure:
    head: frozenset[int]
    parts: list[frozenset[int]]  # the D part of each member
    members: list[TokenMention]


class BIOHD(TagScheme):
    """BIO + discontiguous (D) and shared-head (H) fragments (see the module docstring)."""

    name = "biohd"
    prefixes = ("B", "I", "DB", "DI", "HB", "HI")

    def encode(self, mentions: Sequence[TokenMention], n_tokens: int, units: Sequence[int]) -> tuple[list[str], Losses]:
        tags = ["O"] * n_tokens
        losses: Losses = {}
        pools: dict[tuple[int, str], list[TokenMention]] = defaultdict(list)
        for m in mentions:
            if units[m.first] != units[m.last]:
                if m.n_runs > 1:
                    losses[m.key] = (DISCONTIGUOUS, "a discontiguous mention that crosses a sentence boundary")
                continue
            pools[(units[m.first], m.label)].append(m)
        encoded: set[TokenMention] = set()
        for pool in pools.values():
            overlapping = any(m.tokens & o.tokens for i, m in enumerate(pool) for o in pool[i + 1 :])
            if not overlapping and not any(m.n_runs > 1 for m in pool):
                continue
            best = self._best_structure(pool, tags)
            if best is None:
                continue
            for t in best.head:
                tags[t] = ("HB-" if t - 1 not in best.head else "HI-") + best.members[0].label
            for part in best.parts:
                for t in part:
                    tags[t] = ("DB-" if t - 1 not in part else "DI-") + best.members[0].label
            encoded.update(best.members)
        for m in mentions:
            if m.n_runs > 1 and m not in encoded and m.key not in losses:
                shares = any(o is not m and o.tokens & m.tokens for o in mentions)
                losses[m.key] = (
                    (OVERLAP, "shares tokens with another mention in a way BIOHD cannot express")
                    if shares
                    else (DISCONTIGUOUS, "another discontiguous mention of the same type in the same sentence")
                )
        contiguous = [m for m in mentions if m.n_runs == 1 and m not in encoded]
        self._encode_contiguous(tags, contiguous, losses)
        return tags, losses

    @staticmethod
    def _best_structure(pool: list[TokenMention], tags: list[str]) -> _Structure | None:
        """The D/H structure of one sentence and type that encodes the most mentions of ``pool``."""
        pool = sorted(pool, key=lambda m: (m.first, m.last, m.key))
        candidates = [
            _Structure(frozenset(), [m.tokens], [m])
            for m in pool
            if m.n_runs > 1 and all(tags[t] == "O" for t in m.tokens)
        ]
        heads = {m.tokens & o.tokens for i, m in enumerate(pool) for o in pool[i + 1 :] if m.tokens & o.tokens}
        for head in sorted(heads, key=sorted):
            if any(tags[t] != "O" for t in head):
                continue
            parts: list[frozenset[int]] = []
            members: list[TokenMention] = []
            for m in pool:
                rest = m.tokens - head
                if head <= m.tokens and rest and len(runs(rest)) == 1 and all(tags[t] == "O" for t in rest):
                    if not any(rest & p for p in parts):
                        parts.append(rest)
                        members.append(m)
            if len(members) >= 2:
                candidates.append(_Structure(head, parts, members))
        if not candidates:
            return None
        return max(candidates, key=lambda s: (len(s.members), sum(m.n_runs > 1 for m in s.members)))

    def decode(self, tags: Sequence[str], units: Sequence[int]) -> list[TokenMention]:
        out: list[TokenMention] = []
        groups: dict[tuple[int, str], dict[str, list[frozenset[int]]]] = defaultdict(lambda: {"D": [], "H": []})
        for kind, label, a, b in _parse_runs(tags):
            fragment = frozenset(range(a, b + 1))
            if kind == "":
                out.append(TokenMention(label, fragment))
            else:
                groups[(units[a], label)][kind].append(fragment)
        for (_, label), parts in groups.items():
            head = frozenset().union(*parts["H"])
            if parts["D"] and head:
                out.extend(TokenMention(label, d | head) for d in parts["D"])
            else:  # D fragments only (or a head without parts): one mention of all of them
                out.append(TokenMention(label, frozenset().union(*parts["D"], head)))
        return sorted(out, key=lambda m: (m.first, m.last, m.label))


SCHEMES: Registry[type[TagScheme]] = Registry("label scheme")
SCHEMES.register("bio")(BIO)
SCHEMES.register("biohd")(BIOHD)


def get_scheme(name: str) -> TagScheme:
    """The label scheme registered as ``name`` (``bio`` or ``biohd``)."""
    return SCHEMES.get(name)()
