"""CUI targets of the gold mentions per window, and CUIs of decoded mentions (token and span tasks)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from mtpeft.tasks.base import EncodingLoss
from mtpeft.tasks.document import Mention
from mtpeft.tasks.encoding.alignment import TokenizedText, fragments_to_token_set, runs
from mtpeft.tasks.encoding.windows import Window, owner
from mtpeft.tasks.features import TokenRange
from mtpeft.tasks.normalisation.normaliser import CuiNormaliser, pooled_logits

WindowTargets = tuple[list[list[TokenRange]], list[int]]
"""Per window: each gold mention's fragments as window token ranges, and its CUI class id."""

OUTSIDE_WINDOW = "cui_outside_window"
"""Encoding-loss kind of a gold mention no single window holds: the classifier cannot train on it."""


def window_cui_targets(
    normaliser: CuiNormaliser, doc_id: str, mentions: Iterable[Mention], tokens: TokenizedText, windows: Sequence[Window]
) -> tuple[dict[int, WindowTargets], list[EncodingLoss]]:
    """Each gold mention's CUI target, in ONE window (each mention trains the classifier once):
    the window owning its first token when it holds all its tokens, else the first that does.

    Mentions that cover no token are left to the tag/span encoding (which reports them); a
    mention longer than every window is an ``cui_outside_window`` loss.
    """
    targets: dict[int, WindowTargets] = {w.index: ([], []) for w in windows}
    losses: list[EncodingLoss] = []
    for mention in mentions:
        token_set, _ = fragments_to_token_set(tokens, mention.spans)
        if not token_set or not windows:
            continue
        first, last = min(token_set), max(token_set)
        home = owner(windows, first)
        if not home.contains(first, last):
            home = next((w for w in windows if w.contains(first, last)), None)
        if home is None:
            losses.append(EncodingLoss(doc_id, OUTSIDE_WINDOW, mention.id, f"tokens {first}..{last} fit no window"))
            continue
        ranges, labels = targets[home.index]
        ranges.append([(a - home.start, b - home.start) for a, b in runs(token_set)])
        labels.append(normaliser.target(mention))
    return targets, losses


def assign_cuis(
    normaliser: CuiNormaliser, text: str, mentions: Sequence[Mention], pieces: Sequence[list[tuple[int, np.ndarray]]]
) -> None:
    """Give each decoded mention its CUI from its classifier pieces ``(tokens, logits)`` (pooled,
    length-weighted) and its text; see :meth:`CuiNormaliser.choose`."""
    for mention, own in zip(mentions, pieces):
        normaliser.assign(text, mention, pooled_logits(own))
