"""2016 T12 Anafora XML: the real gold notes, the samples, anafora's own scorer, bad input."""

from __future__ import annotations

import re
from pathlib import Path

import anafora.evaluate
import pytest

from mtpeft.errors import FormatError
from mtpeft.tasks.formats import semeval2016t12
from mtpeft.testing import annotations_of, require_shared_data

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples" / "semeval2016t12"
TEXT = "Seen today. Biopsy in May showed a mass.\n"
ENTITY = (
    "<entity><id>{id}</id><span>{span}</span><type>{type}</type><parentsType>TemporalEntities</parentsType>"
    "<properties>{props}</properties></entity>"
)
EVENT_PROPS = "<DocTimeRel>BEFORE</DocTimeRel><Polarity>POS</Polarity>"
RELATION = (
    "<relation><id>{id}</id><type>TLINK</type><parentsType>TemporalRelations</parentsType>"
    "<properties><Source>{source}</Source><Type>{label}</Type><Target>{target}</Target></properties></relation>"
)
GOOD = [
    ENTITY.format(id="1@e@D1@gold", span="12,18", type="EVENT", props=EVENT_PROPS),
    ENTITY.format(id="2@e@D1@gold", span="22,25", type="TIMEX3", props="<Class>DATE</Class>"),
    ENTITY.format(id="3@e@D1@gold", span="35,39", type="EVENT", props=EVENT_PROPS),
    RELATION.format(id="1@r@D1@gold", source="2@e@D1@gold", label="CONTAINS", target="1@e@D1@gold"),
]


def _write_doc(root: Path, annotations: list[str], *, text: str | None = TEXT, raw: str | None = None) -> Path:
    folder = root / "D1"
    folder.mkdir(parents=True, exist_ok=True)
    body = raw or "<data><annotations>" + "".join(annotations) + "</annotations></data>"
    (folder / f"D1.{semeval2016t12.XML_SUFFIX}").write_text(body, encoding="utf-8")
    if text is not None:
        (folder / "D1").write_text(text, encoding="utf-8")
    return root


def test_reads_entities_relations_and_text(tmp_path: Path) -> None:
    doc = semeval2016t12.read(_write_doc(tmp_path, GOOD)).documents[0]
    assert doc.id == "D1" and doc.text == TEXT
    assert [(doc.text[m.start : m.end], m.label) for m in doc.mentions] == [
        ("Biopsy", "EVENT"), ("May", "TIMEX3"), ("mass", "EVENT")
    ]  # fmt: skip
    [relation] = doc.relations
    assert (relation.label, relation.source, relation.target) == ("CONTAINS", "2@e@D1@gold", "1@e@D1@gold")
    assert relation.attributes == {"@type": "TLINK", "@parentsType": "TemporalRelations"}
    assert doc.mentions[1].attributes == {"Class": "DATE", "@parentsType": "TemporalEntities"}


def test_real_gold_notes_round_trip_exactly(tmp_path: Path) -> None:
    gold = require_shared_data("semeval2016t12")
    files = sorted(gold.glob("*/*.xml"))
    result = semeval2016t12.read(gold)
    assert len(result.documents) == len(files) == 8 and not result.skipped
    assert all(doc.text is None for doc in result.documents)  # the licensed notes are absent
    for doc, file in zip(result.documents, files):  # independent count of the XML elements
        raw = file.read_text(encoding="utf-8")
        assert len(doc.mentions) == len(re.findall(r"<entity>", raw))
        assert len(doc.relations) == len(re.findall(r"<relation>", raw))
        assert sum(r.label == "CONTAINS" for r in doc.relations) == len(re.findall(r"<Type>CONTAINS</Type>", raw))
    semeval2016t12.write(result.documents, tmp_path)
    again = semeval2016t12.read(tmp_path)
    assert annotations_of(again.documents) == annotations_of(result.documents)
    for before, after in zip(result.documents, again.documents):  # ids too: relations point at them
        assert [m.id for m in before.mentions] == [m.id for m in after.mentions]
        assert [(r.id, r.source, r.target) for r in before.relations] == [
            (r.id, r.source, r.target) for r in after.relations
        ]


def test_anafora_scorer_finds_the_written_files_identical(tmp_path: Path) -> None:
    gold = require_shared_data("semeval2016t12")
    semeval2016t12.write(semeval2016t12.read(gold).documents, tmp_path, xml_suffix="Temporal-Relation.system.xml")
    scored = 0
    for _, named_scores in anafora.evaluate.score_dirs(str(gold), str(tmp_path)):
        for name, scores in named_scores.items():
            assert scores.reference == scores.predicted == scores.correct, name
            scored += scores.reference
    assert scored > 0


@pytest.mark.parametrize("split", ["train", "dev"])
def test_samples_have_text_and_round_trip(tmp_path: Path, split: str) -> None:
    first = semeval2016t12.read(SAMPLES / split)
    assert first.documents and not first.skipped
    assert all(doc.text is not None for doc in first.documents)
    semeval2016t12.write(first.documents, tmp_path)
    assert annotations_of(semeval2016t12.read(tmp_path).documents) == annotations_of(first.documents)
    for doc in first.documents:
        assert (tmp_path / doc.id / doc.id).read_text(encoding="utf-8") == doc.text


def test_more_than_one_xml_per_folder_is_an_error(tmp_path: Path) -> None:
    _write_doc(tmp_path, GOOD)
    (tmp_path / "D1" / "D1.other.xml").write_text("<data/>", encoding="utf-8")
    with pytest.raises(FormatError, match=r"D1: 2 XML files .*exactly one file matching"):
        semeval2016t12.read(tmp_path)
    only_gold = semeval2016t12.read(tmp_path, xml_name_regex=r"gold[.]completed[.]xml$")
    assert len(only_gold.documents[0].mentions) == 3


@pytest.mark.parametrize(
    ("bad", "element", "problem", "expected"),
    [
        (ENTITY.format(id="9@e", span="30,12", type="EVENT", props=""), "9@e", "ends before it starts", "start < end"),
        (ENTITY.format(id="9@e", span="30,99", type="EVENT", props=""), "9@e", "past the end of the text", "end <="),
        (ENTITY.format(id="9@e", span="3,x", type="EVENT", props=""), "9@e", "<span> is '3,x'", "start,end"),
        (ENTITY.format(id="9@e", span="3,5", type="DRUG", props=""), "9@e", "unknown entity type 'DRUG'", "'EVENT'"),
        (ENTITY.format(id="9@e", span="3,5", type="EVENT", props="<DocTimeRel>LATER</DocTimeRel>"), "9@e",
         "unknown DocTimeRel 'LATER'", "'BEFORE/OVERLAP'"),
        (RELATION.format(id="9@r", source="2@e@D1@gold", label="CONTAINS", target="7@e"), "9@r",
         "refers to '7@e'", "ids of <entity>"),
        (RELATION.format(id="9@r", source="2@e@D1@gold", label="NEAR", target="1@e@D1@gold"), "9@r",
         "unknown TLINK Type 'NEAR'", "'CONTAINS'"),
        (ENTITY.format(id="1@e@D1@gold", span="3,5", type="EVENT", props=""), "1@e@D1@gold",
         "duplicate annotation id", "unique ids"),
        ("<note><id>9@x</id></note>", "9@x", "element <note>", "<entity> or <relation>"),
    ],
)  # fmt: skip
def test_bad_annotation_names_file_and_element(
    tmp_path: Path, bad: str, element: str, problem: str, expected: str
) -> None:
    root = _write_doc(tmp_path, [*GOOD, bad])
    with pytest.raises(FormatError) as caught:
        semeval2016t12.read(root)
    message = str(caught.value)
    assert f".xml ({element})" in message and problem in message and expected in message
    lenient = semeval2016t12.read(root, lenient=True)
    doc = lenient.documents[0]
    assert (len(doc.mentions), len(doc.relations)) == (3, 1)  # the good annotations are all kept
    assert [(s.element, problem in s.reason) for s in lenient.skipped] == [(element, True)]


def test_relations_to_a_skipped_entity_are_skipped_too(tmp_path: Path) -> None:
    bad_entity = GOOD[1].replace("<type>TIMEX3</type>", "<type>CLOCK</type>")
    result = semeval2016t12.read(_write_doc(tmp_path, [GOOD[0], bad_entity, *GOOD[2:]]), lenient=True)
    assert [s.element for s in result.skipped] == ["2@e@D1@gold", "1@r@D1@gold"]
    assert result.documents[0].relations == []


def test_malformed_xml_gives_line_and_column(tmp_path: Path) -> None:
    root = _write_doc(tmp_path, [], raw="<data>\n<annotations>\n<entity></annotations></data>")
    with pytest.raises(FormatError, match=r"completed\.xml:3: malformed XML at column \d+: mismatched tag"):
        semeval2016t12.read(root)
    lenient = semeval2016t12.read(root, lenient=True)
    assert lenient.documents == [] and lenient.skipped[0].line == 3


def test_missing_folder_is_a_format_error(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="no Anafora XML file found"):
        semeval2016t12.read(tmp_path)
