"""Additive per-document statistics of a task's official metric, for bootstrap intervals.

Each document (note, question, meme) is scored alone with the task's official metric, and the
counts that micro-averaging sums are kept: summed over all documents they reproduce the corpus
metric (:func:`mtpeft.evaluation.uncertainty.derive_metrics` turns them into metric values).
2016 T12 is scored by ``anafora.evaluate`` with temporal closure, whose per-document counts it does
not expose; it gets no per-document statistics (its report section says so).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from mtpeft.evaluation.metrics.disorders import semeval2014_scores, semeval2015_scores
from mtpeft.evaluation.metrics.persuasion import persuasion_span_scores, span_identification_scores
from mtpeft.evaluation.metrics.ranking import ranking_scores
from mtpeft.tasks.document import Document

Stats = dict[str, float]


def _counts(scores: dict[str, float]) -> Stats:
    return {k: v for k, v in scores.items() if k.endswith(("_tp", "_fp", "_fn"))}


def _disorders(metric: Callable) -> Callable[[Document, Document], Stats]:
    return lambda gold, pred: _counts(metric([gold], [pred]))


def _persuasion(metric: Callable[..., dict[str, float]], prefix: str = "") -> Callable[[Document, Document], Stats]:
    """2021 T6 partial credit: summed credits over span counts (``prefix``: level 2's ``oracle_span_``)."""

    def stats(gold: Document, pred: Document) -> Stats:
        s = metric([gold], [pred])
        return {
            f"{prefix}precision_num": s["precision"] * s["pred_spans"],
            f"{prefix}precision_den": s["pred_spans"],
            f"{prefix}recall_num": s["recall"] * s["gold_spans"],
            f"{prefix}recall_den": s["gold_spans"],
        }

    return stats


def _ranking(gold: Document, pred: Document) -> Stats:
    s = ranking_scores([gold], [pred])
    answered = float(any(c.label == "Good" for c in gold.candidates))
    n = float(len(gold.candidates))
    return {
        "map_num": s["map"],
        "map_den": 1.0,
        "map_ignore_noanswer_num": s["map"] * answered,
        "map_ignore_noanswer_den": answered,
        "mrr_num": s["mrr"],
        "mrr_den": 1.0,
        "accuracy_num": s["accuracy"] * n,
        "accuracy_den": n,
    }


_STATS: dict[str, Callable[[Document, Document], Stats]] = {
    "semeval2014t7": _disorders(semeval2014_scores),
    "semeval2015t14": _disorders(semeval2015_scores),
    "semeval2017t3": _ranking,
    # level 1: span identification, merged per document, so per-document sums are the corpus metric
    "semeval2021t6": _persuasion(persuasion_span_scores),
    "semeval2021t6_level1": _persuasion(span_identification_scores),
    "semeval2021t6_level2": _persuasion(persuasion_span_scores, "oracle_span_"),
}


def per_document_stats(
    task_id: str, gold: Sequence[Document], pred: Sequence[Document], collapse_to: str | None = None
) -> list[dict] | None:
    """``[{"doc_id", "stats"}]`` in gold order, or ``None`` for tasks without additive stats."""
    stats_of = _STATS.get(task_id)
    if stats_of is None:
        return None
    if collapse_to:
        gold = [replace(d, mentions=[replace(m, label=collapse_to) for m in d.mentions]) for d in gold]
        pred = [replace(d, mentions=[replace(m, label=collapse_to) for m in d.mentions]) for d in pred]
    predicted = {d.id: d for d in pred}
    return [{"doc_id": g.id, "stats": stats_of(g, predicted[g.id])} for g in gold]
