"""2015 T14 ``.txt`` + ``.pipe`` (single pipe, 19 fields): reading, exact writing, bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from mtpeft.errors import FormatError
from mtpeft.tasks.document import Document, Mention
from mtpeft.tasks.formats import semeval2015t14
from mtpeft.testing import annotations_of

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples" / "semeval2015t14"
TEXT = "Denies severe pain in the left chest.\nMother had stroke. Possible UTI.\n"
DEFAULT_TAIL = "|no|null|patient|null|no|null|unmarked|null|unmarked|null|false|null|false|null|NULL|null"
LINES = [  # negated, severe, discontiguous with a body location; family member; uncertain
    "n1.txt|14-18,31-36|C0008031|yes|0-6|patient|null|no|null|unmarked|null|severe|7-13|false|null|false|null|C0817096|31-36",
    "n1.txt|49-55|C0038454|no|null|family_member|38-44|no|null|unmarked|null|unmarked|null|false|null|false|null|NULL|null",
    "n1.txt|66-69|CUI-less|no|null|patient|null|yes|57-65|unmarked|null|unmarked|null|false|null|false|null|NULL|null",
]  # fmt: skip


def _write_pair(folder: Path, lines: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "n1.txt").write_text(TEXT, encoding="utf-8")
    (folder / "n1.pipe").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return folder


def test_fields_become_raw_attributes(tmp_path: Path) -> None:
    doc = semeval2015t14.read(_write_pair(tmp_path, LINES)).documents[0]
    first = doc.mentions[0]
    assert [doc.text[s:e] for s, e in first.spans] == ["pain", "chest"]
    assert list(first.attributes) == list(semeval2015t14.ATTRIBUTE_FIELDS)
    assert first.attributes["Neg_value"] == "yes" and first.attributes["Neg_span"] == "0-6"
    assert doc.text[0:6] == "Denies" and doc.text[7:13] == "severe" and doc.text[38:44] == "Mother"
    assert doc.mentions[1].attributes["Subj_value"] == "family_member"
    assert doc.mentions[2].attributes["CUI"] == "CUI-less" and doc.text[57:65] == "Possible"


def test_writer_reproduces_lines_exactly(tmp_path: Path) -> None:
    source = _write_pair(tmp_path / "in", LINES)
    semeval2015t14.write(semeval2015t14.read(source).documents, tmp_path / "out")
    assert (tmp_path / "out" / "n1.pipe").read_bytes() == (source / "n1.pipe").read_bytes()


def test_writer_fills_defaults_for_span_only_predictions(tmp_path: Path) -> None:
    doc = Document(id="n1", text=TEXT, mentions=[Mention(id="p", spans=((14, 18), (31, 36)), label="Disease_Disorder")])
    semeval2015t14.write([doc], tmp_path)
    assert (tmp_path / "n1.pipe").read_text(encoding="utf-8") == "n1.txt|14-18,31-36|CUI-less" + DEFAULT_TAIL + "\n"
    assert semeval2015t14.read(tmp_path).documents[0].mentions[0].attributes["Neg_value"] == "no"


@pytest.mark.parametrize("split", ["train", "dev"])
def test_samples_round_trip(tmp_path: Path, split: str) -> None:
    first = semeval2015t14.read(SAMPLES / split)
    assert first.documents and not first.skipped
    semeval2015t14.write(first.documents, tmp_path)
    assert annotations_of(semeval2015t14.read(tmp_path).documents) == annotations_of(first.documents)
    for pipe in (SAMPLES / split).glob("*.pipe"):
        assert (tmp_path / pipe.name).read_bytes() == pipe.read_bytes()


def _with(field: str, value: str) -> str:
    fields = LINES[2].split("|")
    fields[semeval2015t14.FIELDS.index(field)] = value
    return "|".join(fields)


@pytest.mark.parametrize(
    ("line", "problem", "expected"),
    [
        ("|".join(LINES[2].split("|")[:18]), "18 '|'-separated fields", "exactly 19"),
        (LINES[2] + "|extra", "20 '|'-separated fields", "exactly 19"),
        (_with("Diso_Spans", "66-90"), "past the end of the text", "end <= text length"),
        (_with("Diso_Spans", "69-66"), "ends before it starts", "start < end"),
        (_with("Diso_Spans", "66:69"), "is not start-end pairs", "start-end[,start-end...]"),
        (_with("Uncertain_span", "57-900"), "past the end of the text", "end <= text length"),
        (_with("Neg_value", "maybe"), "unknown Neg_value 'maybe'", "'no', 'yes'"),
        (_with("Subj_value", "neighbour"), "unknown Subj_value 'neighbour'", "'family_member'"),
        (_with("Course_value", "better"), "unknown Course_value 'better'", "'improved'"),
        (_with("CUI", "C12"), "unknown CUI 'C12'", "C + 7 digits"),
        (_with("Bodyloc_value", "chest"), "unknown Bodyloc_value 'chest'", "'NULL'"),
    ],
)
def test_bad_line_names_file_line_and_expectation(tmp_path: Path, line: str, problem: str, expected: str) -> None:
    folder = _write_pair(tmp_path, [LINES[0], line])
    with pytest.raises(FormatError) as caught:
        semeval2015t14.read(folder)
    message = str(caught.value)
    assert "n1.pipe:2:" in message and problem in message and expected in message
    lenient = semeval2015t14.read(folder, lenient=True)
    assert len(lenient.documents[0].mentions) == 1
    assert [(s.line, problem in s.reason) for s in lenient.skipped] == [(2, True)]


def test_allowed_values_can_be_widened(tmp_path: Path) -> None:
    folder = _write_pair(tmp_path, [_with("Subj_value", "donor_family_member")])
    with pytest.raises(FormatError, match="unknown Subj_value"):
        semeval2015t14.read(folder)
    widened = {"Subj_value": semeval2015t14.ALLOWED_VALUES["Subj_value"] | {"donor_family_member"}}
    doc = semeval2015t14.read(folder, allowed_values=widened).documents[0]
    assert doc.mentions[0].attributes["Subj_value"] == "donor_family_member"


def test_pipe_without_txt_is_an_error_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "n2.pipe").write_text(LINES[0] + "\n", encoding="utf-8")
    with pytest.raises(FormatError, match=r"n2\.pipe: annotations without their note text n2\.txt"):
        semeval2015t14.read(tmp_path)
    assert len(semeval2015t14.read(tmp_path, lenient=True).skipped) == 1
