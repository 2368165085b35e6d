"""SemEval-2016 Task 12 (Clinical TempEval, THYME): Anafora XML, one folder per document.

Layout as distributed (and as ``anafora.evaluate`` expects)::

    ROOT/ID001_clinic_001/ID001_clinic_001                      (note text, licensed, may be absent)
    ROOT/ID001_clinic_001/ID001_clinic_001.Temporal-Relation.gold.completed.xml

Mapping (the ``anaforatools`` package walks the folders, parses the annotations and writes them):

* ``<entity>`` -> :class:`Mention`: ``id`` = the Anafora id (``1@e@DOC@gold``), ``label`` = its
  type (EVENT, TIMEX3, DOCTIME, SECTIONTIME), ``spans`` from ``<span>`` (``s1,e1;s2,e2``),
  ``attributes`` = its properties (``DocTimeRel``, ``Class``, ...) plus ``"@parentsType"``.
* ``<relation>`` -> :class:`Relation`: ``label`` = its ``Type`` property (CONTAINS, BEFORE, ...),
  ``source``/``target`` = the entity ids of ``Source``/``Target``, ``attributes`` = its other
  properties plus ``"@type"`` (the Anafora relation type, TLINK or ALINK) and ``"@parentsType"``.
  Keys starting with ``@`` are Anafora element fields, never properties (XML names cannot start
  with ``@``). Relation heads keep ``attributes["@type"] == "TLINK"``.
* ``Document.text`` is the note, or ``None`` when the text file is absent (spans then cannot be
  checked against it, and the document can be scored but not encoded).
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterable
from pathlib import Path

import anafora

from mtpeft.errors import FormatError, Location
from mtpeft.tasks.document import Document, Mention, ReadResult, Relation
from mtpeft.tasks.formats._common import (
    Collector,
    check_choice,
    check_spans,
    parse_xml,
    read_text_exact,
    write_text_exact,
)

XML_SUFFIX = "Temporal-Relation.gold.completed.xml"
ANAFORA_TYPE = "@type"
PARENTS_TYPE = "@parentsType"
ENTITY_TYPES = ("EVENT", "TIMEX3", "DOCTIME", "SECTIONTIME")
DOC_TIME_RELS = ("BEFORE", "OVERLAP", "BEFORE/OVERLAP", "AFTER")
RELATION_TYPES: dict[str, tuple[str, ...]] = {
    "TLINK": ("CONTAINS", "BEFORE", "OVERLAP", "BEGINS-ON", "ENDS-ON", "NOTED-ON"),
    "ALINK": ("INITIATES", "CONTINUES", "TERMINATES", "REINITIATES"),
}
"""Anafora relation types and the values of their ``Type`` property (THYME guidelines)."""
_DEFAULT_PARENTS = {"entity": "TemporalEntities", "relation": "TemporalRelations"}


def read(path: str | Path, *, lenient: bool = False, xml_name_regex: str = r"[.]xml$") -> ReadResult:
    """Read a folder of per-document Anafora folders, one document folder, or one XML file.

    Each document folder must hold exactly one XML file matching ``xml_name_regex``. Strict by
    default; ``lenient=True`` skips a bad file, entity or relation (and the relations that point
    to a skipped entity), listing each in ``ReadResult.skipped``.
    """
    collector = Collector(lenient)
    documents = []
    for folder, xml_names in _document_folders(Path(path), xml_name_regex):
        with collector.record():
            if len(xml_names) != 1:
                raise FormatError(
                    Location(str(folder)), f"{len(xml_names)} XML files {sorted(xml_names)}",
                    f"exactly one file matching {xml_name_regex!r} per document folder",
                )
            documents.append(_read_document(folder, folder / xml_names[0], collector))
    return ReadResult(documents=documents, skipped=collector.skipped)


def _document_folders(path: Path, xml_name_regex: str) -> list[tuple[Path, list[str]]]:
    if path.is_file():
        return [(path.parent, [path.name])]
    if not path.is_dir():
        raise FormatError(Location(str(path)), "no such file or folder", "a folder of Anafora document folders")
    found = [(path / sub_dir, sorted(xml_names)) for sub_dir, _, xml_names in anafora.walk(str(path), xml_name_regex)]
    if not found:
        raise FormatError(Location(str(path)), "no Anafora XML file found", f"files matching {xml_name_regex!r}")
    return sorted(found)


def _read_document(folder: Path, xml_path: Path, collector: Collector) -> Document:
    doc_id = folder.name
    text_path = folder / doc_id
    text = read_text_exact(text_path) if text_path.is_file() else None
    root = parse_xml(xml_path)
    doc = Document(id=doc_id, text=text, source=str(xml_path), attributes=_header(root))
    annotations = root.find("annotations")
    elements = [] if annotations is None else list(annotations)
    valid = _valid_elements(elements, str(xml_path), collector)
    if annotations is not None:  # anafora rejects what _valid_elements skipped: hand it the rest
        for element in elements:
            if id(element) not in valid:
                annotations.remove(element)
    data = anafora.AnaforaData(root)
    text_length = None if text is None else len(text)
    for annotation in data.annotations:
        if isinstance(annotation, anafora.AnaforaEntity):
            with collector.record():
                loc = Location(str(xml_path), element=annotation.id)
                doc.mentions.append(_to_mention(annotation, text_length, loc))
    entity_ids = {mention.id for mention in doc.mentions}
    for annotation in data.annotations:
        if isinstance(annotation, anafora.AnaforaRelation):
            with collector.record():
                loc = Location(str(xml_path), element=annotation.id)
                doc.relations.append(_to_relation(annotation, entity_ids, loc))
    return doc


def _header(root: ElementTree.Element) -> dict[str, str]:
    """``<info>`` children and ``<schema>`` as document attributes, so the writer keeps them."""
    header = {}
    info = root.find("info")
    for child in [] if info is None else info:
        header[f"info.{child.tag}"] = child.text or ""
    schema = root.find("schema")
    if schema is not None:
        header["schema"] = schema.text or ""
        header.update({f"schema@{name}": value for name, value in schema.attrib.items()})
    return header


def _valid_elements(elements: list[ElementTree.Element], file: str, collector: Collector) -> set[int]:
    """``id()`` of the elements anafora can load: <entity>/<relation> with a unique <id>."""
    valid, seen = set(), set()
    for number, element in enumerate(elements):
        with collector.record() as record:
            ident = element.findtext("id")
            loc = Location(file, element=ident or f"annotation #{number}")
            if element.tag not in _DEFAULT_PARENTS:
                raise FormatError(loc, f"element <{element.tag}>", "<entity> or <relation>")
            if not ident:
                raise FormatError(loc, f"<{element.tag}> without <id>", "an <id> in every annotation")
            if ident in seen:
                raise FormatError(loc, "duplicate annotation id", "unique ids")
            seen.add(ident)
        if not record.failed:
            valid.add(id(element))
    return valid


def _properties(annotation: anafora.AnaforaAnnotation) -> dict[str, str]:
    raw = {}
    for name, value in annotation.properties.items():
        if isinstance(value, anafora.AnaforaAnnotation):
            value = value.id  # anafora resolves id references; keep the id string
        raw[name] = value or ""
    return raw


def _to_mention(entity: anafora.AnaforaEntity, text_length: int | None, loc: Location) -> Mention:
    try:
        spans = entity.spans
    except ValueError:
        spans = None
    if not spans or any(len(span) != 2 for span in spans):
        raise FormatError(loc, f"<span> is {entity.xml.findtext('span')!r}", "start,end[;start,end...] integers")
    spans = check_spans(spans, text_length, loc, ordered=False)
    label = check_choice(entity.type or "", ENTITY_TYPES, loc, "entity type")
    attributes = _properties(entity)
    if "DocTimeRel" in attributes:
        check_choice(attributes["DocTimeRel"], DOC_TIME_RELS, loc, "DocTimeRel")
    attributes[PARENTS_TYPE] = entity.parents_type or ""
    return Mention(id=entity.id, spans=spans, label=label, attributes=attributes)


def _to_relation(relation: anafora.AnaforaRelation, entity_ids: set[str], loc: Location) -> Relation:
    kind = check_choice(relation.type or "", RELATION_TYPES, loc, "relation type")
    attributes = _properties(relation)
    for name in ("Source", "Type", "Target"):
        if not attributes.get(name):
            raise FormatError(loc, f"{kind} without a {name} property", "Source, Type and Target properties")
    label = check_choice(attributes.pop("Type"), RELATION_TYPES[kind], loc, f"{kind} Type")
    source, target = attributes.pop("Source"), attributes.pop("Target")
    for end in (source, target):
        if end not in entity_ids:
            raise FormatError(loc, f"refers to {end!r}, not an entity of this file", "ids of <entity> elements")
    attributes[ANAFORA_TYPE] = kind
    attributes[PARENTS_TYPE] = relation.parents_type or ""
    return Relation(id=relation.id, label=label, source=source, target=target, attributes=attributes)


def write(documents: Iterable[Document], path: str | Path, *, xml_suffix: str = XML_SUFFIX) -> None:
    """Write ``path/DOC/DOC.<xml_suffix>`` (and the text file ``path/DOC/DOC`` when known).

    Use e.g. ``xml_suffix="Temporal-Relation.system.completed.xml"`` for predictions; the output
    is what ``python -m anafora.evaluate -r GOLD -p OUT`` reads.
    """
    for doc in documents:
        folder = Path(path) / doc.id
        folder.mkdir(parents=True, exist_ok=True)
        data = _to_anafora(doc)
        data.indent()
        data.to_file(os.fspath(folder / f"{doc.id}.{xml_suffix}"))
        if doc.text is not None:
            write_text_exact(folder / doc.id, doc.text)


def _to_anafora(doc: Document) -> anafora.AnaforaData:
    data = anafora.AnaforaData()
    info_items = {k[len("info.") :]: v for k, v in doc.attributes.items() if k.startswith("info.")}
    if info_items:
        info = ElementTree.SubElement(data.xml, "info")
        for tag, value in info_items.items():
            ElementTree.SubElement(info, tag).text = value
    if "schema" in doc.attributes:
        schema = ElementTree.SubElement(data.xml, "schema")
        schema.text = doc.attributes["schema"]
        schema.attrib.update({k[len("schema@") :]: v for k, v in doc.attributes.items() if k.startswith("schema@")})
    for mention in doc.mentions:
        entity = anafora.AnaforaEntity()
        _fill(entity, mention.id, mention.label, mention.attributes, "entity", spans=tuple(mention.spans))
        data.annotations.append(entity)
        _set_properties(entity, mention.attributes)
    for relation in doc.relations:
        element = anafora.AnaforaRelation()
        kind = relation.attributes.get(ANAFORA_TYPE, "TLINK")
        _fill(element, relation.id, kind, relation.attributes, "relation")
        data.annotations.append(element)
        core = {"Source": relation.source, "Type": relation.label, "Target": relation.target}
        _set_properties(element, {**core, **relation.attributes})
    return data


def _fill(annotation: anafora.AnaforaAnnotation, ident: str, kind: str, attributes: dict[str, str], tag: str,
          spans: tuple[tuple[int, int], ...] | None = None) -> None:  # fmt: skip
    # element order as in the distributed files: id, span, type, parentsType, properties
    annotation.id = ident
    if spans is not None:
        annotation.spans = spans
    annotation.type = kind
    annotation.parents_type = attributes.get(PARENTS_TYPE) or _DEFAULT_PARENTS[tag]


def _set_properties(annotation: anafora.AnaforaAnnotation, attributes: dict[str, str]) -> None:
    for name, value in attributes.items():
        if not name.startswith("@"):
            annotation.properties[name] = value

