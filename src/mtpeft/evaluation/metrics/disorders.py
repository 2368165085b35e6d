"""Disorder mention scores: SemEval-2015 Task 14 (official Perl scorers) and SemEval-2014 Task 7.

**2015 T14** follows ``task1_eval.pl`` (Task 1 strict and relaxed F: spans *and* CUI) and
``task2_eval.pl`` (its span P/R/F, spans only) by N. Elhadad and S. R. L. Gorman (2014).
Their behaviour, reproduced here:

* a disorder is identified by its document and its span list; two lines with the same spans
  in one document are one disorder (the later line's CUI wins); CUIs compare lower-cased;
* only documents with at least one gold disorder are scored: predictions in other documents
  are ignored (neither TP nor FP), as in the scripts;
* strict: a gold disorder is a TP when a predicted disorder has exactly its spans (and, for
  Task 1, its CUI); unmatched predictions are FP, unmatched gold disorders FN;
* relaxed: exact matches first; then, for every gold disorder (exactly matched ones included),
  all still unmatched predictions that overlap it (and, for Task 1, share its CUI) are taken:
  the gold disorder becomes (or stays) a TP and all but one of them are FP. Fragments overlap
  when ``a.start <= b.end and b.start <= a.end`` on the numbers as written -- so spans that
  merely touch (``10-20`` and ``20-25``) overlap, as in the script's ``is_overlap``;
* ``P = TP/(TP+FP)``, ``R = TP/(TP+FN)``, ``F = 2PR/(P+R)``, each 0 when its denominator is.

The scripts walk Perl hashes, whose order is random; when one prediction overlaps several
gold disorders, which one claims it depends on that order, so the script's relaxed counts
can vary between runs on such input. mtpeft fixes the order: gold disorders by their spans.
Documents are matched by ``Document.id`` (the file name), which in the distributed files
equals the ``DocName`` field the scripts match on.

**2014 T7** has no public scorer. mtpeft implements the task paper's definitions (Pradhan et
al., SemEval-2014 Task 7; ShARe/CLEF eHealth 2013 Task 1), with one-to-one matching:

* strict span P/R/F1: a predicted disorder is a TP when a not yet matched gold disorder of the
  same document has identical fragments (all of them);
* relaxed span P/R/F1: exact pairs first, then each unmatched gold disorder (in span order)
  takes the unmatched prediction sharing the most characters with it (at least one; ties
  go to the earliest prediction); every prediction counts at most once;
* CUI accuracy (Task B), over the strict pairs, pairing CUIs to agree where possible:
  strict = correct CUIs / gold disorders; relaxed = correct CUIs / strictly matched disorders.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from mtpeft.evaluation.metrics._pairing import pair_documents
from mtpeft.tasks.document import Document, Fragment, Mention

Spans = tuple[Fragment, ...]


def prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    """Precision, recall, F1 from counts; each 0 when undefined (as in ``calculate_F``)."""
    precision = tp / (tp + fp) if tp + fp > 0 else 0.0
    recall = tp / (tp + fn) if tp + fn > 0 else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return precision, recall, f1


def _named(prefix: str, tp: int, fp: int, fn: int) -> dict[str, float]:
    precision, recall, f1 = prf(tp, fp, fn)
    return {f"{prefix}precision": precision, f"{prefix}recall": recall, f"{prefix}f1": f1,
            f"{prefix}tp": float(tp), f"{prefix}fp": float(fp), f"{prefix}fn": float(fn)}


def _cui(mention: Mention) -> str:
    return mention.attributes.get("CUI", "").lower()


# --- SemEval-2015 Task 14: the Perl scripts -------------------------------------------------


def _perl_disorders(doc: Document | None) -> dict[Spans, str]:
    """The scripts' per-document hash: spans -> CUI, a repeated span list keeping the last CUI."""
    table: dict[Spans, str] = {}
    if doc is not None:
        for mention in doc.mentions:
            table[tuple(mention.spans)] = _cui(mention)
    return table


def _perl_overlap(a: Spans, b: Spans) -> bool:
    """``determine_overlaps(...) > 0``: some fragment pair overlaps, end points inclusive."""
    return any(s1 <= e2 and s2 <= e1 for s1, e1 in a for s2, e2 in b)


def perl_strict_counts(gold: dict[Spans, str], pred: dict[Spans, str], use_cui: bool) -> tuple[int, int, int]:
    """``strict_f`` of task1_eval.pl for one document: (TP, FP, FN)."""
    tp = sum(1 for spans, cui in gold.items() if spans in pred and (not use_cui or pred[spans] == cui))
    return tp, len(pred) - tp, len(gold) - tp


def perl_relaxed_counts(gold: dict[Spans, str], pred: dict[Spans, str], use_cui: bool) -> tuple[int, int, int]:
    """``relaxed_f`` of task1_eval.pl (``use_cui``) or the span F of task2_eval.pl: (TP, FP, FN)."""
    pred_marked: set[Spans] = set()
    true_positives: set[Spans] = set()
    false_positives = 0
    for spans, cui in gold.items():  # first cull out exact matches
        if spans in pred and (not use_cui or pred[spans] == cui):
            pred_marked.add(spans)
            true_positives.add(spans)
    for spans in sorted(gold):  # then overlaps; every gold disorder, matched or not
        overlapping = [
            other for other, cui in pred.items()
            if other not in pred_marked and (not use_cui or cui == gold[spans]) and _perl_overlap(spans, other)
        ]
        if overlapping:
            pred_marked.update(overlapping)
            true_positives.add(spans)
            false_positives += len(overlapping) - 1  # the largest overlap is the TP, the rest FP
    false_positives += len(pred) - len(pred_marked)
    return len(true_positives), false_positives, len(gold) - len(true_positives)


def semeval2015_scores(gold: Sequence[Document], pred: Sequence[Document]) -> dict[str, float]:
    """Official 2015 T14 scores; mentions carry ``attributes["CUI"]``.

    ``strict_*`` / ``relaxed_*``: Task 1 (task1_eval.pl, spans and CUI). ``span_relaxed_*``:
    the span P/R/F of task2_eval.pl (spans only); ``span_strict_*``: the strict rule on spans
    only (not printed by the scripts; given for comparison with 2014). Also the TP/FP/FN
    counts of each (``*_tp`` ...) and ``ignored_predictions`` (disorders predicted in
    documents without gold disorders, which the scripts skip). Every gold document must have
    a prediction (possibly empty): the scripts would silently count a missing file as empty.
    """
    totals = {name: [0, 0, 0] for name in ("strict_", "relaxed_", "span_strict_", "span_relaxed_")}
    ignored = 0
    for gold_doc, pred_doc in pair_documents(gold, pred):
        gold_table, pred_table = _perl_disorders(gold_doc), _perl_disorders(pred_doc)
        if not gold_table:
            ignored += len(pred_table)
            continue
        counts = {
            "strict_": perl_strict_counts(gold_table, pred_table, use_cui=True),
            "relaxed_": perl_relaxed_counts(gold_table, pred_table, use_cui=True),
            "span_strict_": perl_strict_counts(gold_table, pred_table, use_cui=False),
            "span_relaxed_": perl_relaxed_counts(gold_table, pred_table, use_cui=False),
        }
        for name, triple in counts.items():
            for i, value in enumerate(triple):
                totals[name][i] += value
    scores: dict[str, float] = {"ignored_predictions": float(ignored)}
    for name, (tp, fp, fn) in totals.items():
        scores.update(_named(name, tp, fp, fn))
    return scores


# --- SemEval-2014 Task 7: the task definitions, one-to-one ---------------------------------


def _shared_characters(a: Spans, b: Spans) -> int:
    return sum(max(0, min(e1, e2) - max(s1, s2)) for s1, e1 in a for s2, e2 in b)


def _strict_pairs(gold: list[Mention], pred: list[Mention]) -> tuple[list[tuple[Mention, Mention]], list[Mention], list[Mention]]:
    """One-to-one pairs of identical span lists; also the unmatched gold and predictions."""
    waiting: dict[Spans, list[Mention]] = {}
    for mention in pred:
        waiting.setdefault(tuple(mention.spans), []).append(mention)
    pairs, unmatched_gold = [], []
    for mention in gold:
        queue = waiting.get(tuple(mention.spans))
        if queue:
            pairs.append((mention, queue.pop(0)))
        else:
            unmatched_gold.append(mention)
    unmatched_pred = [m for queue in waiting.values() for m in queue]
    return pairs, unmatched_gold, unmatched_pred


def _correct_cuis(pairs: list[tuple[Mention, Mention]]) -> int:
    """CUIs agreeing over the strict pairs, pairing equal-span duplicates to agree where possible."""
    groups: dict[Spans, tuple[Counter[str], Counter[str]]] = {}
    for gold_mention, pred_mention in pairs:
        gold_cuis, pred_cuis = groups.setdefault(tuple(gold_mention.spans), (Counter(), Counter()))
        gold_cuis[_cui(gold_mention)] += 1
        pred_cuis[_cui(pred_mention)] += 1
    return sum(sum((g & p).values()) for g, p in groups.values())


def _relaxed_matches(unmatched_gold: list[Mention], unmatched_pred: list[Mention]) -> int:
    """Greedy one-to-one overlap matches among the disorders left after exact matching."""
    remaining = sorted(unmatched_pred, key=lambda m: tuple(m.spans))
    matched = 0
    for mention in sorted(unmatched_gold, key=lambda m: tuple(m.spans)):
        best, best_shared = None, 0
        for candidate in remaining:
            shared = _shared_characters(tuple(mention.spans), tuple(candidate.spans))
            if shared > best_shared:
                best, best_shared = candidate, shared
        if best is not None:
            remaining.remove(best)
            matched += 1
    return matched


def semeval2014_scores(gold: Sequence[Document], pred: Sequence[Document]) -> dict[str, float]:
    """2014 T7 Task A strict/relaxed span P/R/F1 and, when CUIs are predicted, Task B accuracy.

    Keys: ``strict_precision`` ... ``relaxed_f1`` (+ ``*_tp``/``*_fp``/``*_fn``) and, if any
    predicted mention has ``attributes["CUI"]``, ``cui_accuracy_strict`` and
    ``cui_accuracy_relaxed``. Every gold document must have a prediction (possibly empty).
    """
    n_gold = n_pred = strict_tp = relaxed_tp = correct_cuis = 0
    cuis_predicted = False
    for gold_doc, pred_doc in pair_documents(gold, pred):
        assert pred_doc is not None
        cuis_predicted = cuis_predicted or any("CUI" in m.attributes for m in pred_doc.mentions)
        pairs, unmatched_gold, unmatched_pred = _strict_pairs(gold_doc.mentions, pred_doc.mentions)
        n_gold += len(gold_doc.mentions)
        n_pred += len(pred_doc.mentions)
        strict_tp += len(pairs)
        relaxed_tp += len(pairs) + _relaxed_matches(unmatched_gold, unmatched_pred)
        correct_cuis += _correct_cuis(pairs)
    scores = {**_named("strict_", strict_tp, n_pred - strict_tp, n_gold - strict_tp),
              **_named("relaxed_", relaxed_tp, n_pred - relaxed_tp, n_gold - relaxed_tp)}
    if cuis_predicted:
        scores["cui_accuracy_strict"] = correct_cuis / n_gold if n_gold else 0.0
        scores["cui_accuracy_relaxed"] = correct_cuis / strict_tp if strict_tp else 0.0
    return scores
