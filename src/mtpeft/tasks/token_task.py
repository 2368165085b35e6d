"""Token-classification tasks: mentions <-> one tag per token, through a label scheme."""

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
from mtpeft.tasks.encoding.alignment import (
    TokenizedText,
    fragments_to_token_set,
    merged_tokens,
    token_set_to_fragments,
    tokenize,
)
from mtpeft.tasks.encoding.roundtrip import RoundTripReport, compare_mentions
from mtpeft.tasks.encoding.schemes import SCHEMES, TOKEN_BOUNDARY, TokenMention, get_scheme, sentence_units
from mtpeft.tasks.encoding.windows import merge_owned, plan_windows
from mtpeft.tasks.features import IGNORE_INDEX, Features, WindowPrediction
from mtpeft.tasks.normalisation.encoding import assign_cuis, window_cui_targets
from mtpeft.tasks.normalisation.normaliser import CuiNormaliser


class TokenTask(Task):
    """Mentions of ``types`` tagged token by token with ``scheme`` (``bio`` or ``biohd``).

    ``collapse_to``, when set, gives every gold mention that one type (e.g. ``PERSUASION``):
    the task then detects spans and leaves their typing to another task; mentions that become
    identical are merged (counted as ``duplicates_merged``). ``labels`` is the tag set of the
    scheme, ``O`` first.

    With a ``normaliser`` (2014 T7) each mention also gets a CUI: every gold mention is a target
    of the head's CUI classifier (its class id, in one window), and each decoded mention gets its
    CUI from the classifier's logits pooled over its tokens and from the lexicons
    (:mod:`mtpeft.tasks.normalisation`). Without one, mentions carry no CUI (written ``CUI-less``).
    """

    head_kind = "token"

    def __init__(
        self,
        id: str,
        level: int,
        types: Sequence[str],
        data_format: DataFormat,
        scheme: str = "biohd",
        collapse_to: str | None = None,
        max_length: int = 512,
        stride: int | None = None,
        normaliser: CuiNormaliser | None = None,
    ) -> None:
        if scheme not in SCHEMES:
            raise ConfigError(f"task {id!r}: unknown label scheme {scheme!r}; valid choices: {', '.join(SCHEMES)}")
        self.types = [collapse_to] if collapse_to else list(types)
        self.collapse_to = collapse_to
        self.scheme = get_scheme(scheme)
        super().__init__(id, level, self.scheme.tags(self.types), data_format, max_length, stride)
        self.normaliser = normaliser

    def head_options(self) -> dict[str, object]:
        """``cui_classes`` when the task normalises (the head then has a CUI classifier)."""
        return {"cui_classes": self.normaliser.num_classes} if self.normaliser is not None else {}

    def fit(self, train_documents: Sequence[Document]) -> None:
        """Learn what the head's classes depend on from the TRAINING documents (the CUI classes and
        the training lexicon; nothing without a normaliser). Called when the task is built."""
        if self.normaliser is not None:
            self.normaliser.fit(train_documents)

    def gold_mentions(self, doc: Document) -> tuple[list[Mention], int]:
        """The mentions this task predicts (types collapsed, exact duplicates merged) and how
        many duplicates were merged."""
        seen: set[tuple[str, tuple[tuple[int, int], ...]]] = set()
        out = []
        for m in doc.mentions:
            label = self.collapse_to or m.label
            key = (label, tuple(m.spans))
            if key in seen:
                continue
            seen.add(key)
            out.append(Mention(id=m.id, spans=tuple(m.spans), label=label, attributes=dict(m.attributes)))
        return out, len(doc.mentions) - len(out)

    def gold_tags(self, doc: Document, tokens: TokenizedText) -> tuple[list[str], list[EncodingLoss], Counter[str]]:
        """One tag per document token for the gold mentions, what could not be tagged, counts."""
        mentions, duplicates = self.gold_mentions(doc)
        counts: Counter[str] = Counter(mentions=len(mentions), duplicates_merged=duplicates)
        losses: list[EncodingLoss] = []
        token_mentions = []
        for index, m in enumerate(mentions):
            if m.label not in self.types:
                losses.append(
                    EncodingLoss(doc.id, "label_not_kept", m.id, f"label {m.label!r} is not one of {self.types}")
                )
                continue
            token_set, exact = fragments_to_token_set(tokens, m.spans)
            if not token_set:
                losses.append(EncodingLoss(doc.id, TOKEN_BOUNDARY, m.id, f"fragments {m.spans} cover no token"))
                continue
            if not exact:
                moved = token_set_to_fragments(tokens, token_set)
                losses.append(EncodingLoss(doc.id, TOKEN_BOUNDARY, m.id, f"{m.spans} tagged as {moved}"))
            token_mentions.append(TokenMention(m.label, token_set, str(index)))
        tags, scheme_losses = self.scheme.encode(token_mentions, len(tokens), sentence_units(tokens))
        for key, (kind, detail) in sorted(scheme_losses.items(), key=lambda kv: int(kv[0])):
            losses.append(EncodingLoss(doc.id, kind, mentions[int(key)].id, detail))
        counts["mentions_tagged"] = len(token_mentions) - len(scheme_losses)
        return tags, losses, counts

    def encode(
        self,
        documents: Sequence[Document],
        tokenizer: object,
        max_length: int | None = None,
        stride: int | None = None,
    ) -> EncodeResult:
        """One :class:`Features` per window; labels of tokens a window does not own are ignored."""
        max_length, stride = self._window_options(max_length, stride)
        result = EncodeResult()
        for doc in documents:
            tokens = tokenize(require_text(doc, self.id), tokenizer)
            tags, losses, counts = self.gold_tags(doc, tokens)
            ids = [self.label_id(tag) for tag in tags]
            windows = plan_windows(len(tokens), max_length, stride)
            if not windows:
                losses.append(EncodingLoss(doc.id, "empty_document", "", "the text has no tokens"))
            cui_targets = {}
            if self.normaliser is not None:
                mentions = [m for m in self.gold_mentions(doc)[0] if m.label in self.types]
                cui_targets, cui_losses = window_cui_targets(self.normaliser, doc.id, mentions, tokens, windows)
                losses.extend(cui_losses)
                counts["cui_targets"] = sum(len(labels) for _, labels in cui_targets.values())
            for w in windows:
                result.features.append(
                    Features(
                        task=self.id,
                        doc_id=doc.id,
                        input_ids=tokens.input_ids[w.start : w.end],
                        token_offsets=tokens.offsets[w.start : w.end],
                        window=w.index,
                        owned=w.local_owned,
                        token_labels=[ids[t] if w.owns(t) else IGNORE_INDEX for t in range(w.start, w.end)],
                        cui_mentions=cui_targets[w.index][0] if cui_targets else None,
                        cui_labels=cui_targets[w.index][1] if cui_targets else None,
                        meta={"token_start": w.start},
                    )
                )
            result.losses.extend(losses)
            result.counts.update(counts + Counter(documents=1, windows=len(windows)))
            result.lengths.append(len(tokens))
        return result

    def decode(
        self, documents: Sequence[Document], predictions: Sequence[WindowPrediction], features: Sequence[Features]
    ) -> list[Document]:
        """Documents with the mentions the merged token tags describe (ids ``P1``, ``P2``, ...)."""
        grouped = pair_predictions(self.id, predictions, features)
        check_documents_cover(self.id, documents, grouped)
        out = []
        for doc in documents:
            result = without_annotations(doc)
            pairs = grouped.get(doc.id, [])
            if pairs:
                for f, p in pairs:
                    if p.token_labels is None or len(p.token_labels) != len(f.input_ids):
                        raise ValueError(f"document {doc.id!r}, window {f.window}: expected one token label per token")
                tokens = merged_tokens(require_text(doc, self.id), [f for f, _ in pairs])
                tags = [
                    self.labels[i] for i in merge_owned([f.owned for f, _ in pairs], [p.token_labels for _, p in pairs])
                ]
                decoded = self.scheme.decode(tags, sentence_units(tokens))
                result.mentions = [
                    Mention(id=f"P{k}", spans=token_set_to_fragments(tokens, m.tokens), label=m.label)
                    for k, m in enumerate(decoded, start=1)
                ]
                if self.normaliser is not None:
                    rows = _owned_token_logits(pairs)
                    pieces = [[(1, rows[t]) for t in sorted(m.tokens) if t in rows] for m in decoded]
                    assign_cuis(self.normaliser, tokens.text, result.mentions, pieces)
            out.append(result)
        return out

    def round_trip(
        self, documents: Sequence[Document], tokenizer: object, max_length: int | None = None, stride: int | None = None
    ) -> RoundTripReport:
        """Encode the gold mentions, decode the gold tags as predictions, compare exactly."""
        encoded = self.encode(documents, tokenizer, max_length, stride)
        predictions = [
            WindowPrediction(
                task=f.task,
                doc_id=f.doc_id,
                window=f.window,
                token_labels=[0 if label == IGNORE_INDEX else label for label in f.token_labels],
                token_confidences=[1.0] * len(f.input_ids),
            )
            for f in encoded.features
        ]
        decoded = self.decode(documents, predictions, encoded.features)
        gold = [without_annotations(doc) for doc in documents]
        for g, doc in zip(gold, documents):
            g.mentions = self.gold_mentions(doc)[0]
        return compare_mentions(gold, decoded, encoded.losses)


def _owned_token_logits(pairs: Sequence[tuple[Features, WindowPrediction]]) -> dict[int, object]:
    """Document token -> the CUI classifier's logits of it, from the window that owns the token
    (the head gives them for the tokens it tags as inside a mention, one token per range)."""
    rows: dict[int, object] = {}
    for f, p in pairs:
        if p.cui_ranges is None:
            continue
        shift, (own_first, own_last) = f.meta["token_start"], f.owned
        for (start, _), row in zip(p.cui_ranges, p.cui_logits):
            if own_first <= start <= own_last:
                rows[start + shift] = row
    return rows
