"""(confidence, correct) pairs of a head's predictions against the gold targets of its features.

The unit of calibration depends on the head:

* ``token``: every owned, labelled token (its argmax confidence; correct if the tag is the gold tag);
* ``span``: every predicted span (correct if the same token range and label is a gold fragment);
* ``relation``: every predicted non-null pair (correct if a gold relation with that label);
  single-span typing: every entity (correct if its predicted technique is the gold one);
* ``ranking``: every candidate (the probability of the predicted level; correct if it is the gold level).

For span and relation heads only predicted positives are scored: the confidence of "no span" over
tens of thousands of candidates would swamp the measure. The README states this.

Each unit counts once, from the window whose prediction the decoder keeps: a token or a span from
the window owning its (first) token, a pair from its deciding window
(:func:`mtpeft.tasks.relation_task.deciding_window`); overlapping windows predict the same unit
several times, and counting every copy would weigh the overlaps twice.
"""

from __future__ import annotations

from collections.abc import Sequence

from mtpeft.tasks.encoding.windows import Window
from mtpeft.tasks.features import IGNORE_INDEX, Features, WindowPrediction
from mtpeft.tasks.relation_task import decides, windows_of


def _token_pairs(p: WindowPrediction, f: Features) -> tuple[list[float], list[int]]:
    conf, ok = [], []
    if p.token_labels is None or f.token_labels is None:
        return conf, ok
    first, last = f.owned if f.owned is not None else (0, len(f.token_labels) - 1)
    for i in range(first, min(last + 1, len(f.token_labels))):
        if f.token_labels[i] != IGNORE_INDEX:
            conf.append(float(p.token_confidences[i]) if p.token_confidences else 1.0)
            ok.append(int(p.token_labels[i] == f.token_labels[i]))
    return conf, ok


def _span_pairs(p: WindowPrediction, f: Features) -> tuple[list[float], list[int]]:
    gold = {tuple(s) for s in (f.span_labels or [])}
    first, last = f.owned if f.owned is not None else (0, len(f.input_ids) - 1)
    owned = [(s, e, l, c) for s, e, l, c in p.spans or [] if first <= s <= last]  # the decoder's fragments
    return [float(c) for *_, c in owned], [int((s, e, l) in gold) for s, e, l, _ in owned]


def _relation_pairs(p: WindowPrediction, f: Features, windows: Sequence[Window] = ()) -> tuple[list[float], list[int]]:
    if p.entity_labels is not None and f.entity_label_sets is not None:  # span typing: the top label of each extent
        pairs = zip(p.entity_labels, f.entity_label_sets)
        return [float(c) for _, c in p.entity_labels], [int(label in gold) for (label, _), gold in pairs]
    gold = {tuple(r) for r in (f.relations or [])}
    decided = [(h, t, l, c) for h, t, l, c in p.relations or [] if not windows or decides(f, windows, h, t)]
    return [float(c) for *_, c in decided], [int((h, t, l) in gold) for h, t, l, _ in decided]


def _ranking_pairs(p: WindowPrediction, f: Features) -> tuple[list[float], list[int]]:
    if p.rank_probs is None or f.rank_label is None:
        return [], []
    best = max(range(len(p.rank_probs)), key=p.rank_probs.__getitem__)
    return [float(p.rank_probs[best])], [int(best == f.rank_label)]


_PAIRS = {"token": _token_pairs, "span": _span_pairs, "relation": _relation_pairs, "ranking": _ranking_pairs}


def calibration_pairs(
    head_kind: str, predictions: Sequence[WindowPrediction], features: Sequence[Features]
) -> tuple[list[float], list[int]]:
    """All (confidence, correct) pairs of ``predictions`` (matched to ``features`` by doc and window)."""
    by_key = {(f.doc_id, f.window, f.candidate_id): f for f in features}
    pairs = _PAIRS[head_kind]
    windows: dict[str, list[Window]] = {}
    if head_kind == "relation":  # a pair's deciding window depends on all windows of its document
        by_doc: dict[str, list[Features]] = {}
        for f in features:
            if f.relations is not None and f.owned is not None and "token_start" in f.meta:
                by_doc.setdefault(f.doc_id, []).append(f)
        windows = {doc: windows_of(fs) for doc, fs in by_doc.items()}
    confidences: list[float] = []
    correct: list[int] = []
    for p in predictions:
        f = by_key.get((p.doc_id, p.window, p.candidate_id))
        if f is None:
            continue
        c, k = pairs(p, f, windows[f.doc_id]) if f.doc_id in windows else pairs(p, f)
        confidences.extend(c)
        correct.extend(k)
    return confidences, correct
