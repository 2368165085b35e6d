"""2021 T6 subtask 2 JSON: real files, samples, fragment mismatches, predictions, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mtpeft.errors import FormatError
from mtpeft.tasks.document import Document, Mention
from mtpeft.tasks.formats import semeval2021t6
from mtpeft.testing import annotations_of, require_shared_data

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples" / "semeval2021t6"
MEME = {
    "id": "7",
    "text": "THEY LIED\n\nVOTE THEM OUT!",
    "labels": [
        {"start": 0, "end": 9, "technique": "Smears", "text_fragment": "THEY LIED"},
        {"start": 5, "end": 9, "technique": "Loaded Language", "text_fragment": "LIED"},
        {"start": 11, "end": 24, "technique": "Slogans", "text_fragment": " VOTE THEM OUT"},  # a leading space
    ],
}


def _json(tmp_path: Path, items: object, name: str = "memes.txt") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(items, indent=2), encoding="utf-8")
    return path


def test_overlapping_spans_and_mismatched_fragments(tmp_path: Path) -> None:
    [doc] = semeval2021t6.read(_json(tmp_path, [MEME])).documents
    assert [(m.label, doc.text[m.start : m.end]) for m in doc.mentions] == [
        ("Smears", "THEY LIED"), ("Loaded Language", "LIED"), ("Slogans", "VOTE THEM OUT")
    ]  # fmt: skip
    [mismatch] = semeval2021t6.fragment_mismatches([doc])
    assert (mismatch.doc_id, mismatch.mention_id) == ("7", "T2")
    assert (mismatch.text_fragment, mismatch.text_at_offsets) == (" VOTE THEM OUT", "VOTE THEM OUT")
    semeval2021t6.write([doc], tmp_path / "out.txt")  # the fragment is kept as written
    assert json.loads((tmp_path / "out.txt").read_text(encoding="utf-8")) == [MEME]


@pytest.mark.parametrize(
    ("name", "memes", "spans"), [("training_set_task2.txt", 688, 1498), ("dev_set_task2.txt", 63, 182)]
)
def test_real_files_count_and_round_trip(tmp_path: Path, name: str, memes: int, spans: int) -> None:
    path = require_shared_data(f"semeval2021t6/{name}")
    raw = json.loads(path.read_text(encoding="utf-8"))
    result = semeval2021t6.read(path)
    assert not result.skipped
    assert len(result.documents) == len(raw) == memes
    assert sum(len(d.mentions) for d in result.documents) == sum(len(m["labels"]) for m in raw) == spans
    expected = sum(m["text"][l["start"] : l["end"]] != l["text_fragment"] for m in raw for l in m["labels"])
    assert len(semeval2021t6.fragment_mismatches(result.documents)) == expected
    semeval2021t6.write(result.documents, tmp_path / name)
    assert annotations_of(semeval2021t6.read(tmp_path / name).documents) == annotations_of(result.documents)
    written = json.loads((tmp_path / name).read_text(encoding="utf-8"))
    assert written == raw  # same memes, labels and fields (key order aside)


def test_shipped_technique_list_is_the_official_one() -> None:
    path = require_shared_data("semeval2021t6/techniques_list_task1-2.txt")
    assert semeval2021t6.read_techniques(path) == semeval2021t6.TECHNIQUES
    assert len(semeval2021t6.TECHNIQUES) == 20


@pytest.mark.parametrize("split", ["train", "dev"])
def test_samples_folder_round_trip(tmp_path: Path, split: str) -> None:
    first = semeval2021t6.read(SAMPLES / split)
    assert first.documents and not first.skipped
    semeval2021t6.write(first.documents, tmp_path / "x.txt")
    assert annotations_of(semeval2021t6.read(tmp_path / "x.txt").documents) == annotations_of(first.documents)


def test_custom_technique_list(tmp_path: Path) -> None:
    meme = {"id": "1", "text": "GO TEAM", "labels": [{"start": 0, "end": 7, "technique": "Cheering"}]}
    path = _json(tmp_path, [meme])
    with pytest.raises(FormatError, match="unknown technique 'Cheering'"):
        semeval2021t6.read(path)
    [doc] = semeval2021t6.read(path, techniques=["Cheering"]).documents
    assert doc.mentions[0].label == "Cheering" and doc.mentions[0].attributes == {}  # no fragment given


def _label(**changes: object) -> dict[str, object]:
    return {**MEME["labels"][0], **changes}  # type: ignore[dict-item]


@pytest.mark.parametrize(
    ("label", "problem", "expected"),
    [
        (_label(end=99), "past the end of the text", "end <= text length"),
        (_label(start=8, end=2), "ends before it starts", "start < end"),
        (_label(technique="Sarcasm"), "unknown technique 'Sarcasm'", "'Slogans'"),
        (_label(start="0"), "\"start\" is '0'", "non-negative integer"),
        (_label(text_fragment=3), '"text_fragment" is 3', "a string"),
        (["0", "9"], "a list", "an object"),
    ],
)
def test_bad_label_names_meme_and_label(tmp_path: Path, label: object, problem: str, expected: str) -> None:
    meme = {**MEME, "labels": [*MEME["labels"], label]}
    path = _json(tmp_path, [meme])
    with pytest.raises(FormatError) as caught:
        semeval2021t6.read(path)
    message = str(caught.value)
    assert "memes.txt (id 7, label #3)" in message and problem in message and expected in message
    lenient = semeval2021t6.read(path, lenient=True)
    assert len(lenient.documents[0].mentions) == 3
    assert [(s.element, problem in s.reason) for s in lenient.skipped] == [("id 7, label #3", True)]


@pytest.mark.parametrize(
    ("items", "element", "problem"),
    [
        ([{**MEME, "id": 7}], "meme #0", '"id" is 7'),
        ([{**MEME, "text": None}], "id 7", '"text" is NoneType'),
        ([MEME, MEME], "id 7", "duplicate meme id"),
        (["just text"], "meme #0", "a str"),
    ],
)
def test_bad_meme_names_it_and_lenient_skips_it(tmp_path: Path, items: list, element: str, problem: str) -> None:
    path = _json(tmp_path, items)
    with pytest.raises(FormatError, match=problem):
        semeval2021t6.read(path)
    lenient = semeval2021t6.read(path, lenient=True)
    assert [(s.element, problem in s.reason) for s in lenient.skipped] == [(element, True)]
    assert len(lenient.documents) == len(items) - 1


def test_malformed_json_gives_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "memes.txt"
    path.write_text('[\n  {"id": "1",\n   "text": "x" "labels": []}\n]', encoding="utf-8")
    with pytest.raises(FormatError, match=r"memes\.txt:3: invalid JSON at column 16: Expecting ','"):
        semeval2021t6.read(path)
    assert semeval2021t6.read(path, lenient=True).skipped[0].line == 3
    path.write_text('{"id": "1"}', encoding="utf-8")
    with pytest.raises(FormatError, match="top-level JSON is a dict; expected a list of memes"):
        semeval2021t6.read(path)


def test_predictions_must_have_exactly_the_gold_ids(tmp_path: Path) -> None:
    gold = semeval2021t6.read(SAMPLES / "dev").documents
    predictions = [Document(id=d.id, text=d.text) for d in gold]
    predictions[0].mentions.append(Mention(id="p", spans=((0, 3),), label="Doubt"))
    semeval2021t6.write_predictions(predictions, tmp_path / "pred.txt", gold_ids=[d.id for d in gold])
    written = json.loads((tmp_path / "pred.txt").read_text(encoding="utf-8"))
    assert [item["id"] for item in written] == [d.id for d in gold]
    assert written[0]["labels"] == [
        {"start": 0, "end": 3, "technique": "Doubt", "text_fragment": gold[0].text[0:3]}
    ]  # fmt: skip
    with pytest.raises(ValueError, match=rf"missing \['{gold[-1].id}'\], extra \[\], repeated \[\]"):
        semeval2021t6.write_predictions(predictions[:-1], tmp_path / "bad.txt", gold_ids=[d.id for d in gold])
    with pytest.raises(ValueError, match=rf"repeated \['{gold[0].id}'\]"):
        repeated = [*predictions, predictions[0]]
        semeval2021t6.write_predictions(repeated, tmp_path / "bad.txt", gold_ids=[d.id for d in gold])
    assert not (tmp_path / "bad.txt").exists()
