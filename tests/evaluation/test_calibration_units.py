"""ECE units: each span, pair and token is counted once, from the window the decoder keeps it from."""

from __future__ import annotations

from mtpeft.evaluation.calibration_pairs import calibration_pairs
from mtpeft.samples import sample_path
from mtpeft.tasks.features import WindowPrediction
from mtpeft.tasks.registry import get_task
from tests.tasks.test_relation_task import _temporal_document

MAX_LENGTH, STRIDE = 24, 12  # every token is in two windows


def test_each_span_counts_once(tokenizer) -> None:
    task = get_task("semeval2015t14", max_length=MAX_LENGTH, stride=STRIDE)
    documents = task.read(sample_path("semeval2015t14", "train")).documents[:6]
    encoded = task.encode(documents, tokenizer)
    # every window predicts its gold fragments: the overlaps predict many of them twice
    predictions = [
        WindowPrediction(f.task, f.doc_id, f.window, spans=[(s, e, label, 0.75) for s, e, label in f.span_labels])
        for f in encoded.features
    ]
    in_document = {(f.doc_id, s + f.meta["token_start"], e + f.meta["token_start"], label)
                   for f in encoded.features for s, e, label in f.span_labels}  # fmt: skip
    predicted_copies = sum(len(p.spans) for p in predictions)
    assert predicted_copies > len(in_document), "the windows must overlap on spans for the test to mean anything"
    confidences, correct = calibration_pairs("span", predictions, encoded.features)
    assert len(confidences) == len(correct) == len(in_document)
    # the units are the fragments the decoder keeps
    decoded = task.decode(documents, predictions, encoded.features)
    assert sum(1 for d in decoded for m in d.mentions for _ in m.spans) <= len(in_document)


def test_each_pair_counts_once(tokenizer) -> None:
    doc = _temporal_document()
    task = get_task("semeval2016t12", relation_window=None, max_length=MAX_LENGTH, stride=STRIDE)
    encoded = task.encode([doc], tokenizer)
    predictions = [
        WindowPrediction(f.task, f.doc_id, f.window, relations=[(h, t, label, 0.6) for h, t, label in f.relations])
        for f in encoded.features
    ]
    in_document = {(f.entity_ids[h], f.entity_ids[t]) for f in encoded.features for h, t, _ in f.relations}
    assert sum(len(p.relations) for p in predictions) > len(in_document)
    confidences, correct = calibration_pairs("relation", predictions, encoded.features)
    assert len(confidences) == len(in_document) and all(correct)
    (decoded,) = task.decode([doc], predictions, encoded.features)
    assert len(decoded.relations) == len(in_document)  # the same units as the decoded relations


def test_each_token_counts_once(tokenizer) -> None:
    task = get_task("semeval2014t7", max_length=MAX_LENGTH, stride=STRIDE)
    documents = task.read(sample_path("semeval2014t7", "train")).documents[:3]
    encoded = task.encode(documents, tokenizer)
    predictions = [
        WindowPrediction(f.task, f.doc_id, f.window, token_labels=list(f.token_labels),
                         token_confidences=[0.9] * len(f.token_labels))
        for f in encoded.features
    ]  # fmt: skip
    confidences, _ = calibration_pairs("token", predictions, encoded.features)
    labelled_owned = sum(
        sum(1 for i in range(f.owned[0], f.owned[1] + 1) if f.token_labels[i] >= 0) for f in encoded.features
    )
    assert len(confidences) == labelled_owned
