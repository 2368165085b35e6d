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
                    own_first <= min(f.entities[i][0], f.entities[j][0]) <= own_last
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
        """Gold ``(source, target) -> label id`` that some window can predict; the rest are losses."""
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
            first, last = min(a[0], b[0]), max(a[1], b[1])
            if not owner(windows, first).contains(first, last):
                losses.append(EncodingLoss(doc.id, "window_boundary", r.id, "the pair is split across windows"))
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

        A pair is taken from the window that owns the first token of the pair; relation ids are
        ``N@r@DOC@system`` (the Anafora convention), labels are the predicted type.
        """
        grouped = pair_predictions(self.id, predictions, features)
        check_documents_cover(self.id, documents, grouped)
        out = []
        for doc in documents:
            result = without_annotations(doc)
            result.mentions = list(doc.mentions)
            found: dict[tuple[str, str], tuple[int, float]] = {}
            for f, p in grouped.get(doc.id, []):
                own_first, own_last = f.owned
                for head, tail, label, confidence in p.relations or []:
                    first = min(f.entities[head][0], f.entities[tail][0])
                    if own_first <= first <= own_last and label < len(self.labels):
                        found[(f.entity_ids[head], f.entity_ids[tail])] = (label, confidence)
            result.relations = [
                Relation(id=f"{k}@r@{doc.id}@system", label=self.labels[label], source=source, target=target)
                for k, ((source, target), (label, _)) in enumerate(sorted(found.items()), start=1)
            ]
            out.append(result)
        return out
