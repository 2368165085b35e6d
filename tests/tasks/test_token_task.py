"""Token tasks: encode/decode round trip, windows, and decoding into the reader's form."""

from __future__ import annotations

import random

import pytest

from mtpeft.tasks.base import MissingTextError
from mtpeft.tasks.document import Document, Mention
from mtpeft.tasks.features import IGNORE_INDEX, WindowPrediction
from mtpeft.tasks.registry import get_task
from tests.tasks.conftest import clinical_document


def gold_predictions(features) -> list[WindowPrediction]:
    return [
        WindowPrediction(f.task, f.doc_id, f.window, token_labels=[max(label, 0) for label in f.token_labels])
        for f in features
    ]


def mention_keys(doc: Document) -> list[tuple]:
    return sorted((m.label, m.spans) for m in doc.mentions)


@pytest.mark.parametrize(("max_length", "stride"), [(512, 128), (8, 4), (5, 0)])
def test_biohd_round_trip_on_every_shape(tokenizer, max_length: int, stride: int) -> None:
    task = get_task("semeval2014t7", max_length=max_length, stride=stride)
    report = task.round_trip([clinical_document()], tokenizer)
    assert report.mentions == 10
    assert report.exact == 8
    assert sorted((loss.item, loss.kind) for loss in report.lost) == [("g", "token_boundary"), ("j", "overlap")]


def test_bio_round_trip_reports_discontiguous(tokenizer) -> None:
    report = get_task("semeval2014t7", scheme="bio").round_trip([clinical_document()], tokenizer)
    kinds = {loss.item: loss.kind for loss in report.lost}
    assert kinds == {"a": "discontiguous_shape", "b": "discontiguous_shape", "d": "discontiguous_shape",
                     "h": "discontiguous_shape", "i": "discontiguous_shape", "g": "token_boundary"}  # fmt: skip
    assert report.exact == report.mentions - len(kinds)


def test_features_layout(tokenizer) -> None:
    task = get_task("semeval2014t7", max_length=8, stride=4)
    result = task.encode([clinical_document()], tokenizer)
    assert result.counts["windows"] == len(result.features) > 1
    assert result.lengths == [sum(f.owned[1] - f.owned[0] + 1 for f in result.features)]
    for f in result.features:
        assert len(f.input_ids) == len(f.token_offsets) == len(f.token_labels) <= 8
        first, last = f.owned
        for i, label in enumerate(f.token_labels):
            assert (label == IGNORE_INDEX) == (not first <= i <= last)


def _long_document(n_sentences: int = 120) -> Document:
    rng = random.Random(7)
    words = ["pain", "fever", "rash", "cough", "the", "patient", "reports", "no", "severe", "mild"]
    text, mentions = "", []
    for s in range(n_sentences):
        sentence = [rng.choice(words) for _ in range(rng.randint(4, 9))]
        for w_index, word in enumerate(sentence):
            start = len(text)
            text += word
            if word in ("pain", "fever", "rash", "cough") and rng.random() < 0.7:
                mentions.append(Mention(f"m{len(mentions)}", ((start, len(text)),), "Disease_Disorder"))
            text += " " if w_index < len(sentence) - 1 else ". "
    return Document(id="long", text=text, mentions=mentions)


def test_merged_window_predictions_equal_unsplit(tokenizer) -> None:
    """A context-free 'model' (label from the token id) gives the same mentions split or not."""
    doc = _long_document()
    decoded = []
    for max_length, stride in [(100_000, 0), (64, 16), (17, 5)]:
        task = get_task("semeval2014t7", scheme="bio", max_length=max_length, stride=stride)
        features = task.encode([doc], tokenizer).features
        predictions = [
            WindowPrediction(f.task, f.doc_id, f.window, token_labels=[token % 3 for token in f.input_ids])
            for f in features
        ]
        decoded.append(mention_keys(task.decode([doc], predictions, features)[0]))
    assert len(decoded[0]) > 50
    assert decoded[0] == decoded[1] == decoded[2]


def test_long_document_round_trip_is_exact(tokenizer) -> None:
    doc = _long_document()
    task = get_task("semeval2014t7", max_length=32, stride=8)
    report = task.round_trip([doc], tokenizer)
    assert report.exact == report.mentions == len(doc.mentions) and not report.lost


def test_decoded_documents_write_in_the_official_format(tokenizer, tmp_path) -> None:
    task = get_task("semeval2014t7")
    doc = clinical_document()
    doc.attributes["DocName"] = "note1.txt"
    features = task.encode([doc], tokenizer).features
    decoded = task.decode([doc], gold_predictions(features), features)
    task.write(decoded, tmp_path)
    (back,) = task.read(tmp_path).documents
    assert mention_keys(back) == mention_keys(decoded[0])
    assert back.text == doc.text


def test_collapse_merges_identical_extents(tokenizer) -> None:
    text = "Strong words here."
    doc = Document("m1", text, [Mention("T0", ((0, 12),), "Loaded Language"), Mention("T1", ((0, 12),), "Smears")])
    task = get_task("semeval2021t6_level1")
    assert task.gold_mentions(doc)[1] == 1
    report = task.round_trip([doc], tokenizer)
    assert (report.mentions, report.exact) == (1, 1)
    technique = get_task("semeval2021t6_level1", tagging="technique").round_trip([doc], tokenizer)
    assert (technique.mentions, technique.exact, technique.lost_by_kind()) == (2, 1, {"overlap": 1})


def test_decode_checks_predictions(tokenizer) -> None:
    task = get_task("semeval2014t7", max_length=8, stride=4)
    doc = clinical_document()
    features = task.encode([doc], tokenizer).features
    predictions = gold_predictions(features)
    with pytest.raises(ValueError, match="no prediction"):
        task.decode([doc], predictions[1:], features)
    with pytest.raises(ValueError, match="two predictions"):
        task.decode([doc], predictions + predictions[:1], features)
    other = [WindowPrediction("semeval2015t14", p.doc_id, p.window, token_labels=p.token_labels) for p in predictions]
    with pytest.raises(ValueError, match="semeval2015t14"):
        task.decode([doc], other, features)
    with pytest.raises(ValueError, match="not given to decode"):
        task.decode([clinical_document("other")], predictions, features)


def test_documents_without_text_cannot_be_encoded(tokenizer) -> None:
    with pytest.raises(MissingTextError, match="needs the text"):
        get_task("semeval2014t7").encode([Document("x", None)], tokenizer)


def test_empty_text_is_reported(tokenizer) -> None:
    task = get_task("semeval2014t7")
    result = task.encode([Document("empty", "")], tokenizer)
    assert result.features == [] and result.loss_counts() == {"empty_document": 1}
    assert task.decode([Document("empty", "")], [], [])[0].mentions == []


def test_level1_persuasion_predictions_write_and_read_back(tokenizer, tmp_path) -> None:
    task = get_task("semeval2021t6_level1")
    doc = Document("7", "Wake up, patriots! They lie.", [Mention("T0", ((0, 18),), "Flag-waving")])
    features = task.encode([doc], tokenizer).features
    decoded = task.decode([doc], gold_predictions(features), features)
    task.write(decoded, tmp_path / "pred.txt")
    (back,) = task.read(tmp_path / "pred.txt").documents
    assert [(m.label, m.spans) for m in back.mentions] == [("PERSUASION", ((0, 18),))]
