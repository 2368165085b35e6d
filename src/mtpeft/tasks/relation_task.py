"""Relation tasks: typed, directed relations between given entity mentions."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

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
from mtpeft.tasks.document import Document, Relation
from mtpeft.tasks.encoding.alignment import tokenize
from mtpeft.tasks.encoding.relations import candidate_pairs, entity_range, pair_distance
from mtpeft.tasks.encoding.windows import Window, owner, plan_windows
from mtpeft.tasks.features import Features, TokenRange, WindowPrediction


class RelationTask(Task):
    """Relations ``labels`` between the gold mentions of ``entity_types`` (the entities are given,
    only relations are predicted). ``labels`` excludes "no relation" (the head's last column).

    Candidate pairs are ordered pairs of entities at most ``relation_window`` tokens apart
    (:func:`~mtpeft.tasks.encoding.relations.pair_distance`); gold pairs farther apart are
    counted as ``pair_outside_window``. Gold relations whose label is not in ``labels`` (or that
    ``keep_relation`` rejects) are losses of kind ``label_not_kept``: the model learns them as
    "no relation".

    With overlapping windows a pair can lie in several windows: every window that holds both
    entities carries the gold label (none trains a true relation as "no relation"), and one of
    them decides it at prediction time (:func:`deciding_window`). A pair that no window holds
    is the only ``window_boundary`` loss.
    """

    head_kind = "relation"

    def __init__(
        self,
        id: str,
        level: int,
        labels: Sequence[str],
        data_format: DataFormat,
        entity_types: Sequence[str] | None = None,
        relation_window: int | None = 128,
        keep_relation: Callable[[Relation], bool] | None = None,
        max_length: int = 512,
        stride: int | None = None,
    ) -> None:
        if relation_window is not None and relation_window < 0:
            raise ConfigError(f"task {id!r}: relation_window must be >= 0 or None (all pairs), got {relation_window}")
        super().__init__(id, level, labels, data_format, max_length, stride)
        self.entity_types = None if entity_types is None else list(entity_types)
        self.relation_window = relation_window
        self.keep_relation = keep_relation

    def head_options(self) -> dict[str, object]:
        return {"pair_mode": "pair", "window": self.relation_window}

    def encode(
        self,
        documents: Sequence[Document],
        tokenizer: object,
        max_length: int | None = None,
        stride: int | None = None,
    ) -> EncodeResult:
        """One :class:`Features` per window: the entities inside it and the gold relations
        between them that are candidate pairs."""
        max_length, stride = self._window_options(max_length, stride)
        result = EncodeResult()
        for doc in documents:
            tokens = tokenize(require_text(doc, self.id), tokenizer)
            losses: list[EncodingLoss] = []
            entities: dict[str, TokenRange] = {}
            for m in doc.mentions:
                if self.entity_types is not None and m.label not in self.entity_types:
                    continue
                rng = entity_range(tokens, m)
                if rng is None:
                    losses.append(EncodingLoss(doc.id, "token_boundary", m.id, f"entity {m.spans} covers no token"))
                else:
                    entities[m.id] = rng
            windows = plan_windows(len(tokens), max_length, stride)
            gold = self._gold_relations(doc, entities, windows, losses)
            counts = Counter(
                documents=1, windows=len(windows), entities=len(entities), relations=len(doc.relations),
                relations_encoded=len(gold),
            )  # fmt: skip
            for w in windows:
                f = self._window_features(doc.id, tokens.input_ids, tokens.offsets, w, entities, gold)
                own_first, own_last = f.owned
                counts["candidate_pairs"] += sum(
                    deciding_window(windows, *pair_extent(f.entities[i], f.entities[j], w.start)) == w
                    for i, j in candidate_pairs(f.entities, self.relation_window)
                )
                result.features.append(f)
            result.losses.extend(losses)
            result.counts.update(counts)
            result.lengths.append(len(tokens))
        return result

    def _gold_relations(
        self, doc: Document, entities: dict[str, TokenRange], windows: list[Window], losses: list[EncodingLoss]
    ) -> dict[tuple[str, str], int]:
        """Gold ``(source, target) -> label id`` that some window can predict (every window holding
        both entities is labelled with them); the rest are losses."""
        gold: dict[tuple[str, str], int] = {}
        for r in doc.relations:
            if (self.keep_relation is not None and not self.keep_relation(r)) or r.label not in self.labels:
                losses.append(EncodingLoss(doc.id, "label_not_kept", r.id, f"relation {r.label!r} is not predicted"))
                continue
            if r.source not in entities or r.target not in entities:
                missing = r.source if r.source not in entities else r.target
                losses.append(
                    EncodingLoss(doc.id, "entity_not_kept", r.id, f"entity {missing!r} is not a candidate entity")
                )
                continue
            a, b = entities[r.source], entities[r.target]
            distance = pair_distance(a, b)
            if self.relation_window is not None and distance > self.relation_window:
                losses.append(
                    EncodingLoss(
                        doc.id, "pair_outside_window", r.id, f"{distance} tokens apart > {self.relation_window}"
                    )
                )
                continue
            if deciding_window(windows, *pair_extent(a, b)) is None:
                losses.append(EncodingLoss(doc.id, "window_boundary", r.id, "no window holds both entities"))
                continue
            if (r.source, r.target) in gold:
                losses.append(EncodingLoss(doc.id, "duplicate", r.id, "a second relation between the same entities"))
                continue
            gold[(r.source, r.target)] = self.label_id(r.label)
        return gold

    def _window_features(
        self,
        doc_id: str,
        input_ids: list[int],
        offsets: list[tuple[int, int]],
        w: Window,
        entities: dict[str, TokenRange],
        gold: dict[tuple[str, str], int],
    ) -> Features:
        inside = [(mid, rng) for mid, rng in entities.items() if w.contains(*rng)]
        position = {mid: i for i, (mid, _) in enumerate(inside)}
        relations = [
            (position[source], position[target], label)
            for (source, target), label in gold.items()
            if source in position and target in position
        ]
        return Features(
            task=self.id,
            doc_id=doc_id,
            input_ids=input_ids[w.start : w.end],
            token_offsets=offsets[w.start : w.end],
            window=w.index,
            owned=w.local_owned,
            entities=[(a - w.start, b - w.start) for _, (a, b) in inside],
            entity_ids=[mid for mid, _ in inside],
            relations=relations,
            meta={"token_start": w.start, "relation_window": self.relation_window},
        )

    def decode(
        self, documents: Sequence[Document], predictions: Sequence[WindowPrediction], features: Sequence[Features]
    ) -> list[Document]:
        """The input documents (with their entities) carrying the predicted relations.

        A pair is taken from its deciding window (:func:`deciding_window`); relation ids are
        ``N@r@DOC@system`` (the Anafora convention), labels are the predicted type.
        """
        grouped = pair_predictions(self.id, predictions, features)
        check_documents_cover(self.id, documents, grouped)
        out = []
        for doc in documents:
            result = without_annotations(doc)
            result.mentions = list(doc.mentions)
            found: dict[tuple[str, str], tuple[int, float]] = {}
            pairs = grouped.get(doc.id, [])
            windows = windows_of([f for f, _ in pairs])
            for f, p in pairs:
                for head, tail, label, confidence in p.relations or []:
                    if label < len(self.labels) and decides(f, windows, head, tail):
                        found[(f.entity_ids[head], f.entity_ids[tail])] = (label, confidence)
            result.relations = [
                Relation(id=f"{k}@r@{doc.id}@system", label=self.labels[label], source=source, target=target)
                for k, ((source, target), (label, _)) in enumerate(sorted(found.items()), start=1)
            ]
            out.append(result)
        return out


def pair_extent(a: TokenRange, b: TokenRange, shift: int = 0) -> tuple[int, int]:
    """First and last token of two entities together (shifted by ``shift``: window -> document)."""
    return min(a[0], b[0]) + shift, max(a[1], b[1]) + shift


def deciding_window(windows: Sequence[Window], first: int, last: int) -> Window | None:
    """The window whose prediction of a pair spanning document tokens ``first..last`` counts.

    The window owning ``first`` when it holds the whole pair (as every other decoder decides by
    the first token); otherwise, of the windows holding the pair, the one giving it the most
    context on both sides (the lowest index on a tie); ``None`` when no window holds it.
    """
    own = owner(windows, first)
    if own.contains(first, last):
        return own
    holding = [w for w in windows if w.contains(first, last)]
    return max(holding, key=lambda w: (min(first - w.start, w.end - 1 - last), -w.index), default=None)


def windows_of(features: Sequence[Features]) -> list[Window]:
    """The windows of one document, rebuilt from its features (``meta["token_start"]``, ``owned``)."""
    windows = []
    for f in sorted(features, key=lambda f: f.window):
        start = f.meta["token_start"]
        first, last = f.owned
        windows.append(Window(f.window, start, start + len(f.input_ids), start + first, start + last + 1))
    return windows


def decides(f: Features, windows: Sequence[Window], head: int, tail: int) -> bool:
    """Whether window ``f`` decides the pair of its entities ``head`` and ``tail``."""
    window = deciding_window(windows, *pair_extent(f.entities[head], f.entities[tail], f.meta["token_start"]))
    return window is not None and window.index == f.window
