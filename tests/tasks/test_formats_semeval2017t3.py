"""2017 T3 subtask A XML and the ev.py scorer files: real file, samples, structure, bad input."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mtpeft.errors import FormatError
from mtpeft.tasks.formats import semeval2017t3
from mtpeft.testing import annotations_of, require_shared_data

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples" / "semeval2017t3"
REAL = "semeval2017t3/SemEval2016-Task3-CQA-QL-train-part2-subtaskA.xml"


def _comment(cid: str, label: str | None, text: str = "Try the market.") -> str:
    relevance = f' RELC_RELEVANCE2RELQ="{label}"' if label else ""
    return f'<RelComment RELC_ID="{cid}" RELC_DATE="d"{relevance}><RelCText>{text}</RelCText></RelComment>'


def _thread(qid: str, comments: str, body: str = "Where is it?") -> str:
    return (
        f'<Thread THREAD_SEQUENCE="{qid}"><RelQuestion RELQ_ID="{qid}" RELQ_CATEGORY="Shops" RELQ_DATE="d">'
        f"<RelQSubject>Fresh fish</RelQSubject><RelQBody>{body}</RelQBody></RelQuestion>{comments}</Thread>"
    )


def _xml(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "in.xml"
    path.write_text(f'<?xml version="1.0" encoding="utf-8"?>\n<xml>\n{body}\n</xml>\n', encoding="utf-8")
    return path


def test_thread_becomes_document_with_candidates(tmp_path: Path) -> None:
    path = _xml(tmp_path, _thread("Q1_R1", _comment("Q1_R1_C1", "Good") + _comment("Q1_R1_C2", None, "")))
    [doc] = semeval2017t3.read(path).documents
    assert doc.id == "Q1_R1" and doc.text == "Fresh fish\nWhere is it?"
    assert (doc.attributes["subject"], doc.attributes["body"], doc.attributes["category"]) == (
        "Fresh fish", "Where is it?", "Shops"
    )  # fmt: skip
    assert [(c.id, c.label, c.text) for c in doc.candidates] == [
        ("Q1_R1_C1", "Good", "Try the market."), ("Q1_R1_C2", None, "")
    ]  # fmt: skip
    assert doc.candidates[0].attributes == {"RELC_DATE": "d"}


def test_real_file_counts_match_the_xml_and_round_trip(tmp_path: Path) -> None:
    path = require_shared_data(REAL)
    raw = path.read_text(encoding="utf-8")
    result = semeval2017t3.read(path)
    assert not result.skipped
    assert len(result.documents) == len(re.findall(r"<Thread\b", raw))
    assert sum(len(d.candidates) for d in result.documents) == len(re.findall(r"<RelComment\b", raw))
    for label in semeval2017t3.LABELS:
        found = sum(c.label == label for d in result.documents for c in d.candidates)
        assert found == raw.count(f'RELC_RELEVANCE2RELQ="{label}"')
    semeval2017t3.write(result.documents, tmp_path / "out.xml")
    assert annotations_of(semeval2017t3.read(tmp_path / "out.xml").documents) == annotations_of(result.documents)


def test_org_question_wrappers_are_rebuilt(tmp_path: Path) -> None:
    wrapped = "".join(
        f'<OrgQuestion ORGQ_ID="Q{n}"><OrgQSubject>Fish</OrgQSubject><OrgQBody>Which market?</OrgQBody>'
        f'{_thread(f"Q{n}_R{r}", _comment(f"Q{n}_R{r}_C1", "Bad"))}</OrgQuestion>'
        for n, r in ((1, 1), (1, 2), (2, 1))
    )
    documents = semeval2017t3.read(_xml(tmp_path, wrapped)).documents
    assert [d.attributes["OrgQuestion@ORGQ_ID"] for d in documents] == ["Q1", "Q1", "Q2"]
    semeval2017t3.write(documents, tmp_path / "out.xml")
    written = (tmp_path / "out.xml").read_text(encoding="utf-8")
    assert written.count("<OrgQuestion ") == 3 and written.count("<OrgQBody>Which market?</OrgQBody>") == 3
    assert annotations_of(semeval2017t3.read(tmp_path / "out.xml").documents) == annotations_of(documents)


@pytest.mark.parametrize("split", ["train", "dev"])
def test_samples_round_trip(tmp_path: Path, split: str) -> None:
    first = semeval2017t3.read(SAMPLES / split)
    assert first.documents and not first.skipped
    semeval2017t3.write(first.documents, tmp_path / "x.xml")
    assert annotations_of(semeval2017t3.read(tmp_path / "x.xml").documents) == annotations_of(first.documents)


def _ev_py_lines(path: Path) -> list[tuple[str, str, float, str]]:
    """Parse as ev.py's ResFileReader.read_line_trec does: split on whitespace, columns 0, 1, 3, 4."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        tokens = line.strip().split()
        rows.append((tokens[0], tokens[1], float(tokens[3]), tokens[4]))
    return rows


def test_predictions_follow_gold_order_line_by_line(tmp_path: Path) -> None:
    documents = semeval2017t3.read(SAMPLES / "dev").documents
    semeval2017t3.write_relevancy_gold(documents, tmp_path / "gold.relevancy")
    for doc in documents:  # a predictor that scores by text length, labels the longest Good
        for candidate in doc.candidates:
            candidate.score = len(candidate.text) / 100
            candidate.label = "Good" if candidate.score > 0.8 else "Bad"
    semeval2017t3.write_predictions(documents, tmp_path / "pred.txt")
    gold, pred = _ev_py_lines(tmp_path / "gold.relevancy"), _ev_py_lines(tmp_path / "pred.txt")
    assert [row[:2] for row in gold] == [row[:2] for row in pred]  # ev.py stops at the first id mismatch
    assert all(row[3] in ("true", "false") for row in gold + pred)
    read_back = semeval2017t3.read_predictions(tmp_path / "pred.txt")
    for doc in documents:
        candidates = read_back[doc.id]
        assert [c.score for c in candidates] == [c.score for c in doc.candidates]  # repr: no rounding
        best = max(range(len(candidates)), key=lambda i: (candidates[i].score, -i))
        assert candidates[best].attributes["rank"] == "1"
        assert [c.label for c in candidates] == ["true" if c.label == "Good" else "false" for c in doc.candidates]


def test_gold_relevancy_marks_only_good_as_true(tmp_path: Path) -> None:
    documents = semeval2017t3.read(SAMPLES / "train").documents
    semeval2017t3.write_relevancy_gold(documents, tmp_path / "gold.relevancy")
    gold = semeval2017t3.read_relevancy_gold(tmp_path / "gold.relevancy")
    expected = [c.label == "Good" for d in documents for c in d.candidates]
    assert [c.label == "true" for d in documents for c in gold[d.id]] == expected


def test_writing_predictions_without_scores_is_refused(tmp_path: Path) -> None:
    documents = semeval2017t3.read(SAMPLES / "dev").documents
    with pytest.raises(ValueError, match="no score to write"):
        semeval2017t3.write_predictions(documents, tmp_path / "pred.txt")


@pytest.mark.parametrize(
    ("line", "problem", "expected"),
    [
        ("Q1_R1\tQ1_R1_C1\t1\t0.5", "4 fields", "5 whitespace-separated fields"),
        ("Q1_R1\tQ1_R1_C1\t1\thigh\ttrue", "score 'high' is not a number", "a real number"),
        ("Q1_R1\tQ1_R1_C1\t1\t0.5\tGood", "unknown label 'Good'", "'true', 'false'"),
    ],
)
def test_bad_prediction_line_names_file_and_line(tmp_path: Path, line: str, problem: str, expected: str) -> None:
    path = tmp_path / "pred.txt"
    path.write_text("Q1_R1\tQ1_R1_C2\t2\t0.1\tfalse\n" + line + "\n", encoding="utf-8")
    with pytest.raises(FormatError) as caught:
        semeval2017t3.read_predictions(path)
    assert "pred.txt:2:" in str(caught.value) and problem in str(caught.value) and expected in str(caught.value)


@pytest.mark.parametrize(
    ("body", "element", "problem"),
    [
        (_thread("Q1_R1", _comment("Q1_R1_C9", "Great")), "Q1_R1_C9", "unknown RELC_RELEVANCE2RELQ 'Great'"),
        (_thread("Q1_R1", '<RelComment RELC_ID="Q1_R1_C9"/>'), "Q1_R1_C9", "without <RelCText>"),
        (_thread("Q1_R1", "<RelComment><RelCText>x</RelCText></RelComment>"), "Q1_R1", "without RELC_ID"),
        (_thread("Q1_R1", _comment("Q1_R1_C1", "Bad")), "Q1_R1_C1", "duplicate RELC_ID"),
        (_thread("Q1_R1", "<Note/>"), "Q1_R1", "unexpected element <Note>"),
    ],
)
def test_bad_comment_names_element_and_lenient_skips_it(tmp_path: Path, body: str, element: str, problem: str) -> None:
    good = _thread("Q1_R1", _comment("Q1_R1_C1", "Good") + _comment("Q1_R1_C2", "Bad"))
    path = _xml(tmp_path, good.replace("</Thread>", body[body.index("</RelQuestion>") + 14 :]))
    with pytest.raises(FormatError) as caught:
        semeval2017t3.read(path)
    assert f"in.xml ({element})" in str(caught.value) and problem in str(caught.value)
    lenient = semeval2017t3.read(path, lenient=True)
    assert [c.id for c in lenient.documents[0].candidates] == ["Q1_R1_C1", "Q1_R1_C2"]
    assert [(s.element, problem in s.reason) for s in lenient.skipped] == [(element, True)]


def test_thread_without_question_and_malformed_xml(tmp_path: Path) -> None:
    path = _xml(tmp_path, '<Thread THREAD_SEQUENCE="Q7_R1"></Thread>')
    with pytest.raises(FormatError, match=r"in\.xml \(Q7_R1\): 0 <RelQuestion> with RELQ_ID; expected exactly one"):
        semeval2017t3.read(path)
    path.write_text("<xml>\n<Thread>\n</xml>", encoding="utf-8")
    with pytest.raises(FormatError, match=r"in\.xml:3: malformed XML at column \d+"):
        semeval2017t3.read(path)
    assert semeval2017t3.read(path, lenient=True).skipped[0].line == 3


# --- the -with-multiline variant: <RelCBody> and <RelCClean> instead of <RelCText> -------------


def _multiline_twin(plain: Path, out: Path) -> dict[str, str]:
    """Write the -with-multiline variant of ``plain`` (as the organisers do: RelCBody keeps line
    breaks, RelCClean is the plain file's RelCText); return each comment's body text by id."""
    import xml.etree.ElementTree as ElementTree

    tree = ElementTree.parse(plain)
    bodies = {}
    for comment in tree.iter("RelComment"):
        text_element = comment.find("RelCText")
        text = text_element.text or ""
        comment.remove(text_element)
        body = text.replace(". ", ".\n").replace("? ", "?\n\n")
        ElementTree.SubElement(comment, "RelCBody").text = body
        ElementTree.SubElement(comment, "RelCClean").text = text
        bodies[comment.get("RELC_ID")] = body
    tree.write(out, encoding="utf-8", xml_declaration=True)
    return bodies


def test_the_multiline_variant_of_the_real_file_reads_as_the_plain_one(tmp_path: Path) -> None:
    plain = require_shared_data(REAL)
    multiline = tmp_path / "SemEval2016-Task3-CQA-QL-train-part2-subtaskA-with-multiline.xml"
    bodies = _multiline_twin(plain, multiline)
    assert "<RelCText>" not in multiline.read_text(encoding="utf-8")
    expected = semeval2017t3.read(plain)
    clean = semeval2017t3.read(multiline)
    assert not clean.skipped and annotations_of(clean.documents) == annotations_of(expected.documents)
    body = semeval2017t3.read(multiline, comment_text="body").documents
    assert [c.text for d in body for c in d.candidates] == [bodies[c.id] for d in body for c in d.candidates]
    assert any("\n" in text for text in bodies.values())  # the body variant really differs
    assert [(c.id, c.label) for d in body for c in d.candidates] == [
        (c.id, c.label) for d in expected.documents for c in d.candidates
    ]


def test_the_task_option_reads_the_body(tmp_path: Path) -> None:
    from mtpeft.errors import ConfigError
    from mtpeft.tasks.registry import get_task

    comment = ('<RelComment RELC_ID="Q1_R1_C1" RELC_RELEVANCE2RELQ="Good"><RelCBody>Try the\\nmarket.</RelCBody>'
               "<RelCClean>Try the market.</RelCClean></RelComment>").replace("\\n", "\n")
    path = _xml(tmp_path, _thread("Q1_R1", comment))
    assert get_task("semeval2017t3").read(path).documents[0].candidates[0].text == "Try the market."
    assert get_task("semeval2017t3", comment_text="body").read(path).documents[0].candidates[0].text == "Try the\nmarket."
    with pytest.raises(ConfigError, match="comment_text 'raw'; valid choices: clean, body"):
        get_task("semeval2017t3", comment_text="raw")


@pytest.mark.parametrize(
    ("inner", "message"),
    [
        ("<Other>x</Other>", "without <RelCText>, <RelCBody> or <RelCClean>"),
        ("<RelCBody>x</RelCBody>", "without <RelCClean>"),
    ],
)
def test_a_comment_without_its_text_is_an_element_error(tmp_path: Path, inner: str, message: str) -> None:
    path = _xml(tmp_path, _thread("Q1_R1", f'<RelComment RELC_ID="Q1_R1_C1">{inner}</RelComment>'))
    with pytest.raises(FormatError, match=message) as error:
        semeval2017t3.read(path)
    assert "Q1_R1_C1" in str(error.value) and str(path) in str(error.value)
    assert len(semeval2017t3.read(path, lenient=True).skipped) == 1
