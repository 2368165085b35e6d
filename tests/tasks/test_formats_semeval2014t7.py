"""2014 T7 ``.txt`` + ``.pipe`` (double pipe): reading, exact writing, bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from mtpeft.errors import FormatError
from mtpeft.tasks.formats import semeval2014t7
from mtpeft.testing import annotations_of

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples" / "semeval2014t7"
TEXT = "Pt with pain in the left chest.\r\nNo fever. Known DM.\n"
LINES = [  # hand-written in the official layout: contiguous, discontiguous, CUI-less
    "note1.txt||Disease_Disorder||C0008031||8||12||25||30",
    "note1.txt||Disease_Disorder||C0015967||36||41",
    "note1.txt||Disease_Disorder||CUI-less||49||51",
]


def _write_pair(folder: Path, lines: list[str], text: str = TEXT, name: str = "note1") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{name}.txt", "w", encoding="utf-8", newline="") as handle:
        handle.write(text)
    (folder / f"{name}.pipe").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return folder


def test_reads_hand_written_lines_with_exact_offsets(tmp_path: Path) -> None:
    doc = semeval2014t7.read(_write_pair(tmp_path, LINES)).documents[0]
    texts = [" ... ".join(doc.text[s:e] for s, e in m.spans) for m in doc.mentions]
    assert texts == ["pain ... chest", "fever", "DM"]  # offsets count the \r of \r\n
    assert [m.attributes["CUI"] for m in doc.mentions] == ["C0008031", "C0015967", "CUI-less"]
    assert doc.mentions[0].is_discontiguous and doc.attributes["DocName"] == "note1.txt"


def test_writer_reproduces_lines_and_text_exactly(tmp_path: Path) -> None:
    source = _write_pair(tmp_path / "in", LINES)
    semeval2014t7.write(semeval2014t7.read(source).documents, tmp_path / "out")
    assert (tmp_path / "out" / "note1.pipe").read_bytes() == (source / "note1.pipe").read_bytes()
    assert (tmp_path / "out" / "note1.txt").read_bytes() == (source / "note1.txt").read_bytes()


@pytest.mark.parametrize("split", ["train", "dev"])
def test_samples_round_trip(tmp_path: Path, split: str) -> None:
    first = semeval2014t7.read(SAMPLES / split)
    assert first.documents and not first.skipped
    semeval2014t7.write(first.documents, tmp_path)
    assert annotations_of(semeval2014t7.read(tmp_path).documents) == annotations_of(first.documents)
    for pipe in (SAMPLES / split).glob("*.pipe"):
        assert (tmp_path / pipe.name).read_bytes() == pipe.read_bytes()


def test_text_and_annotations_in_sibling_folders(tmp_path: Path) -> None:
    _write_pair(tmp_path / "text", [])
    (tmp_path / "text" / "note1.pipe").unlink()
    (tmp_path / "gold").mkdir()
    (tmp_path / "gold" / "note1.pipe").write_text(LINES[1] + "\n", encoding="utf-8")
    assert len(semeval2014t7.read(tmp_path).documents[0].mentions) == 1


@pytest.mark.parametrize(
    ("line", "problem", "expected"),
    [
        ("note1.txt||Disease_Disorder||C0015967||36", "4 '||'-separated fields", "an odd number >= 5"),
        ("note1.txt||Disease_Disorder||C0015967||36||99", "past the end of the text", "end <= text length"),
        ("note1.txt||Disease_Disorder||C0015967||41||36", "ends before it starts", "start < end"),
        ("note1.txt||Finding||C0015967||36||41", "unknown label 'Finding'", "'Disease_Disorder'"),
        ("note1.txt||Disease_Disorder||X15967||36||41", "unknown CUI 'X15967'", "C + 7 digits"),
        ("note1.txt||Disease_Disorder||C0015967||3a||41", "offset is '3a'", "non-negative integer"),
        ("note1.txt||Disease_Disorder||C0008031||25||30||8||12", "overlap or are out of order", "increasing"),
    ],
)
def test_bad_line_names_file_line_and_expectation(tmp_path: Path, line: str, problem: str, expected: str) -> None:
    folder = _write_pair(tmp_path, [LINES[0], line])
    with pytest.raises(FormatError) as caught:
        semeval2014t7.read(folder)
    message = str(caught.value)
    assert f"note1.pipe:2:" in message and problem in message and expected in message
    lenient = semeval2014t7.read(folder, lenient=True)
    assert len(lenient.documents[0].mentions) == 1  # the good line is kept
    [skipped] = lenient.skipped
    assert skipped.line == 2 and skipped.file.endswith("note1.pipe") and problem in skipped.reason


def test_pipe_without_txt_is_an_error_naming_the_file(tmp_path: Path) -> None:
    _write_pair(tmp_path, LINES)
    _write_pair(tmp_path, LINES, name="note2")
    (tmp_path / "note2.txt").unlink()
    with pytest.raises(FormatError, match=r"note2\.pipe: annotations without their note text note2\.txt"):
        semeval2014t7.read(tmp_path)
    lenient = semeval2014t7.read(tmp_path, lenient=True)
    assert [d.id for d in lenient.documents] == ["note1"]
    assert [Path(s.file).name for s in lenient.skipped] == ["note2.pipe"]


def test_docname_must_be_the_same_on_every_line(tmp_path: Path) -> None:
    folder = _write_pair(tmp_path, [LINES[0], LINES[1].replace("note1.txt", "other.txt")])
    with pytest.raises(FormatError, match=r"note1\.pipe:2: DocName 'other\.txt' differs"):
        semeval2014t7.read(folder)


def test_unreadable_text_is_a_format_error(tmp_path: Path) -> None:
    folder = _write_pair(tmp_path, LINES)
    (folder / "note1.txt").write_bytes(b"\xff\xfe bad")
    with pytest.raises(FormatError, match=r"note1\.txt: not valid UTF-8"):
        semeval2014t7.read(folder)
