"""SemEval-2021 Task 6 subtask 2: micro P/R/F1 with partial credit for span overlap.

Follows the official scorer ``task-2-semeval21_scorer.py`` (propaganda-techniques-scorer by
G. Da San Martino, git submodule ``scorer/task2`` of di-dimitrov/SEMEVAL-2021-task6-corpus;
read from the copy in DAMO-NLP-SG/PeerDA ``SemEval/SemEval20/evaluation/``):
``Annotations.compute_span_score`` and ``compute_prec_rec_f1``. Exactly:

* a span is the set of character positions ``range(start, end)``;
* **every** (predicted, gold) pair of the same document with the same technique contributes,
  even when several gold spans overlap one prediction (no one-to-one matching, no merging of
  overlapping spans -- the scorer merges nothing): ``|p & g| / |p|`` to the precision
  numerator and ``|p & g| / |g|`` to the recall numerator;
* the numerators are summed over all documents and divided by the total number of predicted
  spans (precision) and of gold spans (recall) -- a micro average, no per-document
  normalisation (the per-document F1 the scorer can log is not part of its result);
* ``F1 = 2PR/(P+R)`` when ``P > 0`` and ``R > 0``; ``1.0`` when there are no predicted and no
  gold spans at all; otherwise ``0``;
* the prediction file must hold exactly the gold ids (``compare_annotations_identical_
  article_lists``); mtpeft raises an error naming the ids, the scorer prints a log line.

Because overlapping gold spans with one technique each earn credit, a gold file scored
against itself can exceed 1 when it contains such overlaps (the official training file has
15: precision = recall = 1.0136). mtpeft reproduces that number rather than "fixing" it.

Per-technique F1 reproduces the scorer's own formula, which divides the *precision*
numerator by the number of gold spans of the technique for its recall
(``compute_prec_rec_f1(technique_Spr_prec[t], n_pred(t), technique_Spr_prec[t], n_gold(t))``).

**Span identification** (:func:`span_identification_scores`, the 2021 T6 level-1 headline) scores
spans without techniques, as the SemEval-2020 Task 11 span-identification scorer
(``task-SI_scorer.py`` of the same propaganda-techniques tools) did: in each document, spans
that share at least one character are merged into one (``Annotations.merge_article_annotations``:
the union of their positions), on the gold side and on the predicted side, and the same
partial-credit formula is applied to the merged spans. Merged spans of one side are disjoint,
so each span's credit ``sum_g |p & g| / |p| = |p & union(g)| / |p|`` is at most 1: precision,
recall and F1 lie in [0, 1] (the gold file against itself scores exactly 1). Without merging,
one merged type makes every overlapping gold span earn credit again (precision 1.02 in a real
run, F1 1.91 for one prediction per distinct gold extent); those unmerged numbers are kept as
``unmerged_precision`` / ``unmerged_recall`` / ``unmerged_f1``, never as the headline.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import replace

from mtpeft.errors import FormatError, Location
from mtpeft.evaluation.metrics._pairing import pair_documents
from mtpeft.tasks.document import Document, Mention


def prec_rec_f1(
    prec_numerator: float, prec_denominator: int, rec_numerator: float, rec_denominator: int
) -> tuple[float, float, float]:
    """The official ``compute_prec_rec_f1``: ``(P, R, F1)`` with its zero-denominator rules."""
    precision = prec_numerator / prec_denominator if prec_denominator > 0 else 0.0
    recall = rec_numerator / rec_denominator if rec_denominator > 0 else 0.0
    f1 = 0.0
    if prec_denominator == 0 and rec_denominator == 0:
        f1 = 1.0
    if precision > 0 and recall > 0:
        f1 = 2 * (precision * recall / (precision + recall))
    return precision, recall, f1


def _positions(mention: Mention, doc: Document) -> frozenset[int]:
    positions = frozenset(i for start, end in mention.spans for i in range(start, end))
    if not positions:
        raise FormatError(
            Location(doc.source or "predictions", element=f"{doc.id}/{mention.id}"),
            f"empty span {mention.spans} for technique {mention.label!r}",
            "start < end (the official scorer rejects empty spans)",
        )
    return positions


def persuasion_span_scores(
    gold: Sequence[Document], pred: Sequence[Document], *, techniques: Collection[str] | None = None
) -> dict[str, float]:
    """Official subtask-2 scores of ``pred`` against ``gold`` (documents = memes, mentions = spans).

    ``Mention.label`` is the technique. Returns ``precision``, ``recall``, ``f1``, the span
    counts ``gold_spans`` / ``pred_spans`` and ``f1:<technique>`` for every technique in
    ``techniques`` (default: those seen in gold or predictions). When ``techniques`` is given,
    a span with another technique is an error, as in the official scorer.
    """
    pairs = pair_documents(gold, pred)
    if techniques is not None:
        allowed = set(techniques)
        for doc in (*gold, *pred):
            for mention in doc.mentions:
                if mention.label not in allowed:
                    raise FormatError(
                        Location(doc.source or "input", element=f"{doc.id}/{mention.id}"),
                        f"unknown technique {mention.label!r}", f"one of the {len(allowed)} listed techniques",
                    )

    prec_numerator = rec_numerator = 0.0
    per_technique: dict[str, float] = {}  # the scorer's technique_Spr_prec
    n_pred: dict[str, int] = {}
    n_gold: dict[str, int] = {}
    for gold_doc, pred_doc in pairs:
        assert pred_doc is not None
        gold_spans = [(m.label, _positions(m, gold_doc)) for m in gold_doc.mentions]
        for mention in gold_doc.mentions:
            n_gold[mention.label] = n_gold.get(mention.label, 0) + 1
        for mention in pred_doc.mentions:
            n_pred[mention.label] = n_pred.get(mention.label, 0) + 1
            predicted = _positions(mention, pred_doc)
            for technique, reference in gold_spans:
                if technique != mention.label:
                    continue
                overlap = len(predicted & reference)
                prec_numerator += overlap / len(predicted)
                rec_numerator += overlap / len(reference)
                per_technique[technique] = per_technique.get(technique, 0.0) + overlap / len(predicted)

    total_pred, total_gold = sum(n_pred.values()), sum(n_gold.values())
    precision, recall, f1 = prec_rec_f1(prec_numerator, total_pred, rec_numerator, total_gold)
    scores = {
        "precision": precision, "recall": recall, "f1": f1,
        "gold_spans": float(total_gold), "pred_spans": float(total_pred),
    }
    names = sorted(techniques) if techniques is not None else sorted(set(n_gold) | set(n_pred))
    for name in names:
        numerator = per_technique.get(name, 0.0)
        scores[f"f1:{name}"] = prec_rec_f1(numerator, n_pred.get(name, 0), numerator, n_gold.get(name, 0))[2]
    return scores


def merged_extents(spans: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """``(start, end)`` spans with those sharing a character merged (adjacent ones are not), sorted.

    The union of each group of overlapping spans, as the 2020 Task 11 SI scorer merges them.
    """
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and start < merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(start, end) for start, end in merged]


def _merged_document(doc: Document, label: str) -> Document:
    fragments = [fragment for mention in doc.mentions for fragment in mention.spans]
    mentions = [Mention(id=f"S{i}", spans=(extent,), label=label) for i, extent in enumerate(merged_extents(fragments))]
    return replace(doc, mentions=mentions)


def _one_type(doc: Document, label: str) -> Document:
    return replace(doc, mentions=[replace(m, label=label) for m in doc.mentions])


def span_identification_scores(gold: Sequence[Document], pred: Sequence[Document]) -> dict[str, float]:
    """Span identification P/R/F1 in [0, 1]: techniques ignored, overlapping spans merged per side.

    See the module docstring. Returns ``precision``, ``recall``, ``f1``, the merged span counts
    ``gold_spans`` / ``pred_spans``, and the partial-credit numbers of the spans as given, all
    of one type and unmerged: ``unmerged_precision`` / ``unmerged_recall`` / ``unmerged_f1``
    (these can exceed 1; they are not span identification).
    """
    label = "PERSUASION"
    merged = persuasion_span_scores([_merged_document(d, label) for d in gold], [_merged_document(d, label) for d in pred])
    unmerged = persuasion_span_scores([_one_type(d, label) for d in gold], [_one_type(d, label) for d in pred])
    scores = {key: merged[key] for key in ("precision", "recall", "f1", "gold_spans", "pred_spans")}
    scores.update({f"unmerged_{key}": unmerged[key] for key in ("precision", "recall", "f1")})
    return scores
