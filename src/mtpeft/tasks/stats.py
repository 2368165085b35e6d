"""``data stats``: what a data folder holds for a task, and what encoding it for a model costs.

Everything is computed from the files: documents, skipped records with reasons, annotation
labels and their distribution, discontiguous and overlapping mentions, and -- when the documents
have text and a tokenizer is given -- examples (windows or pairs), token-length percentiles, the
encoded label distribution, encoding losses by kind, and the encode/decode round trip of mention
tasks. Documents without text (2016 T12 annotations without the licensed notes) are reported
and left out of the encoding section, which says that encoding needs the text.

For mentions that carry a CUI (2014 T7, 2015 T14) the CUI distribution is reported too: distinct
CUIs, singletons, the ``CUI-less`` share and, given the training data, the CUIs of these files
unseen in training (no classifier trained on that data can produce them: the ceiling of its
accuracy) and what an exact-match training lexicon covers and gets right on the gold spans.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mtpeft.tasks.base import Task
from mtpeft.tasks.document import Document, Mention
from mtpeft.tasks.features import IGNORE_INDEX
from mtpeft.tasks.normalisation import CUI_LESS, Lexicon, mention_cui, mention_text

PERCENTILES = (50, 90, 95, 99)
MAX_LISTED = 10
"""How many skipped records and encoding losses are listed one by one (all are counted)."""


def _overlaps(a: Mention, b: Mention) -> bool:
    return any(s1 < e2 and s2 < e1 for s1, e1 in a.spans for s2, e2 in b.spans)


def overlapping_mentions(doc: Document) -> int:
    """How many mentions of ``doc`` share at least one character with another mention."""
    ordered = sorted(doc.mentions, key=lambda m: m.start)
    flagged: set[int] = set()
    for i, a in enumerate(ordered):
        for j in range(i + 1, len(ordered)):
            b = ordered[j]
            if b.start >= a.end:
                break
            if _overlaps(a, b):
                flagged.update((i, j))
    return len(flagged)


def annotation_stats(documents: Sequence[Document]) -> dict[str, Any]:
    """Counts and label distributions of the annotations, computed without a tokenizer."""
    mentions = [m for d in documents for m in d.mentions]
    relations = [r for d in documents for r in d.relations]
    candidates = [c for d in documents for c in d.candidates]
    stats: dict[str, Any] = {}
    if mentions:
        stats["mentions"] = len(mentions)
        stats["mention_labels"] = dict(Counter(m.label for m in mentions).most_common())
        stats["discontiguous_mentions"] = sum(m.is_discontiguous for m in mentions)
        stats["overlapping_mentions"] = sum(overlapping_mentions(d) for d in documents)
    if relations:
        stats["relations"] = len(relations)
        stats["relation_labels"] = dict(Counter(r.label for r in relations).most_common())
    if candidates:
        stats["candidates"] = len(candidates)
        stats["candidate_labels"] = dict(Counter(str(c.label) for c in candidates).most_common())
    return stats


def cui_stats(documents: Sequence[Document], train: Sequence[Document] | None = None) -> dict[str, Any]:
    """The CUI distribution of the mentions (empty when none carries a CUI) and, with ``train``
    (the training documents), what a model trained on them can and cannot predict."""
    mentions = [m for d in documents for m in d.mentions if "CUI" in m.attributes]
    if not mentions:
        return {}
    counts = Counter(mention_cui(m) for m in mentions)
    cuis = {c: n for c, n in counts.items() if c != CUI_LESS}
    stats: dict[str, Any] = {
        "mentions_with_cui_field": len(mentions),
        "distinct_cuis": len(cuis),
        "singleton_cuis": sum(n == 1 for n in cuis.values()),
        "cui_less": counts[CUI_LESS],
        "cui_less_share": counts[CUI_LESS] / len(mentions),
        "most_frequent_cuis": dict(Counter(cuis).most_common(MAX_LISTED)),
    }
    if train is None:
        return stats
    seen = {mention_cui(m) for d in train for m in d.mentions} | {CUI_LESS}
    unseen = {c for c in cuis if c not in seen}
    unseen_mentions = sum(counts[c] for c in unseen)
    lexicon = Lexicon.from_documents(train)
    with_text = [(d, m) for d in documents if d.text is not None for m in d.mentions if "CUI" in m.attributes]
    looked_up = [(lexicon.lookup(mention_text(d.text, m.spans)), mention_cui(m)) for d, m in with_text]
    found = [(got, want) for got, want in looked_up if got is not None]
    stats["vs_training"] = {
        "unseen_cuis": len(unseen),
        "mentions_with_unseen_cui": unseen_mentions,
        "classifier_ceiling": 1 - unseen_mentions / len(mentions),
        "training_lexicon_coverage": len(found) / len(with_text) if with_text else 0.0,
        "training_lexicon_accuracy": sum(g == w for g, w in found) / len(with_text) if with_text else 0.0,
    }
    return stats


def _percentiles(lengths: Sequence[int]) -> dict[str, float]:
    if not lengths:
        return {}
    values = np.asarray(lengths)
    out = {"min": int(values.min())}
    out.update({f"p{p}": float(np.percentile(values, p)) for p in PERCENTILES})
    out.update({"max": int(values.max()), "mean": round(float(values.mean()), 1)})
    return out


def encoding_stats(task: Task, documents: Sequence[Document], tokenizer: object) -> dict[str, Any]:
    """Examples, token lengths, encoded label distribution, losses and (mention tasks) round trip."""
    result = task.encode(documents, tokenizer)
    stats: dict[str, Any] = {
        "examples": len(result.features),
        "max_length": task.max_length,
        "stride": task.stride,
        "token_lengths": _percentiles(result.lengths),
        "longer_than_max_length": sum(n > task.max_length for n in result.lengths),
        "counts": dict(sorted(result.counts.items())),
        "losses": result.loss_counts(),
        "loss_examples": [str(loss) for loss in result.losses[:MAX_LISTED]],
    }
    stats["encoded_labels"] = _encoded_labels(task, result.features)
    round_trip = getattr(task, "round_trip", None)
    if round_trip is not None:
        report = round_trip(documents, tokenizer)
        stats["round_trip"] = report.as_dict()
    return stats


def _encoded_labels(task: Task, features: Sequence[Any]) -> dict[str, int]:
    """Distribution of the label ids the head will be trained on, by label name."""
    counts: Counter[int] = Counter()
    for f in features:
        if f.token_labels is not None:
            counts.update(label for label in f.token_labels if label != IGNORE_INDEX)
        if f.span_labels is not None:
            counts.update(label for _, _, label in f.span_labels)
        if f.relations is not None:
            counts.update(label for _, _, label in f.relations)
        if f.entity_label_sets is not None:
            counts.update(label for labels in f.entity_label_sets for label in labels)
        if f.rank_label is not None:
            counts[f.rank_label] += 1
    return {task.labels[i]: n for i, n in counts.most_common()}


def data_stats(
    task: Task,
    path: str | Path,
    *,
    lenient: bool = False,
    tokenizer: object | None = None,
    train: str | Path | None = None,
) -> dict[str, Any]:
    """The full report of ``mtpeft data stats`` as a JSON-ready dict.

    ``train``: the training data of the task, for the CUI figures against training (and a task
    with a ``fit`` method, the disorder tasks, is fitted on it before encoding, as training does).
    """
    read = task.read(path, lenient=lenient)
    documents = read.documents
    train_documents = task.read(train, lenient=lenient).documents if train is not None else None
    fit = getattr(task, "fit", None)
    if train_documents is not None and fit is not None:
        fit(train_documents)
    with_text = [d for d in documents if d.text is not None]
    stats: dict[str, Any] = {
        "task": task.id,
        "level": task.level,
        "head_kind": task.head_kind,
        "labels": task.labels,
        "path": str(path),
        "documents": len(documents),
        "documents_without_text": len(documents) - len(with_text),
        "skipped": len(read.skipped),
        "skipped_records": [str(s) for s in read.skipped[:MAX_LISTED]],
        "annotations": annotation_stats(documents),
    }
    cuis = cui_stats(documents, train_documents)
    if cuis:
        stats["cuis"] = cuis
    normaliser = getattr(task, "normaliser", None)
    if normaliser is not None:
        stats["normalisation"] = normaliser.summary()
    if tokenizer is None:
        stats["encoding"] = {"unavailable": "no tokenizer given"}
    elif not with_text:
        stats["encoding"] = {
            "unavailable": "no document has text: encoding for a model needs the text "
            "(for 2016 T12, the licensed THYME note file next to each XML); the counts above need no text"
        }
    else:
        stats["encoding"] = encoding_stats(task, with_text, tokenizer)
        if len(with_text) < len(documents):
            stats["encoding"]["note"] = f"{len(documents) - len(with_text)} documents without text are not encoded"
    return stats


def format_stats(stats: dict[str, Any]) -> str:
    """A plain-text rendering of :func:`data_stats`."""
    lines = [
        f"task {stats['task']} (level {stats['level']}, {stats['head_kind']} head, {len(stats['labels'])} labels) "
        f"- {stats['path']}",
        f"documents: {stats['documents']}  without text: {stats['documents_without_text']}  "
        f"skipped records: {stats['skipped']}",
    ]
    lines += [f"  skipped: {s}" for s in stats["skipped_records"]]
    ann = stats["annotations"]
    for key in ("mentions", "relations", "candidates"):
        if key in ann:
            extra = ""
            if key == "mentions":
                extra = f"  discontiguous: {ann['discontiguous_mentions']}  overlapping: {ann['overlapping_mentions']}"
            lines.append(f"{key}: {ann[key]}{extra}")
            label_key = {
                "mentions": "mention_labels",
                "relations": "relation_labels",
                "candidates": "candidate_labels",
            }[key]
            lines += [f"  {label:<40} {n}" for label, n in ann[label_key].items()]
    lines += _format_cuis(stats)
    enc = stats["encoding"]
    if "unavailable" in enc:
        lines.append(f"encoding: unavailable - {enc['unavailable']}")
        return "\n".join(lines)
    lengths = "  ".join(f"{k} {v:g}" for k, v in enc["token_lengths"].items())
    lines += [
        f"examples: {enc['examples']} (max_length {enc['max_length']}, stride {enc['stride']}; "
        f"{enc['longer_than_max_length']} inputs longer than max_length)",
        f"tokens per input: {lengths}",
        "counts: " + "  ".join(f"{k} {v}" for k, v in enc["counts"].items()),
        "encoded labels: " + "  ".join(f"{k} {v}" for k, v in enc["encoded_labels"].items()),
    ]
    if "round_trip" in enc:
        rt = enc["round_trip"]
        lost = ", ".join(f"{k} {v}" for k, v in rt["lost_by_kind"].items()) or "none"
        lines.append(
            f"round trip (encode gold, decode): {rt['exact']}/{rt['mentions']} mentions exact "
            f"({100 * rt['exact_rate']:.1f}%); lost: {lost}; spurious: {rt['spurious']}"
        )
    losses = ", ".join(f"{k} {v}" for k, v in enc["losses"].items()) or "none"
    lines.append(f"encoding losses: {losses}")
    lines += [f"  {loss}" for loss in enc["loss_examples"]]
    if "note" in enc:
        lines.append(f"note: {enc['note']}")
    return "\n".join(lines)


def _format_cuis(stats: dict[str, Any]) -> list[str]:
    """The CUI lines of :func:`format_stats` (none when the mentions carry no CUI)."""
    cuis = stats.get("cuis")
    if not cuis:
        return []
    lines = [
        f"CUIs: {cuis['distinct_cuis']} distinct, {cuis['singleton_cuis']} seen once; CUI-less "
        f"{cuis['cui_less']}/{cuis['mentions_with_cui_field']} ({100 * cuis['cui_less_share']:.1f}%)",
    ]
    if "vs_training" in cuis:
        vs = cuis["vs_training"]
        lines.append(
            f"  vs training: {vs['unseen_cuis']} CUIs unseen in training ({vs['mentions_with_unseen_cui']} mentions: "
            f"a classifier trained on it is right on at most {100 * vs['classifier_ceiling']:.1f}%); exact-match "
            f"training lexicon covers {100 * vs['training_lexicon_coverage']:.1f}%, right on "
            f"{100 * vs['training_lexicon_accuracy']:.1f}% of the mentions"
        )
    else:
        lines.append("  (give --train PATH for the CUIs unseen in training: the ceiling of a classifier)")
    norm = stats.get("normalisation")
    if norm is not None:
        fitted = f"fitted on {norm['training_documents']} training documents" if norm["training_documents"] else "not fitted"
        lines.append(
            f"  normalisation: {norm['classes']} classifier classes (CUI-less, <other>, CUIs seen >= "
            f"{norm['min_count']} times; {fitted}); {norm['rare_cuis_in_other']} rarer CUIs share <other>; "
            f"training lexicon {norm['training_lexicon_texts']} texts, user lexicon {norm['user_lexicon_texts']}"
        )
    return lines
