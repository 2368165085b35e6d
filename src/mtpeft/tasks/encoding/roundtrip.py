"""Encode gold annotations, decode them back as if they were predictions, and compare.

A round trip measures what a task's encoding can carry at best: a mention that does not come
back exactly can never be predicted exactly, whatever the model. The report counts the mentions
that survive and lists the others with the reason the encoder gave (overlap, a discontiguous
shape the scheme cannot express, a boundary inside a token, a window boundary, ...).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from mtpeft.tasks.base import EncodingLoss
from mtpeft.tasks.document import Document, Mention

MentionKey = tuple[str, tuple[tuple[int, int], ...]]


def mention_key(mention: Mention) -> MentionKey:
    """What exact match compares: the label and every fragment."""
    return mention.label, tuple(mention.spans)


@dataclass
class RoundTripReport:
    """How many gold mentions survive encode + decode exactly, and why the others do not."""

    mentions: int = 0
    exact: int = 0
    spurious: int = 0  # decoded mentions that match no gold mention (e.g. two merged into one)
    lost: list[EncodingLoss] = field(default_factory=list)

    @property
    def exact_rate(self) -> float:
        return self.exact / self.mentions if self.mentions else 1.0

    def lost_by_kind(self) -> dict[str, int]:
        return dict(sorted(Counter(loss.kind for loss in self.lost).items()))

    def as_dict(self) -> dict[str, object]:
        return {
            "mentions": self.mentions,
            "exact": self.exact,
            "exact_rate": round(self.exact_rate, 4),
            "spurious": self.spurious,
            "lost_by_kind": self.lost_by_kind(),
        }


def compare_mentions(
    gold: Sequence[Document], decoded: Sequence[Document], losses: Sequence[EncodingLoss]
) -> RoundTripReport:
    """Exact-match ``decoded`` against ``gold`` mentions, document by document.

    A gold mention that does not come back takes the first loss the encoder recorded for it;
    one the encoder did not flag is a ``decoding`` loss (the decoder merged or split it).
    """
    reasons: dict[tuple[str, str], EncodingLoss] = {}
    for loss in losses:
        reasons.setdefault((loss.doc_id, loss.item), loss)
    decoded_by_id = {doc.id: doc for doc in decoded}
    report = RoundTripReport()
    for doc in gold:
        predicted = (
            Counter(mention_key(m) for m in decoded_by_id[doc.id].mentions) if doc.id in decoded_by_id else Counter()
        )
        remaining = predicted.copy()
        for mention in doc.mentions:
            report.mentions += 1
            key = mention_key(mention)
            if remaining[key] > 0:
                remaining[key] -= 1
                report.exact += 1
                continue
            loss = reasons.get((doc.id, mention.id))
            report.lost.append(
                EncodingLoss(doc.id, loss.kind, mention.id, loss.detail)
                if loss is not None
                else EncodingLoss(doc.id, "decoding", mention.id, "encoded but decoded differently")
            )
        report.spurious += sum(remaining.values())
    return report
