"""Span tasks: mentions as enumerated candidate fragments plus links between fragments."""

from __future__ import annotations

from collections import Counter
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
from mtpeft.tasks.encoding.alignment import TokenizedText, merged_tokens, tokenize
from mtpeft.tasks.encoding.roundtrip import RoundTripReport, compare_mentions
from mtpeft.tasks.encoding.spans import assemble_mentions, fragment_ranges_ok, uncovered_spans
from mtpeft.tasks.encoding.windows import Window, owner, plan_windows
from mtpeft.tasks.features import Features, TokenRange, WindowPrediction
from mtpeft.tasks.normalisation.encoding import WindowTargets, assign_cuis, window_cui_targets
from mtpeft.tasks.normalisation.normaliser import CuiNormaliser

GoldChain = tuple[str, int, list[TokenRange]]
"""A gold mention as (mention id, label id, fragment token ranges in document tokens)."""


class SpanTask(Task):
    """Mentions of ``labels`` found by the span head: fragments of up to ``max_span_len`` tokens,
    consecutive fragments of a discontiguous mention linked. ``labels`` excludes "no span"
    (the head's last column).

    With a ``normaliser`` (2015 T14) each mention also gets a CUI: every gold mention is a target
    of the head's CUI classifier, and each decoded mention gets its CUI from the classifier's
    logits of its fragments (pooled, length-weighted) and from the lexicons
    (:mod:`mtpeft.tasks.normalisation`). Without one, mentions carry no CUI (written ``CUI-less``).
    """

    head_kind = "span"

    def __init__(
        self,
        id: str,
        level: int,
        labels: Sequence[str],
        data_format: DataFormat,
        max_span_len: int = 8,
        max_length: int = 512,
        stride: int | None = None,
        normaliser: CuiNormaliser | None = None,
    ) -> None:
        if max_span_len < 1:
            raise ConfigError(f"task {id!r}: max_span_len must be >= 1, got {max_span_len}")
        super().__init__(id, level, labels, data_format, max_length, stride)
        self.max_span_len = max_span_len
        self.normaliser = normaliser

    def head_options(self) -> dict[str, object]:
        """``max_span_len``, and ``cui_classes`` when the task normalises (a CUI classifier)."""
        options: dict[str, object] = {"max_span_len": self.max_span_len}
        if self.normaliser is not None:
            options["cui_classes"] = self.normaliser.num_classes
        return options

    def fit(self, train_documents: Sequence[Document]) -> None:
        """Learn what the head's classes depend on from the TRAINING documents (the CUI classes and
        the training lexicon; nothing without a normaliser). Called when the task is built."""
        if self.normaliser is not None:
            self.normaliser.fit(train_documents)

    def gold_chains(self, doc: Document, tokens: TokenizedText) -> tuple[list[GoldChain], list[EncodingLoss]]:
        """Gold mentions as token-range chains; mentions that cannot be candidates are losses."""
        chains: list[GoldChain] = []
        losses: list[EncodingLoss] = []
        label_at: dict[TokenRange, tuple[str, str]] = {}  # one label per candidate span
        for m in doc.mentions:
            if m.label not in self.labels:
                losses.append(
                    EncodingLoss(doc.id, "label_not_kept", m.id, f"label {m.label!r} is not one of {self.labels}")
                )
                continue
            ranges = [tokens.char_span_to_tokens(start, end) for start, end in m.spans]
            if any(r is None for r in ranges) or not fragment_ranges_ok(ranges):
                losses.append(EncodingLoss(doc.id, "token_boundary", m.id, f"fragments {m.spans} share or miss tokens"))
                continue
            too_long = [r for r in ranges if r[1] - r[0] + 1 > self.max_span_len]
            if too_long:
                n = max(r[1] - r[0] + 1 for r in too_long)
                losses.append(
                    EncodingLoss(
                        doc.id, "span_too_long", m.id, f"a fragment of {n} tokens > max_span_len {self.max_span_len}"
                    )
                )
                continue
            if any(tokens.tokens_to_char_span(*r) != span for r, span in zip(ranges, m.spans)):
                moved = tuple(tokens.tokens_to_char_span(*r) for r in ranges)
                losses.append(EncodingLoss(doc.id, "token_boundary", m.id, f"{m.spans} encoded as {moved}"))
            clash = next((label_at[r] for r in ranges if label_at.get(r, (m.label,))[0] != m.label), None)
            if clash is not None:
                losses.append(
                    EncodingLoss(doc.id, "overlap", m.id, f"a fragment is labelled {clash[0]!r} by {clash[1]}")
                )
                continue
            label_at.update((r, (m.label, m.id)) for r in ranges)
            chains.append((m.id, self.label_id(m.label), ranges))
        linked = {r for _, _, ranges in chains if len(ranges) > 1 for r in ranges}
        for mention_id, _, ranges in chains:
            if len(ranges) == 1 and ranges[0] in linked:
                losses.append(
                    EncodingLoss(
                        doc.id,
                        "overlap",
                        mention_id,
                        "also a fragment of a discontiguous mention: decoded as part of it",
                    )
                )
        return chains, losses

    @staticmethod
    def _decodable(chain: GoldChain, windows: Sequence[Window]) -> bool:
        """Whether decoding can give this mention back: each fragment lies in the window that owns
        its first token, and each link in the window that owns its earlier fragment's first token."""
        _, _, ranges = chain
        if any(not owner(windows, r[0]).contains(*r) for r in ranges):
            return False
        return all(owner(windows, a[0]).contains(a[0], b[1]) for a, b in zip(ranges, ranges[1:]))

    def encode(
        self,
        documents: Sequence[Document],
        tokenizer: object,
        max_length: int | None = None,
        stride: int | None = None,
    ) -> EncodeResult:
        """One :class:`Features` per window with the gold fragments inside it and their links."""
        max_length, stride = self._window_options(max_length, stride)
        result = EncodeResult()
        for doc in documents:
            tokens = tokenize(require_text(doc, self.id), tokenizer)
            chains, losses = self.gold_chains(doc, tokens)
            windows = plan_windows(len(tokens), max_length, stride)
            if not windows:
                losses.append(EncodingLoss(doc.id, "empty_document", "", "the text has no tokens"))
            for chain in chains:
                if windows and not self._decodable(chain, windows):
                    losses.append(EncodingLoss(doc.id, "window_boundary", chain[0], "fragments split across windows"))
            counts = Counter(
                documents=1, windows=len(windows), mentions=len(doc.mentions), mentions_encoded=len(chains)
            )
            cui_targets: dict[int, WindowTargets] = {}
            if self.normaliser is not None:
                mentions = [m for m in doc.mentions if m.label in self.labels]
                cui_targets, cui_losses = window_cui_targets(self.normaliser, doc.id, mentions, tokens, windows)
                losses.extend(cui_losses)
                counts["cui_targets"] = sum(len(labels) for _, labels in cui_targets.values())
            for w in windows:
                features = self._window_features(doc.id, tokens, w, chains)
                if cui_targets:
                    features.cui_mentions, features.cui_labels = cui_targets[w.index]
                uncovered = uncovered_spans(features.span_labels, len(features.input_ids), self.max_span_len)
                counts["fragments_encoded"] += len(features.span_labels)
                counts["fragments_not_candidates"] += len(uncovered)
                counts["links_encoded"] += len(features.span_links)
                result.features.append(features)
            result.losses.extend(losses)
            result.counts.update(counts)
            result.lengths.append(len(tokens))
        return result

    def _window_features(self, doc_id: str, tokens: TokenizedText, w: Window, chains: list[GoldChain]) -> Features:
        index: dict[tuple[int, int, int], int] = {}
        links: dict[tuple[int, int], None] = {}
        for _, label, ranges in chains:
            local = [(r[0] - w.start, r[1] - w.start, label) if w.contains(*r) else None for r in ranges]
            for span in local:
                if span is not None:
                    index.setdefault(span, len(index))
            for a, b in zip(local, local[1:]):
                if a is not None and b is not None:
                    links[(index[a], index[b])] = None
        return Features(
            task=self.id,
            doc_id=doc_id,
            input_ids=tokens.input_ids[w.start : w.end],
            token_offsets=tokens.offsets[w.start : w.end],
            window=w.index,
            owned=w.local_owned,
            span_labels=list(index),
            span_links=list(links),
            meta={"token_start": w.start},
        )

    def decode(
        self, documents: Sequence[Document], predictions: Sequence[WindowPrediction], features: Sequence[Features]
    ) -> list[Document]:
        """Documents with the mentions assembled from the owned fragments and links of each window.

        A fragment is kept from the window that owns its first token; a link from the window that
        owns its earlier fragment's first token (with both of its fragments). See
        :func:`~mtpeft.tasks.encoding.spans.assemble_mentions` for how links become mentions.
        """
        grouped = pair_predictions(self.id, predictions, features)
        check_documents_cover(self.id, documents, grouped)
        out = []
        for doc in documents:
            result = without_annotations(doc)
            pairs = grouped.get(doc.id, [])
            if pairs:
                spans: dict[TokenRange, tuple[int, float]] = {}
                links: dict[tuple[TokenRange, TokenRange], float] = {}
                cui_rows: dict[TokenRange, object] = {}  # the CUI logits of the window a fragment is taken from
                for f, p in pairs:
                    shift, (own_first, own_last) = f.meta["token_start"], f.owned
                    window_spans = [((s + shift, e + shift), (label, conf)) for s, e, label, conf in p.spans or []]
                    rows = list(p.cui_logits) if p.cui_ranges is not None else [None] * len(window_spans)
                    for (rng, value), row in zip(window_spans, rows):
                        if own_first <= rng[0] - shift <= own_last and value[1] >= spans.get(rng, (0, -1.0))[1]:
                            spans[rng] = value
                            cui_rows[rng] = row
                    for i, j, confidence in p.links or []:
                        (first, first_value), (second, second_value) = window_spans[i], window_spans[j]
                        if own_first <= first[0] - shift <= own_last:
                            for rng, value, row in ((first, first_value, rows[i]), (second, second_value, rows[j])):
                                if rng not in spans:
                                    spans[rng], cui_rows[rng] = value, row
                            links[(first, second)] = max(confidence, links.get((first, second), 0.0))
                mentions = assemble_mentions(spans, links)
                tokens = merged_tokens(require_text(doc, self.id), [f for f, _ in pairs])
                result.mentions = [
                    Mention(
                        id=f"P{k}",
                        spans=tuple(tokens.tokens_to_char_span(*r) for r in ranges),
                        label=self.labels[label],
                    )
                    for k, (label, ranges) in enumerate(mentions, start=1)
                ]
                if self.normaliser is not None:
                    pieces = [
                        [(r[1] - r[0] + 1, cui_rows[r]) for r in ranges if cui_rows.get(r) is not None]
                        for _, ranges in mentions
                    ]
                    assign_cuis(self.normaliser, tokens.text, result.mentions, pieces)
            out.append(result)
        return out

    def round_trip(
        self, documents: Sequence[Document], tokenizer: object, max_length: int | None = None, stride: int | None = None
    ) -> RoundTripReport:
        """Encode the gold mentions, decode the gold fragments and links as predictions, compare."""
        encoded = self.encode(documents, tokenizer, max_length, stride)
        predictions = [
            WindowPrediction(
                task=f.task,
                doc_id=f.doc_id,
                window=f.window,
                spans=[(s, e, label, 1.0) for s, e, label in f.span_labels],
                links=[(i, j, 1.0) for i, j in f.span_links],
            )
            for f in encoded.features
        ]
        decoded = self.decode(documents, predictions, encoded.features)
        gold = [without_annotations(doc) for doc in documents]
        for g, doc in zip(gold, documents):
            g.mentions = [m for m in doc.mentions if m.label in self.labels]
        return compare_mentions(gold, decoded, encoded.losses)
