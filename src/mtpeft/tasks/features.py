"""The contract between task encoders, task heads and task decoders.

A task's encoder turns each :class:`~mtpeft.tasks.document.Document` into one or more
:class:`Features` (one per model window); a head's collate function turns a list of
``Features`` of one task into tensors; the head's ``decode`` turns its outputs back into one
:class:`WindowPrediction` per ``Features``; the task's decoder merges the windows of a document
and writes :class:`~mtpeft.tasks.document.Document` annotations.

Token positions are indices into ``input_ids``. Token ranges are ``(start, end)`` with ``end``
INCLUSIVE (the last token of the span), the usual convention of span heads. Only the fields of
the task's head kind are filled; the rest stay ``None``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

IGNORE_INDEX = -100
"""Label id of positions that carry no loss (special tokens, context-only overlap of windows)."""

TokenRange = tuple[int, int]
"""``(first_token, last_token)``, both inclusive."""


@dataclass
class Features:
    """One model input window of one document of one task."""

    task: str
    doc_id: str
    input_ids: list[int]
    # Character offsets of each token in the document text; (0, 0) for tokens that carry no text
    # (special tokens, the separator of a question/candidate pair).
    token_offsets: list[tuple[int, int]]
    window: int = 0
    # Tokens of this window that own their prediction when windows overlap (the others are
    # context); predictions are merged from the owning window only.
    owned: tuple[int, int] | None = None

    # --- head kind "token": one label id per token, IGNORE_INDEX where no loss
    token_labels: list[int] | None = None

    # --- head kind "span": gold fragments and the links that join fragments into one
    # discontiguous mention (pairs of indices into span_labels, earlier fragment first)
    span_labels: list[tuple[int, int, int]] | None = None  # (start, end, label_id)
    span_links: list[tuple[int, int]] | None = None

    # --- head kind "relation": candidate entities (token ranges), their mention ids, and gold
    # relations. Pairs not listed in ``relations`` are "no relation". For single-span typing
    # (2021 T6 level 2, multi-label) the entities are the distinct extents to type and
    # ``entity_label_sets`` holds the gold label ids of each (several where gold gives the extent
    # several labels; empty for an extent with none).
    entities: list[TokenRange] | None = None
    entity_ids: list[str] | None = None
    relations: list[tuple[int, int, int]] | None = None  # (head_entity, tail_entity, label_id)
    entity_label_sets: list[tuple[int, ...]] | None = None

    # --- CUI normalisation (token and span heads of tasks that normalise): the gold mentions this
    # window trains the CUI classifier on, each as its fragments' token ranges, and each one's
    # class id in the task's CUI vocabulary (:mod:`mtpeft.tasks.normalisation`)
    cui_mentions: list[list[TokenRange]] | None = None
    cui_labels: list[int] | None = None

    # --- head kind "ranking": one (question, candidate) pair
    rank_label: int | None = None
    group_id: str | None = None
    candidate_id: str | None = None

    # Anything the decoder needs that the head does not (e.g. gold pairs outside the window).
    meta: dict = field(default_factory=dict)


@dataclass
class WindowPrediction:
    """A head's decoded output for one :class:`Features` (same task, doc_id and window).

    Every prediction carries a confidence in [0, 1] so calibration (ECE) can be computed.
    """

    task: str
    doc_id: str
    window: int = 0
    token_labels: list[int] | None = None  # token head: argmax label id per token
    token_confidences: list[float] | None = None
    spans: list[tuple[int, int, int, float]] | None = None  # span head: (start, end, label_id, confidence)
    links: list[tuple[int, int, float]] | None = None  # span head: (span_i, span_j, confidence)
    relations: list[tuple[int, int, int, float]] | None = None  # relation head: (head, tail, label_id, conf)
    entity_labels: list[tuple[int, float]] | None = None  # single-span typing: top (label_id, probability)
    entity_probs: list[list[float]] | None = None  # single-span typing: each entity's probability of each label
    # CUI normalisation: token ranges (window positions, end inclusive) and the CUI classifier's
    # logits of the mean token state of each, a float32 array (len(cui_ranges), classes); the
    # task pools them over each decoded mention (the classifier is linear, see heads.normalisation)
    cui_ranges: list[TokenRange] | None = None
    cui_logits: Any = None
    rank_probs: list[float] | None = None  # ranking head: probability of each relevance level
    rank_score: float | None = None  # ranking head: score used to order candidates
    group_id: str | None = None
    candidate_id: str | None = None
