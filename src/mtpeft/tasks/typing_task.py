"""Span typing: one label per given mention, with the relation head in single mode.

Used by 2021 T6 level 2: the mentions (gold spans, or spans predicted by level 1) are given and
each gets one technique. A mention is represented by its extent (first to last token).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from mtpeft.tasks.base import (
    DataFormat,
    EncodeResult,
    EncodingLoss,
    Task,
    check_documents_cover,
    pair_predictions,
    require_text,
    without_annotations,
)
from mtpeft.tasks.document import Document, Mention
from mtpeft.tasks.encoding.alignment import tokenize
from mtpeft.tasks.encoding.relations import entity_range
from mtpeft.tasks.encoding.windows import owner, plan_windows
from mtpeft.tasks.features import Features, TokenRange, WindowPrediction


class SpanTypingTask(Task):
    """Each mention of a document gets one of ``labels``; the head runs in ``pair_mode="single"``.

    Encoding keeps every mention whose extent lies in the window owning its first token; several
    gold mentions with the same extent but different labels are all encoded (the model can get at
    most one right) and counted as ``same_extent_other_label``.
    """

    head_kind = "relation"

    def __init__(
        self,
        id: str,
        level: int,
        labels: Sequence[str],
        data_format: DataFormat,
        max_length: int = 512,
        stride: int | None = None,
    ) -> None:
        super().__init__(id, level, labels, data_format, max_length, stride)

    def head_options(self) -> dict[str, object]:
        return {"pair_mode": "single"}

    def encode(
        self,
        documents: Sequence[Document],
        tokenizer: object,
        max_length: int | None = None,
        stride: int | None = None,
    ) -> EncodeResult:
        """One :class:`Features` per window; ``entity_labels`` is ``None`` for every window when
        some mention carries a label that is not a task label (spans to type, e.g. level-1 output)."""
        max_length, stride = self._window_options(max_length, stride)
        result = EncodeResult()
        # targets for all documents or for none: a batch cannot mix them
        unknown = sorted({m.label for doc in documents for m in doc.mentions if m.label not in self.labels})
        labelled = not unknown
        if unknown:
            result.losses.append(
                EncodingLoss(
                    "", "unlabelled", "", f"labels {unknown[:5]} are not task labels: all encoded without targets"
                )
            )
        for doc in documents:
            tokens = tokenize(require_text(doc, self.id), tokenizer)
            windows = plan_windows(len(tokens), max_length, stride)
            losses: list[EncodingLoss] = []
            kept: list[tuple[Mention, TokenRange]] = []
            for m in doc.mentions:
                rng = entity_range(tokens, m)
                if rng is None:
                    losses.append(EncodingLoss(doc.id, "token_boundary", m.id, f"{m.spans} covers no token"))
                elif not owner(windows, rng[0]).contains(*rng):
                    losses.append(EncodingLoss(doc.id, "window_boundary", m.id, "longer than its window allows"))
                else:
                    kept.append((m, rng))
            extents = Counter(rng for _, rng in kept)
            for w in windows:
                inside = [(m, rng) for m, rng in kept if w.contains(*rng) and w.owns(rng[0])]
                result.features.append(
                    Features(
                        task=self.id,
                        doc_id=doc.id,
                        input_ids=tokens.input_ids[w.start : w.end],
                        token_offsets=tokens.offsets[w.start : w.end],
                        window=w.index,
                        owned=w.local_owned,
                        entities=[(a - w.start, b - w.start) for _, (a, b) in inside],
                        entity_ids=[m.id for m, _ in inside],
                        entity_labels=[self.label_id(m.label) for m, _ in inside] if labelled else None,
                        meta={"token_start": w.start},
                    )
                )
            result.losses.extend(losses)
            result.counts.update(
                documents=1, windows=len(windows), mentions=len(doc.mentions), mentions_encoded=len(kept),
                same_extent_other_label=sum(n - 1 for n in extents.values()),
            )  # fmt: skip
            result.lengths.append(len(tokens))
        return result

    def decode(
        self, documents: Sequence[Document], predictions: Sequence[WindowPrediction], features: Sequence[Features]
    ) -> list[Document]:
        """The input mentions with their predicted label; a mention predicted as "none of the
        labels" (the head's last column) or never encoded is left out."""
        grouped = pair_predictions(self.id, predictions, features)
        check_documents_cover(self.id, documents, grouped)
        out = []
        for doc in documents:
            result = without_annotations(doc)
            predicted: dict[str, int] = {}
            for f, p in grouped.get(doc.id, []):
                if p.entity_labels is None or len(p.entity_labels) != len(f.entity_ids):
                    raise ValueError(f"document {doc.id!r}, window {f.window}: expected one entity label per entity")
                for mention_id, (label, _) in zip(f.entity_ids, p.entity_labels):
                    predicted[mention_id] = label
            result.mentions = [
                Mention(id=m.id, spans=m.spans, label=self.labels[predicted[m.id]], attributes=dict(m.attributes))
                for m in doc.mentions
                if predicted.get(m.id, len(self.labels)) < len(self.labels)
            ]
            out.append(result)
        return out
