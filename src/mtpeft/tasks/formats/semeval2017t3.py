"""SemEval-2016/2017 Task 3, subtask A (Qatar Living question-comment ranking): XML + scorer files.

XML: an ``<xml>`` root holding ``<Thread>`` elements, or ``<OrgQuestion>`` elements that wrap
them (the full files). A thread has one ``<RelQuestion RELQ_ID=...>`` (children ``RelQSubject``,
``RelQBody``) and its ``<RelComment RELC_ID=... RELC_RELEVANCE2RELQ=...>`` (child ``RelCText``).

One :class:`Document` per thread:

* ``id`` = RELQ_ID; ``text`` = subject + ``"\\n"`` + body (the convention of this project: the
  model reads the question as one string);
* ``attributes``: ``subject``, ``body``, ``category`` (RELQ_CATEGORY), the other XML attributes
  as ``"RelQuestion@NAME"`` / ``"Thread@NAME"``, and for wrapped threads ``"OrgQuestion@NAME"``,
  ``OrgQSubject``, ``OrgQBody`` and ``"@orgq_index"`` (which ``<OrgQuestion>`` of the file held it),
  so that :func:`write` rebuilds the same structure;
* ``candidates`` = the comments in file order: ``id`` = RELC_ID, ``label`` = RELC_RELEVANCE2RELQ
  (Good | PotentiallyUseful | Bad, ``None`` when the attribute is absent, as in unlabelled test
  files), ``text`` = RelCText, ``attributes`` = the other XML attributes.

The organisers also distribute every file as a ``-with-multiline`` variant, in which a comment
has no ``<RelCText>`` but ``<RelCBody>`` (the raw text, line breaks kept) and ``<RelCClean>`` (the
text cleaned to one line, equal to the plain file's ``RelCText``). :func:`read` takes both
variants: ``comment_text="clean"`` (the default) reads ``<RelCClean>``, so a multiline file gives
the same documents as its plain twin; ``comment_text="body"`` reads ``<RelCBody>``. A comment
with neither ``<RelCText>`` nor the multiline pair is a :class:`FormatError` naming the file and
comment. :func:`write` always writes the plain variant (``<RelCText>``).

Scorer files (``ev.py``): one line per comment, whitespace-separated ``qid cid rank score label``
with label ``true``/``false``. ``ev.py`` pairs the gold and prediction files LINE BY LINE and
stops at the first id mismatch, so predictions must follow the gold order: :func:`write_predictions`
keeps the documents' candidate order. It reads only qid, cid, score and label; the rank column
is informative. In a gold ``.relevancy`` file the label is ``true`` for Good only.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Iterable
from pathlib import Path

from mtpeft.errors import FormatError, Location
from mtpeft.tasks.document import Candidate, Document, ReadResult
from mtpeft.tasks.formats._common import Collector, check_choice, parse_xml, read_text_exact, write_text_exact

LABELS = ("Good", "PotentiallyUseful", "Bad")
RELEVANT = "Good"
"""The only label that counts as relevant (``true``) for the official scorer."""
COMMENT_TEXTS = {"clean": "RelCClean", "body": "RelCBody"}
"""``comment_text`` choices of :func:`read`: the element a ``-with-multiline`` comment is read from."""


def read(path: str | Path, *, lenient: bool = False, comment_text: str = "clean") -> ReadResult:
    """Read one subtask A XML file (or every ``.xml`` file of a folder, sorted by name).

    Plain and ``-with-multiline`` files alike; ``comment_text`` (``clean`` or ``body``) picks the
    element a multiline comment is read from (see the module docstring). Strict by default;
    ``lenient=True`` skips a bad file, thread or comment and lists it in ``ReadResult.skipped``.
    """
    if comment_text not in COMMENT_TEXTS:
        raise ValueError(f"comment_text {comment_text!r}; valid choices: {', '.join(COMMENT_TEXTS)}")
    root_path = Path(path)
    files = sorted(root_path.glob("*.xml")) if root_path.is_dir() else [root_path]
    if not files:
        raise FormatError(Location(str(root_path)), "no .xml file in the folder", "a subtask A XML file")
    collector = Collector(lenient)
    documents: list[Document] = []
    seen: set[str] = set()
    for file in files:
        with collector.record():
            for doc in _read_file(file, collector, COMMENT_TEXTS[comment_text]):
                if doc.id in seen:
                    raise FormatError(Location(str(file), element=doc.id), "duplicate RELQ_ID", "unique thread ids")
                seen.add(doc.id)
                documents.append(doc)
    return ReadResult(documents=documents, skipped=collector.skipped)


def _read_file(file: Path, collector: Collector, multiline_tag: str) -> list[Document]:
    root = parse_xml(file)
    documents = []
    orgq_index = 0
    for child in root:
        with collector.record():
            if child.tag == "Thread":
                documents.append(_read_thread(child, {}, file, collector, multiline_tag))
            elif child.tag == "OrgQuestion":
                wrapper = {f"OrgQuestion@{k}": v for k, v in child.attrib.items()}
                wrapper["@orgq_index"] = str(orgq_index)
                orgq_index += 1
                for part in child:
                    if part.tag in ("OrgQSubject", "OrgQBody"):
                        wrapper[part.tag] = part.text or ""
                for part in child:
                    with collector.record():
                        if part.tag == "Thread":
                            documents.append(_read_thread(part, wrapper, file, collector, multiline_tag))
                        elif part.tag not in ("OrgQSubject", "OrgQBody"):
                            raise _unexpected(part, file, child.get("ORGQ_ID"), "OrgQSubject, OrgQBody or Thread")
            else:
                raise _unexpected(child, file, None, "Thread or OrgQuestion")
    return documents


def _unexpected(element: ElementTree.Element, file: Path, where: str | None, expected: str) -> FormatError:
    return FormatError(Location(str(file), element=where), f"unexpected element <{element.tag}>", expected)


def _read_thread(
    thread: ElementTree.Element, wrapper: dict[str, str], file: Path, collector: Collector, multiline_tag: str
) -> Document:
    where = thread.get("THREAD_SEQUENCE")
    questions = thread.findall("RelQuestion")
    if len(questions) != 1 or not questions[0].get("RELQ_ID"):
        raise FormatError(
            Location(str(file), element=where), f"{len(questions)} <RelQuestion> with RELQ_ID", "exactly one"
        )
    question = questions[0]
    qid = question.attrib["RELQ_ID"]
    subject, body = question.findtext("RelQSubject"), question.findtext("RelQBody")
    if subject is None or body is None:
        raise FormatError(Location(str(file), element=qid), "no <RelQSubject> or <RelQBody>", "both in <RelQuestion>")
    attributes = {"subject": subject, "body": body}
    if "RELQ_CATEGORY" in question.attrib:
        attributes["category"] = question.attrib["RELQ_CATEGORY"]
    attributes.update({f"Thread@{k}": v for k, v in thread.attrib.items()})
    attributes.update(
        {f"RelQuestion@{k}": v for k, v in question.attrib.items() if k not in ("RELQ_ID", "RELQ_CATEGORY")}
    )
    attributes.update(wrapper)
    doc = Document(id=qid, text=subject + "\n" + body, attributes=attributes, source=str(file))
    seen: set[str] = set()
    for element in thread:
        with collector.record():
            if element.tag == "RelComment":
                candidate = _read_comment(element, file, qid, multiline_tag)
                if candidate.id in seen:
                    raise FormatError(Location(str(file), element=candidate.id), "duplicate RELC_ID", "unique ids")
                seen.add(candidate.id)
                doc.candidates.append(candidate)
            elif element.tag != "RelQuestion":
                raise _unexpected(element, file, qid, "RelQuestion or RelComment")
    return doc


def _read_comment(comment: ElementTree.Element, file: Path, qid: str, multiline_tag: str) -> Candidate:
    cid = comment.get("RELC_ID")
    if not cid:
        raise FormatError(Location(str(file), element=qid), "<RelComment> without RELC_ID", "a RELC_ID attribute")
    loc = Location(str(file), element=cid)
    text = comment.findtext("RelCText")
    if text is None:
        text = _multiline_text(comment, loc, multiline_tag)
    label = comment.get("RELC_RELEVANCE2RELQ")
    if label is not None:
        check_choice(label, LABELS, loc, "RELC_RELEVANCE2RELQ")
    others = {k: v for k, v in comment.attrib.items() if k not in ("RELC_ID", "RELC_RELEVANCE2RELQ")}
    return Candidate(id=cid, text=text, label=label, attributes=others)


def _multiline_text(comment: ElementTree.Element, loc: Location, tag: str) -> str:
    """The text of a ``-with-multiline`` comment: its ``tag`` child (``RelCClean`` or ``RelCBody``)."""
    present = [t for t in ("RelCBody", "RelCClean") if comment.find(t) is not None]
    if not present:
        expected = "a <RelCText> child (plain files) or <RelCBody> and <RelCClean> (-with-multiline files)"
        raise FormatError(loc, "<RelComment> without <RelCText>, <RelCBody> or <RelCClean>", expected)
    if tag not in present:
        raise FormatError(loc, f"a -with-multiline <RelComment> without <{tag}> (it has <{present[0]}>)",
                          f"<{tag}>, the element comment_text asks for")
    return comment.findtext(tag) or ""


def write(documents: Iterable[Document], path: str | Path) -> None:
    """Write one subtask A XML file; wrapped threads go back into their ``<OrgQuestion>``."""
    root = ElementTree.Element("xml")
    current_index: str | None = None
    parent = root
    for doc in documents:
        index = doc.attributes.get("@orgq_index")
        if index is None:
            parent = root
        elif index != current_index:
            parent = ElementTree.SubElement(root, "OrgQuestion", _prefixed(doc.attributes, "OrgQuestion@"))
            for tag in ("OrgQSubject", "OrgQBody"):
                if tag in doc.attributes:
                    ElementTree.SubElement(parent, tag).text = doc.attributes[tag]
        current_index = index
        _write_thread(parent, doc)
    ElementTree.indent(root, space="\t")
    body = ElementTree.tostring(root, encoding="unicode")
    write_text_exact(Path(path), '<?xml version="1.0" encoding="utf-8"?>\n' + body + "\n")


def _prefixed(attributes: dict[str, str], prefix: str) -> dict[str, str]:
    return {k[len(prefix) :]: v for k, v in attributes.items() if k.startswith(prefix)}


def _write_thread(parent: ElementTree.Element, doc: Document) -> None:
    thread = ElementTree.SubElement(parent, "Thread", _prefixed(doc.attributes, "Thread@"))
    question_attrib = {"RELQ_ID": doc.id}
    if "category" in doc.attributes:
        question_attrib["RELQ_CATEGORY"] = doc.attributes["category"]
    question_attrib.update(_prefixed(doc.attributes, "RelQuestion@"))
    question = ElementTree.SubElement(thread, "RelQuestion", question_attrib)
    subject, body = _subject_body(doc)
    ElementTree.SubElement(question, "RelQSubject").text = subject
    ElementTree.SubElement(question, "RelQBody").text = body
    for candidate in doc.candidates:
        attrib = {"RELC_ID": candidate.id, **candidate.attributes}
        if candidate.label is not None:
            attrib["RELC_RELEVANCE2RELQ"] = candidate.label
        comment = ElementTree.SubElement(thread, "RelComment", attrib)
        ElementTree.SubElement(comment, "RelCText").text = candidate.text


def _subject_body(doc: Document) -> tuple[str, str]:
    if "subject" in doc.attributes and "body" in doc.attributes:
        return doc.attributes["subject"], doc.attributes["body"]
    subject, _, body = (doc.text or "").partition("\n")  # the read convention, inverted
    return subject, body


def _scorer_lines(documents: Iterable[Document], scores_of: Callable[[Document], list[float]]) -> list[str]:
    lines = []
    for doc in documents:
        scores = scores_of(doc)
        by_score = sorted(range(len(scores)), key=lambda i: -scores[i])  # stable: ties keep thread order
        rank_of = {index: rank for rank, index in enumerate(by_score, start=1)}
        for index, candidate in enumerate(doc.candidates):
            if candidate.label is None:
                raise ValueError(f"question {doc.id}, comment {candidate.id}: no label to write")
            relevant = "true" if candidate.label == RELEVANT else "false"
            lines.append(f"{doc.id}\t{candidate.id}\t{rank_of[index]}\t{scores[index]!r}\t{relevant}\n")
    return lines


def _predicted_scores(doc: Document) -> list[float]:
    missing = [c.id for c in doc.candidates if c.score is None]
    if missing:
        raise ValueError(f"question {doc.id}: comments {missing} have no score to write")
    return [float(c.score) for c in doc.candidates]  # type: ignore[arg-type]


def _chronological_scores(doc: Document) -> list[float]:
    return [1.0 / position for position in range(1, len(doc.candidates) + 1)]


def write_predictions(documents: Iterable[Document], path: str | Path) -> None:
    """Write ``qid\\tcid\\trank\\tscore\\ttrue|false`` lines for ``ev.py``, in the documents' order.

    Every candidate needs a ``score`` (higher = more relevant) and a predicted ``label``
    (``true`` when it is ``Good``); ``rank`` is 1 for the highest score of its question. Scores
    are written with ``repr`` so that no tie is created by rounding.
    """
    write_text_exact(Path(path), "".join(_scorer_lines(documents, _predicted_scores)))


def write_relevancy_gold(documents: Iterable[Document], path: str | Path) -> None:
    """Write the gold ``.relevancy`` file for ``ev.py`` from labelled documents.

    Label ``true`` for Good, else ``false``; rank = position in the thread and score =
    1/position, so the scorer's IR baseline column ranks comments chronologically.
    """
    write_text_exact(Path(path), "".join(_scorer_lines(documents, _chronological_scores)))


def read_predictions(path: str | Path) -> dict[str, list[Candidate]]:
    """Read an ``ev.py`` file: ``{qid: [Candidate(id=cid, label="true"|"false", score, rank)]}``.

    Candidates keep the file order; ``attributes["rank"]`` holds the rank column as written.
    A line with another field count, a score that is not a number or a label other than
    ``true``/``false`` raises ``FormatError`` naming the file and line.
    """
    file = Path(path)
    result: dict[str, list[Candidate]] = {}
    seen: set[tuple[str, str]] = set()
    for number, line in enumerate(read_text_exact(file).splitlines(), start=1):
        if not line.strip():
            continue
        loc = Location(str(file), line=number)
        fields = line.split()
        if len(fields) != 5:
            expected = "5 whitespace-separated fields: qid cid rank score true|false"
            raise FormatError(loc, f"{len(fields)} fields", expected)
        qid, cid, rank, score_text, label = fields
        try:
            score = float(score_text)
        except ValueError:
            raise FormatError(loc, f"score {score_text!r} is not a number", "a real number") from None
        check_choice(label, ("true", "false"), loc, "label")
        if (qid, cid) in seen:
            raise FormatError(loc, f"a second line for {qid} {cid}", "one line per comment")
        seen.add((qid, cid))
        candidate = Candidate(id=cid, text="", label=label, score=score, attributes={"rank": rank})
        result.setdefault(qid, []).append(candidate)
    return result


read_relevancy_gold = read_predictions
"""Gold ``.relevancy`` files have the same five columns as predictions."""
