"""Span typing: the labels of given spans, decided once per distinct extent (multi-label).

Used by 2021 T6 level 2: the spans (gold spans, or spans found by level 1 under any label) are
given and each distinct extent gets every technique whose probability reaches ``threshold``
(one sigmoid per label in the relation head's ``single`` mode), and at least its most probable
one: the extent was given as a span to type. Several input mentions with one extent (gold gives
one mention per technique) are ONE entity: the encoder gives the model each extent once, with
the SET of its gold labels as the target, and the decoder writes one mention per predicted label
of each extent. So the number of gold labels of an extent never reaches the predictions through
the input (decoding once per gold mention would copy it: an extent with three gold techniques
would get three predictions).

``threshold=None`` means "chosen on dev": evaluation sets :attr:`SpanTypingTask.threshold`
(:mod:`mtpeft.evaluation.subtask2`); until then decoding uses :data:`DEFAULT_THRESHOLD`.
A mention is represented by its extent (first to last token).
"""

from __future__ import annotations

from collections.abc import Sequence

from mtpeft.errors import ConfigError
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

DEFAULT_THRESHOLD = 0.5
"""The decision threshold of a task whose threshold is to be chosen on dev, before it is."""


def extent_key(mention: Mention) -> str:
    """The id of a mention's extent: its character fragments, ``"start-end[,start-end...]"``."""
    return ",".join(f"{start}-{end}" for start, end in mention.spans)


def extents(doc: Document) -> dict[str, list[Mention]]:
    """The document's mentions grouped by extent (:func:`extent_key`), in order of first mention."""
    groups: dict[str, list[Mention]] = {}
    for mention in doc.mentions:
        groups.setdefault(extent_key(mention), []).append(mention)
    return groups


class SpanTypingTask(Task):
    """The labels of each distinct extent of a document's mentions; head ``pair_mode="single"``.

    ``threshold``: a label is predicted when its probability is at least this (``None``: chosen
    on dev by evaluation, see the module docstring). Encoding keeps every extent that lies in the
    window owning its first token; its target is the set of its mentions' labels
    (``Features.entity_label_sets``); ``counts["extents_with_several_labels"]`` says how many
    gold extents carry more than one.
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
        threshold: float | None = DEFAULT_THRESHOLD,
    ) -> None:
        super().__init__(id, level, labels, data_format, max_length, stride)
        if threshold is not None and not 0.0 < float(threshold) <= 1.0:
            raise ConfigError(f"task {id!r}: threshold must be in (0, 1] or null (chosen on dev), got {threshold!r}")
        self.threshold = None if threshold is None else float(threshold)
        self.threshold_from_dev = threshold is None

    def head_options(self) -> dict[str, object]:
        return {"pair_mode": "single"}

    def encode(
        self,
        documents: Sequence[Document],
        tokenizer: object,
        max_length: int | None = None,
        stride: int | None = None,
    ) -> EncodeResult:
        """One :class:`Features` per window, one entity per distinct extent; ``entity_label_sets``
        is ``None`` for every window when some mention carries a label that is not a task label
        (spans to type, e.g. level 1's ``PERSUASION`` spans)."""
        max_length, stride = self._window_options(max_length, stride)
        result = EncodeResult()
        # targets for all documents or for none: a batch cannot mix them
        unknown = sorted({m.label for doc in documents for m in doc.mentions if m.label not in self.labels})
        labelled = not unknown
        if unknown:
            result.losses.append(
                EncodingLoss(
                    "", "unlabelled", "", f"labels {unknown[:5]} are not task labels: all encoded as spans to type"
                )
            )
        for doc in documents:
            tokens = tokenize(require_text(doc, self.id), tokenizer)
            windows = plan_windows(len(tokens), max_length, stride)
            groups = extents(doc)
            kept: list[tuple[str, TokenRange, list[Mention]]] = []
            for key, mentions in groups.items():
                rng = entity_range(tokens, mentions[0])
                if rng is None:
                    kind, detail = "token_boundary", f"{mentions[0].spans} covers no token"
                elif not owner(windows, rng[0]).contains(*rng):
                    kind, detail = "window_boundary", "longer than its window allows"
                else:
                    kept.append((key, rng, mentions))
                    continue
                result.losses.extend(EncodingLoss(doc.id, kind, m.id, detail) for m in mentions)
            for w in windows:
                inside = [(key, rng, ms) for key, rng, ms in kept if w.contains(*rng) and w.owns(rng[0])]
                result.features.append(
                    Features(
                        task=self.id,
                        doc_id=doc.id,
                        input_ids=tokens.input_ids[w.start : w.end],
                        token_offsets=tokens.offsets[w.start : w.end],
                        window=w.index,
                        owned=w.local_owned,
                        entities=[(a - w.start, b - w.start) for _, (a, b), _ in inside],
                        entity_ids=[key for key, _, _ in inside],
                        entity_label_sets=[self._label_set(ms) for _, _, ms in inside] if labelled else None,
                        meta={"token_start": w.start},
                    )
                )
            result.counts.update(
                documents=1, windows=len(windows), mentions=len(doc.mentions),
                mentions_encoded=sum(len(ms) for _, _, ms in kept), extents=len(groups), extents_encoded=len(kept),
                extents_with_several_labels=sum(len({m.label for m in ms}) > 1 for ms in groups.values()),
            )  # fmt: skip
            result.lengths.append(len(tokens))
        return result

    def _label_set(self, mentions: Sequence[Mention]) -> tuple[int, ...]:
        return tuple(sorted({self.label_id(m.label) for m in mentions}))

    def predicted_labels(self, probabilities: Sequence[float], threshold: float | None = None) -> list[int]:
        """Label ids of one extent: those with probability >= ``threshold`` (default: the task's),
        most probable first, and at least the most probable one."""
        if len(probabilities) != len(self.labels):
            raise ValueError(f"task {self.id!r}: {len(probabilities)} probabilities for {len(self.labels)} labels")
        threshold = self.decision_threshold if threshold is None else threshold
        order = sorted(range(len(probabilities)), key=lambda i: (-probabilities[i], i))
        return [i for i in order if probabilities[i] >= threshold] or order[:1]

    @property
    def decision_threshold(self) -> float:
        """The threshold decoding uses now (:data:`DEFAULT_THRESHOLD` while one is to be chosen)."""
        return DEFAULT_THRESHOLD if self.threshold is None else self.threshold

    def extent_probabilities(
        self, documents: Sequence[Document], predictions: Sequence[WindowPrediction], features: Sequence[Features]
    ) -> dict[str, dict[str, list[float]]]:
        """``{doc_id: {extent_key: probability of each label}}`` of the encoded extents."""
        grouped = pair_predictions(self.id, predictions, features)
        check_documents_cover(self.id, documents, grouped)
        found: dict[str, dict[str, list[float]]] = {}
        for doc_id, pairs in grouped.items():
            for f, p in pairs:
                if p.entity_probs is None or len(p.entity_probs) != len(f.entity_ids):
                    raise ValueError(f"document {doc_id!r}, window {f.window}: expected label probabilities per entity")
                found.setdefault(doc_id, {}).update(zip(f.entity_ids, p.entity_probs))
        return found

    def decode(
        self,
        documents: Sequence[Document],
        predictions: Sequence[WindowPrediction],
        features: Sequence[Features],
        threshold: float | None = None,
    ) -> list[Document]:
        """Each encoded extent of the input with one mention per predicted label; extents never
        encoded are left out (the encoder listed them). ``threshold`` overrides the task's.

        The k-th predicted label of an extent takes the id of the extent's k-th input mention
        (``<first id>.<k>`` past them) and the attributes of its first: ids are names, never
        matched to labels."""
        probabilities = self.extent_probabilities(documents, predictions, features)
        return self.decode_probabilities(documents, probabilities, threshold)

    def decode_probabilities(
        self, documents: Sequence[Document], probabilities: dict[str, dict[str, list[float]]], threshold: float | None = None
    ) -> list[Document]:
        """:meth:`decode` from :meth:`extent_probabilities` (so thresholds can be compared cheaply)."""
        out = []
        for doc in documents:
            result = without_annotations(doc)
            found = probabilities.get(doc.id, {})
            for key, mentions in extents(doc).items():
                if key not in found:
                    continue
                first = mentions[0]
                for k, label in enumerate(self.predicted_labels(found[key], threshold)):
                    mention_id = mentions[k].id if k < len(mentions) else f"{first.id}.{k}"
                    result.mentions.append(Mention(id=mention_id, spans=first.spans, label=self.labels[label],
                                                   attributes=dict(first.attributes)))
            out.append(result)
        return out
