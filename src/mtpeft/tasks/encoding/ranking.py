"""Ranking-head data: one input per (question, candidate) pair, truncated to fit the model.

The input is ``question tokens + separator tokens + candidate tokens``; the candidate comes
last because a decoder's last token is the one that has read the whole pair (the ranking head
pools it). When the pair is too long, the longer side is cut at its end first: the question
keeps at least half of the budget if it needs it, the candidate the rest.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class PairLayout:
    """How many question and candidate tokens a pair keeps (``dropped`` = tokens cut)."""

    question: int
    candidate: int
    dropped: int


def fit_pair(n_question: int, n_candidate: int, n_separator: int, max_length: int) -> PairLayout:
    """Token counts to keep of each side so the pair fits ``max_length`` tokens."""
    budget = max_length - n_separator
    if budget < 2:
        raise ValueError(f"max_length {max_length} leaves no room for a question and a candidate")
    if n_question + n_candidate <= budget:
        return PairLayout(n_question, n_candidate, 0)
    keep_question = min(n_question, max(budget // 2, budget - n_candidate))
    keep_candidate = min(n_candidate, budget - keep_question)
    return PairLayout(keep_question, keep_candidate, n_question + n_candidate - keep_question - keep_candidate)
