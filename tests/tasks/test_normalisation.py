"""CUI normalisation, task side: lexicons from training data only, the classifier's classes, the
choice of a CUI, decoding into both official formats, normalisation off, bad lexicon lines."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mtpeft.config import TaskConfig
from mtpeft.errors import FormatError
from mtpeft.model.build import build_task
from mtpeft.tasks.document import Document, Mention
from mtpeft.tasks.features import WindowPrediction
from mtpeft.tasks.formats import semeval2014t7, semeval2015t14
from mtpeft.tasks.normalisation import (
    CUI_LESS,
    OTHER,
    CuiNormaliser,
    Lexicon,
    normalise_text,
    pooled_logits,
    read_lexicon,
)
from mtpeft.tasks.registry import get_task
from tests.tasks.conftest import char_span

DISORDER = "Disease_Disorder"
FORMATS = {"semeval2014t7": semeval2014t7, "semeval2015t14": semeval2015t14}


def _note(doc_id: str, text: str, disorders: list[tuple[str, str]]) -> Document:
    """A note whose disorders are (surface text, CUI) pairs, each at its first occurrence."""
    mentions = [
        Mention(f"M{i}", (char_span(text, surface),), DISORDER, {"CUI": cui}) for i, (surface, cui) in enumerate(disorders)
    ]
    return Document(doc_id, text, mentions)


TRAIN = [
    _note("t1", "Chest pain and fever today. Bibasilar crackles.", [("Chest pain", "C0008031"), ("fever", "C0015967"),
                                                                   ("Bibasilar crackles", CUI_LESS)]),
    _note("t2", "No fever. Chest pain at rest.", [("fever", "C0015967"), ("Chest pain", "C0008031")]),
    _note("t3", "Gout flare.", [("Gout", "C0018099")]),  # seen once: below cui_min_count=2
]
DEV = [_note("d1", "Heart attack and fever.", [("Heart attack", "C0027051"), ("fever", "C0015967")])]


def _write(documents: list[Document], folder: Path, task_id: str) -> Path:
    FORMATS[task_id].write(documents, folder)
    return folder


@pytest.mark.parametrize("task_id", FORMATS)
def test_lexicon_and_classes_come_from_the_training_data_only(tmp_path: Path, task_id: str) -> None:
    train = _write(TRAIN, tmp_path / "train", task_id)
    dev = _write(DEV, tmp_path / "dev", task_id)
    task = build_task(TaskConfig(id=task_id, train=str(train), dev=str(dev)))
    normaliser = task.normaliser
    # the training lexicon holds exactly the training texts; nothing of dev leaks in
    assert normaliser.training_lexicon.entries() == {
        "chest pain": {"C0008031": 2}, "fever": {"C0015967": 2}, "bibasilar crackles": {CUI_LESS: 1}, "gout": {"C0018099": 1},
    }
    assert "heart attack" not in normaliser.training_lexicon
    assert "C0027051" not in normaliser.vocabulary.labels
    # the classes: CUI-less, <other>, then the training CUIs seen twice (gout, once, shares <other>)
    assert normaliser.vocabulary.labels == [CUI_LESS, OTHER, "C0008031", "C0015967"]
    assert normaliser.vocabulary.rare == ["C0018099"]
    assert normaliser.fitted_on == 3
    assert task.head_options()["cui_classes"] == 4


@pytest.mark.parametrize("task_id", FORMATS)
def test_a_task_built_without_training_data_reads_no_dev_or_test(tmp_path: Path, task_id: str) -> None:
    """Only ``train`` is read when the task is built: a broken dev folder does not matter."""
    (tmp_path / "dev").mkdir()
    (tmp_path / "dev" / "x.pipe").write_text("not a pipe line\n")
    task = build_task(TaskConfig(id=task_id, train=str(_write(TRAIN, tmp_path / "train", task_id)),
                                 dev=str(tmp_path / "dev"), test=str(tmp_path / "dev")))
    assert task.normaliser.fitted_on == 3
    unfitted = build_task(TaskConfig(id=task_id))
    assert unfitted.normaliser.vocabulary.labels == [CUI_LESS, OTHER] and len(unfitted.normaliser.training_lexicon) == 0


@pytest.mark.parametrize("task_id", FORMATS)
def test_the_classifier_targets_are_the_training_classes(tokenizer, task_id: str) -> None:
    task = get_task(task_id)
    task.fit(TRAIN)
    labels = task.normaliser.vocabulary.labels
    encoded = task.encode(TRAIN + DEV, tokenizer)
    by_doc = {f.doc_id: f for f in encoded.features}
    assert encoded.counts["cui_targets"] == 8
    assert [labels[i] for i in by_doc["t1"].cui_labels] == ["C0008031", "C0015967", CUI_LESS]
    assert [labels[i] for i in by_doc["t3"].cui_labels] == [OTHER]  # a rare training CUI
    assert [labels[i] for i in by_doc["d1"].cui_labels] == [OTHER, "C0015967"]  # a CUI training never saw
    # each target is the tokens of its mention
    f = by_doc["t1"]
    (first, last), = f.cui_mentions[0]
    assert (f.token_offsets[first][0], f.token_offsets[last][1]) == (0, len("Chest pain"))


def test_normalise_text_and_lookups() -> None:
    assert normalise_text("  Chest\n Pain. ") == "chest pain"
    lexicon = Lexicon("test")
    for cui in ("C0000001", "C0000002", "C0000002", "C0000001"):
        lexicon.add("cold", cui)
    assert lexicon.lookup("cold") == "C0000001"  # a tie: the first seen
    assert lexicon.lookup("warm") is None and lexicon.ambiguous() == 1


def _normaliser(tmp_path: Path | None = None) -> CuiNormaliser:
    path = None
    if tmp_path is not None:
        path = tmp_path / "umls.tsv"
        path.write_text("# text<TAB>CUI\nheart attack\tC0027051\nHeart Attack\tC0000000\n\nfever\tC0000001\n", encoding="utf-8")
    normaliser = CuiNormaliser("t", min_count=2, threshold=0.6, lexicon=path)
    normaliser.fit(TRAIN)
    return normaliser


def _logits(normaliser: CuiNormaliser, cui: str, p: float) -> np.ndarray:
    """Logits whose softmax gives ``cui`` probability ``p`` and the rest evenly."""
    n = normaliser.num_classes
    probs = np.full(n, (1 - p) / (n - 1))
    probs[normaliser.vocabulary.labels.index(cui)] = p
    return np.log(probs)


def test_choose_classifier_then_training_lexicon_then_user_lexicon(tmp_path: Path) -> None:
    normaliser = _normaliser(tmp_path)
    confident = _logits(normaliser, "C0008031", 0.9)
    unsure = _logits(normaliser, "C0008031", 0.5)
    assert normaliser.choose(confident, "fever") == ("C0008031", "classifier")
    assert normaliser.choose(unsure, "fever") == ("C0015967", "training_lexicon")  # training before the user's
    assert normaliser.choose(unsure, "heart attack") == ("C0027051", "user_lexicon")  # first listed wins
    assert normaliser.choose(unsure, "unknown thing") == ("C0008031", "classifier_unsure")
    assert normaliser.choose(_logits(normaliser, OTHER, 0.9), "gout") == ("C0018099", "training_lexicon")
    assert normaliser.choose(_logits(normaliser, OTHER, 0.9), "unknown")[0] != OTHER  # never written
    assert normaliser.choose(None, "unknown thing") == (CUI_LESS, "classifier_unsure")


def test_pooled_logits_weight_pieces_by_their_tokens() -> None:
    a, b = np.array([1.0, 0.0]), np.array([0.0, 4.0])
    assert np.allclose(pooled_logits([(1, a), (3, b)]), (a + 3 * b) / 4)
    assert pooled_logits([]) is None


@pytest.mark.parametrize(
    "line, problem, expected",
    [
        ("chest pain C0008031", "no tab", "text<TAB>CUI"),
        ("chest pain\tC0008031\textra", "2 tabs", "text<TAB>CUI"),
        (" . \tC0008031", "empty text", "the mention text"),
        ("chest pain\tC12345", "unknown CUI 'C12345'", "C + 7 digits"),
        ("chest pain\tcui-less", "unknown CUI 'cui-less'", "'CUI-less'"),
    ],
)
def test_bad_lexicon_lines_name_the_file_and_line(tmp_path: Path, line: str, problem: str, expected: str) -> None:
    path = tmp_path / "lexicon.tsv"
    path.write_text(f"fever\tC0015967\n# a comment\n{line}\n", encoding="utf-8")
    with pytest.raises(FormatError) as err:
        read_lexicon(path)
    message = str(err.value)
    assert message.startswith(f"{path}:3: ") and problem in message and expected in message
    with pytest.raises(FormatError, match=r"lexicon.tsv:3: "):  # the task option reads it when the task is built
        get_task("semeval2015t14", lexicon=str(path))


def test_a_missing_lexicon_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="does not exist"):
        get_task("semeval2014t7", lexicon=str(tmp_path / "nope.tsv"))


def _gold_predictions(task, features, cui_row):
    """Predictions that decode to the gold mentions, with the CUI logits ``cui_row(features)``."""
    out = []
    for f in features:
        if task.head_kind == "token":
            labels = [max(label, 0) for label in f.token_labels]
            ranges = [(t, t) for t, label in enumerate(labels) if label != 0]
            out.append(WindowPrediction(f.task, f.doc_id, f.window, token_labels=labels,
                                        token_confidences=[1.0] * len(labels), cui_ranges=ranges,
                                        cui_logits=np.stack([cui_row(f, r) for r in ranges]) if ranges else np.zeros((0, 1))))
        else:
            spans = [(s, e, label, 1.0) for s, e, label in f.span_labels]
            ranges = [(s, e) for s, e, _ in f.span_labels]
            out.append(WindowPrediction(f.task, f.doc_id, f.window, spans=spans, links=[(i, j, 1.0) for i, j in f.span_links],
                                        cui_ranges=ranges,
                                        cui_logits=np.stack([cui_row(f, r) for r in ranges]) if ranges else np.zeros((0, 1))))
    return out


@pytest.mark.parametrize("task_id", FORMATS)
def test_decoding_writes_the_predicted_cui_into_the_official_format(tmp_path: Path, tokenizer, task_id: str) -> None:
    task = get_task(task_id)
    task.fit(TRAIN)
    labels = task.normaliser.vocabulary.labels
    encoded = task.encode(DEV, tokenizer)

    def confident_fever_cui(f, rng):  # the classifier says C0015967 (fever's CUI) for every piece
        row = np.full(len(labels), -5.0)
        row[labels.index("C0015967")] = 5.0
        return row

    decoded = task.decode(DEV, _gold_predictions(task, encoded.features, confident_fever_cui), encoded.features)
    assert [(m.attributes["CUI"], m.attributes["CUI_source"]) for m in decoded[0].mentions] == [
        ("C0015967", "classifier"), ("C0015967", "classifier")
    ]
    task.write(decoded, tmp_path)
    line = (tmp_path / "d1.pipe").read_text().splitlines()[0]
    fields = line.split("||") if task_id == "semeval2014t7" else line.split("|")
    assert fields[2] == "C0015967"
    assert [m.attributes["CUI"] for m in task.read(tmp_path).documents[0].mentions] == ["C0015967", "C0015967"]

    def unsure(f, rng):  # no preference: the training lexicon decides where it knows the text
        return np.zeros(len(labels))

    decoded = task.decode(DEV, _gold_predictions(task, encoded.features, unsure), encoded.features)
    assert [(m.attributes["CUI"], m.attributes["CUI_source"]) for m in decoded[0].mentions] == [
        ("CUI-less", "classifier_unsure"), ("C0015967", "training_lexicon")
    ]


@pytest.mark.parametrize("task_id", FORMATS)
def test_normalisation_off_gives_the_span_only_task(tmp_path: Path, tokenizer, task_id: str) -> None:
    on, off = get_task(task_id), get_task(task_id, normalise=False)
    on.fit(TRAIN)
    off.fit(TRAIN)  # nothing to learn
    assert off.normaliser is None and "cui_classes" not in off.head_options()
    with_cuis, without = on.encode(DEV, tokenizer), off.encode(DEV, tokenizer)
    for a, b in zip(with_cuis.features, without.features):
        assert b.cui_mentions is None and b.cui_labels is None
        a.cui_mentions = a.cui_labels = None
        assert a == b  # everything else is what the span-only task encodes
    predictions = _gold_predictions(off, without.features, lambda f, r: np.zeros(1))
    for p in predictions:
        p.cui_ranges = p.cui_logits = None
    decoded = off.decode(DEV, predictions, without.features)
    assert all("CUI" not in m.attributes for m in decoded[0].mentions)
    off.write(decoded, tmp_path)
    assert [m.attributes["CUI"] for m in off.read(tmp_path).documents[0].mentions] == [CUI_LESS, CUI_LESS]
    with pytest.raises(Exception, match="normalise is false"):
        get_task(task_id, normalise=False, lexicon="x.tsv")


def test_cui_statistics_against_training(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from mtpeft.cli.main import app
    from mtpeft.tasks.stats import cui_stats

    stats = cui_stats(DEV, TRAIN)
    assert (stats["distinct_cuis"], stats["singleton_cuis"], stats["cui_less"]) == (2, 2, 0)
    assert stats["vs_training"] == {
        "unseen_cuis": 1, "mentions_with_unseen_cui": 1, "classifier_ceiling": 0.5,
        "training_lexicon_coverage": 0.5, "training_lexicon_accuracy": 0.5,
    }
    assert cui_stats(TRAIN)["cui_less_share"] == pytest.approx(1 / 6) and "vs_training" not in cui_stats(TRAIN)
    train = _write(TRAIN, tmp_path / "train", "semeval2014t7")
    dev = _write(DEV, tmp_path / "dev", "semeval2014t7")
    result = CliRunner().invoke(app, ["data", "stats", "semeval2014t7", str(dev), "--train", str(train), "--tokenizer", "none"])
    assert result.exit_code == 0, result.output
    assert "1 CUIs unseen in training (1 mentions: a classifier trained on it is right on at most 50.0%)" in result.output
    assert "4 classifier classes" in result.output


def test_a_split_train_file_fits_on_its_train_part_only(tmp_path: Path) -> None:
    """With ``split`` the held-out documents are the dev set: none of their CUIs or texts leak in."""
    from mtpeft.config import SplitConfig
    from mtpeft.tasks.split import split_part

    everything = _write(TRAIN + DEV, tmp_path / "all", "semeval2014t7")
    config = TaskConfig(id="semeval2014t7", train=str(everything), split=SplitConfig(dev_fraction=0.5, seed=3))
    task = build_task(config)
    documents = task.read(everything).documents
    train_part, _ = split_part(documents, config.split, "train")
    dev_part, _ = split_part(documents, config.split, "dev")
    assert train_part and dev_part
    assert task.normaliser.training_lexicon.entries() == Lexicon.from_documents(train_part).entries()
    assert task.normaliser.fitted_on == len(train_part) < len(documents)
