"""SemEval-2016/2017 Task 3 subtask A: comment ranking scores exactly as ``ev.py`` computes them.

Follows the official scorer ``MAP_scripts/ev.py`` (``read_res_pred_files``, ``eval_reranker``)
with ``metrics.py`` (``map``, ``mrr``, ``accuracy1``, ``avg_acc1``) and ``res_file_reader.py``
of the SemEval-2016/2017 Task 3 distribution, run as ``python ev.py GOLD PRED`` (threshold
``th=10``; ``--reranking_threshold`` left unset, so every question is re-ranked):

* gold relevance: ``Good`` is ``true``; ``PotentiallyUseful`` and ``Bad`` are ``false``;
* each question's comments are sorted by predicted score, highest first, with Python's stable
  sort, so tied scores keep the order of the files (ev.py requires both files in the same
  order; mtpeft pairs comments by id and keeps the gold order for ties);
* MAP: per question, the mean of ``precision@k`` over the ranks ``k <= 10`` that hold a
  ``true`` comment (divided by the number of ``true`` comments found in the top 10, not by
  all of them); a question with no ``true`` comment in its top 10 has AP = 0. MAP divides by
  the number of questions; ``--ignore_noanswer`` first drops questions whose gold comments
  are all ``false``;
* MRR: mean over questions of ``1 / rank`` of the first ``true`` comment within the top 10
  (0 if none). ev.py prints it as a percentage; mtpeft returns the fraction;
* AvgRec: for ``k = 1..10``, (``true`` comments in all top-k lists) / (sum over questions of
  ``min(k, number of true comments)``), averaged over the ten values of ``k``;
* accuracy and P/R/F1 of the predicted ``true``/``false`` labels over all comments (computed
  before ``--ignore_noanswer`` removes anything; ``P``/``R``/``F1`` are 0 when undefined).

Where ev.py would divide by zero (no question left, no ``true`` comment at some rank) and
crash, mtpeft returns 0 for that term.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from mtpeft.errors import FormatError, Location
from mtpeft.evaluation.metrics._pairing import pair_documents
from mtpeft.tasks.document import Candidate, Document

THRESHOLD = 10
"""ev.py's default ``-t``: ranks deeper than 10 do not count."""

_RELEVANCE = {"good": True, "true": True, "potentiallyuseful": False, "bad": False, "false": False}


def is_relevant(label: str | None, where: Location) -> bool:
    """``Good``/``true`` -> True, ``PotentiallyUseful``/``Bad``/``false`` -> False (case-insensitive)."""
    try:
        return _RELEVANCE[(label or "").lower()]
    except KeyError:
        raise FormatError(
            where, f"relevance label {label!r}", "Good, PotentiallyUseful, Bad, true or false"
        ) from None


@dataclass(frozen=True)
class RankedQuestion:
    """One question after re-ranking: gold relevance of its comments in system order."""

    qid: str
    ranked: tuple[bool, ...]
    has_good: bool


def _score_of(candidate: Candidate, doc: Document) -> float:
    where = Location(doc.source or "predictions", element=f"{doc.id}/{candidate.id}")
    if candidate.score is None or math.isnan(candidate.score):
        raise FormatError(where, f"comment has no usable score ({candidate.score!r})", "a real-valued score")
    return candidate.score


def rank_questions(
    gold: Sequence[Document], pred: Sequence[Document]
) -> tuple[list[RankedQuestion], dict[tuple[bool, bool], int]]:
    """Re-rank every question by predicted score; also count (gold, predicted) label pairs.

    Returns the ranked questions (gold order) and the confusion counts keyed by
    ``(gold_true, predicted_true)``. Candidate ids must match per question.
    """
    confusion = {(g, p): 0 for g in (True, False) for p in (True, False)}
    questions = []
    for gold_doc, pred_doc in pair_documents(gold, pred):
        assert pred_doc is not None
        predicted = {c.id: c for c in pred_doc.candidates}
        gold_ids = [c.id for c in gold_doc.candidates]
        where = Location(pred_doc.source or "predictions", element=gold_doc.id)
        if len(predicted) != len(pred_doc.candidates) or set(predicted) != set(gold_ids):
            missing = sorted(set(gold_ids) - set(predicted))
            extra = sorted(set(predicted) - set(gold_ids))
            raise FormatError(
                where, f"comment ids differ from the gold (missing {missing}, unexpected {extra}, "
                f"{len(pred_doc.candidates)} predicted lines for {len(predicted)} ids)",
                "one prediction line per gold comment",
            )
        rows = []
        for candidate in gold_doc.candidates:
            guess = predicted[candidate.id]
            gold_true = is_relevant(candidate.label, Location(gold_doc.source or "gold", element=candidate.id))
            pred_true = is_relevant(guess.label, Location(pred_doc.source or "predictions", element=guess.id))
            confusion[gold_true, pred_true] += 1
            rows.append((gold_true, _score_of(guess, pred_doc)))
        # sorted() is stable with reverse=True: ties keep the gold (= file) order, as in ev.py
        ranked = tuple(relevant for relevant, _ in sorted(rows, key=lambda row: row[1], reverse=True))
        questions.append(RankedQuestion(gold_doc.id, ranked, any(ranked)))
    return questions, confusion


def mean_average_precision(questions: Sequence[RankedQuestion], th: int = THRESHOLD) -> float:
    """ev.py's ``metrics.map``: AP over the top ``th``, normalised by the hits found there."""
    if not questions:
        return 0.0
    total = 0.0
    for question in questions:
        precisions = []
        hits = 0
        for rank, relevant in enumerate(question.ranked[:th], start=1):
            if relevant:
                hits += 1
                precisions.append(hits / rank)
        total += sum(precisions) / len(precisions) if precisions else 0.0
    return total / len(questions)


def mean_reciprocal_rank(questions: Sequence[RankedQuestion], th: int = THRESHOLD) -> float:
    """ev.py's ``metrics.mrr`` as a fraction (ev.py prints ``100 *`` this)."""
    if not questions:
        return 0.0
    total = 0.0
    for question in questions:
        for rank, relevant in enumerate(question.ranked[:th], start=1):
            if relevant:
                total += 1.0 / rank
                break
    return total / len(questions)


def average_recall(questions: Sequence[RankedQuestion], th: int = THRESHOLD) -> float:
    """ev.py's ``metrics.avg_acc1`` (AvgRec): mean over k=1..th of found / findable in the top k."""
    found = [0.0] * th
    findable = [0.0] * th
    for question in questions:
        n_relevant = sum(question.ranked)
        for rank, relevant in enumerate(question.ranked[:th]):
            if relevant:
                found[rank] += 1.0
        for k in range(th):
            findable[k] += min(k + 1, n_relevant)
    for k in range(1, th):
        found[k] += found[k - 1]
    recalls = [f / n if n > 0 else 0.0 for f, n in zip(found, findable)]
    return sum(recalls) / len(recalls)


def ranking_scores(gold: Sequence[Document], pred: Sequence[Document], th: int = THRESHOLD) -> dict[str, float]:
    """All ev.py scores for subtask A (documents = questions, candidates = comments).

    Gold candidates carry ``label`` (Good/PotentiallyUseful/Bad or true/false); predicted
    candidates carry ``score`` and ``label`` (true/false). Keys: ``map``,
    ``map_ignore_noanswer``, ``avg_rec``, ``mrr``, ``accuracy``, ``precision``, ``recall``,
    ``f1`` (and ``avg_rec_ignore_noanswer``, ``mrr_ignore_noanswer``, ``questions``,
    ``questions_with_good``).
    """
    questions, confusion = rank_questions(gold, pred)
    answered = [q for q in questions if q.has_good]
    tt, tf = confusion[True, True], confusion[True, False]
    ft, ff = confusion[False, True], confusion[False, False]
    total = tt + tf + ft + ff
    precision = tt / (tt + ft) if tt + ft > 0 else 0.0
    recall = tt / (tt + tf) if tt + tf > 0 else 0.0
    return {
        "map": mean_average_precision(questions, th),
        "map_ignore_noanswer": mean_average_precision(answered, th),
        "avg_rec": average_recall(questions, th),
        "avg_rec_ignore_noanswer": average_recall(answered, th),
        "mrr": mean_reciprocal_rank(questions, th),
        "mrr_ignore_noanswer": mean_reciprocal_rank(answered, th),
        "accuracy": (tt + ff) / total if total > 0 else 0.0,
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0,
        "questions": float(len(questions)),
        "questions_with_good": float(len(answered)),
    }
