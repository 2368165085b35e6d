"""Clinical TempEval 2016 through anafora.evaluate: hand-made closure cases and the real gold folders."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from mtpeft.errors import FormatError
from mtpeft.evaluation.metrics.temporal import temporal_scores
from mtpeft.evaluation.score import score

_ENTITY = "<entity><id>{id}</id><span>{span}</span><type>{type}</type><properties/></entity>"
_TLINK = ("<relation><id>{id}</id><type>TLINK</type><properties><Source>{source}</Source>"
          "<Type>CONTAINS</Type><Target>{target}</Target></properties></relation>")


def _anafora(root: Path, name: str, entities: dict[str, tuple[str, str]], links: list[tuple[str, str]]) -> None:
    """Write ``root/name/name.Temporal-Relation.gold.completed.xml`` (no note text)."""
    body = "".join(_ENTITY.format(id=i, span=span, type=kind) for i, (span, kind) in entities.items())
    body += "".join(_TLINK.format(id=f"{n}@r@{name}@gold", source=s, target=t) for n, (s, t) in enumerate(links))
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    xml = f"<?xml version='1.0' encoding='UTF-8'?><data><annotations>{body}</annotations></data>"
    (folder / f"{name}.Temporal-Relation.gold.completed.xml").write_text(xml, encoding="utf-8")


_ENTITIES = {"a@e": ("0,5", "EVENT"), "b@e": ("10,15", "EVENT"), "c@e": ("20,25", "TIMEX3")}


def test_contains_with_temporal_closure_by_hand(tmp_path: Path) -> None:
    _anafora(tmp_path / "gold", "doc", _ENTITIES, [("a@e", "b@e"), ("b@e", "c@e"), ("a@e", "c@e")])
    _anafora(tmp_path / "pred", "doc", _ENTITIES, [("a@e", "b@e"), ("b@e", "c@e")])
    scores = temporal_scores(tmp_path / "gold", tmp_path / "pred")
    # precision: both predicted links are gold links -> 2/2
    # recall: a CONTAINS c follows from a>b>c in the closure of the predictions -> 3/3
    assert (scores["contains_precision"], scores["contains_recall"], scores["contains_f1"]) == (1.0, 1.0, 1.0)
    _anafora(tmp_path / "pred2", "doc", _ENTITIES, [("a@e", "c@e")])
    scores = temporal_scores(tmp_path / "gold", tmp_path / "pred2")
    # precision: a>c is in the (closed) gold -> 1/1; recall: closure of {a>c} holds 1 of 3
    assert scores["contains_precision"] == 1.0
    assert scores["contains_recall"] == pytest.approx(1 / 3)
    assert scores["contains_f1"] == pytest.approx(2 * (1 / 3) / (1 + 1 / 3))
    # entity spans are identical in both folders
    assert (scores["event_span_f1"], scores["timex3_span_f1"]) == (1.0, 1.0)


def test_event_spans_are_exact(tmp_path: Path) -> None:
    _anafora(tmp_path / "gold", "doc", _ENTITIES, [])
    _anafora(tmp_path / "pred", "doc", {"a@e": ("0,4", "EVENT"), "b@e": ("10,15", "EVENT")}, [])
    scores = temporal_scores(tmp_path / "gold", tmp_path / "pred")
    # EVENT: 2 gold, 2 predicted, 1 exact (0,4 != 0,5) -> P = R = F1 = 1/2
    assert (scores["event_span_precision"], scores["event_span_recall"]) == (0.5, 0.5)
    # TIMEX3: 1 gold, none predicted: anafora's precision of nothing is 1.0, recall 0
    assert (scores["timex3_span_precision"], scores["timex3_span_recall"], scores["timex3_span_f1"]) == (1.0, 0.0, 0.0)


def test_folder_problems_are_named(tmp_path: Path) -> None:
    _anafora(tmp_path / "gold", "doc", _ENTITIES, [])
    _anafora(tmp_path / "gold", "doc2", _ENTITIES, [])
    _anafora(tmp_path / "pred", "doc", _ENTITIES, [])
    with pytest.raises(FormatError, match="doc2.*no such file"):
        temporal_scores(tmp_path / "gold", tmp_path / "pred")
    _anafora(tmp_path / "pred", "doc2", _ENTITIES, [])
    _anafora(tmp_path / "pred", "other", _ENTITIES, [])
    with pytest.raises(FormatError, match="'other', which is not a gold document"):
        temporal_scores(tmp_path / "gold", tmp_path / "pred")
    shutil.rmtree(tmp_path / "pred" / "other")
    (tmp_path / "pred" / "doc2" / "doc2.Temporal-Relation.gold.completed.xml").write_text("<data><annot", encoding="utf-8")
    with pytest.raises(FormatError, match="doc2.*unreadable Anafora XML"):
        temporal_scores(tmp_path / "gold", tmp_path / "pred")


# --- the real gold folders (annotations only, no note text) -----------------------------------


def _copy_gold(shared_data: Path, target: Path) -> list[Path]:
    shutil.copytree(shared_data / "semeval2016t12", target)
    return sorted(target.glob("*/*.xml"))


def _contains_links(root: ElementTree.Element) -> list[ElementTree.Element]:
    return [r for r in root.iter("relation") if r.findtext("type") == "TLINK" and r.findtext("properties/Type") == "CONTAINS"]


def test_gold_against_itself_scores_one(shared_data: Path) -> None:
    gold = shared_data / "semeval2016t12"
    scores = score("semeval2016t12", gold, gold)
    for key in ("event_span_f1", "timex3_span_f1", "contains_precision", "contains_recall", "contains_f1"):
        assert scores[key] == 1.0, key
    assert scores["documents"] == 8.0


def test_removing_one_documents_contains_links_lowers_recall_by_its_share(shared_data: Path, tmp_path: Path) -> None:
    files = _copy_gold(shared_data, tmp_path / "pred")
    counts = []
    for file in files:
        links = _contains_links(ElementTree.parse(file).getroot())
        pairs = {(r.findtext("properties/Source"), r.findtext("properties/Target")) for r in links}
        assert len(pairs) == len(links)  # no repeated links, so each counts once in anafora
        counts.append(len(links))
    total, removed = sum(counts), counts[0]
    tree = ElementTree.parse(files[0])
    annotations = tree.getroot().find("annotations")
    for relation in _contains_links(tree.getroot()):
        annotations.remove(relation)
    tree.write(files[0], encoding="UTF-8", xml_declaration=True)
    scores = score("semeval2016t12", shared_data / "semeval2016t12", tmp_path / "pred")
    # that document's gold links cannot be recovered (no predicted link there to close over);
    # every other predicted link is a gold link
    assert scores["contains_recall"] == pytest.approx((total - removed) / total)
    assert scores["contains_precision"] == 1.0
    assert scores["event_span_f1"] == 1.0


def test_shortened_event_spans_count_as_misses(shared_data: Path, tmp_path: Path) -> None:
    files = _copy_gold(shared_data, tmp_path / "pred")
    n_events, shortened = 0, 0
    for file in files:
        tree = ElementTree.parse(file)
        root = tree.getroot()
        linked = {r.findtext(f"properties/{p}") for r in root.iter("relation") for p in ("Source", "Target")}
        events = [e for e in root.iter("entity") if e.findtext("type") == "EVENT"]
        spans = {e.findtext("span") for e in events}
        assert len(spans) == len(events)  # distinct spans: anafora counts each event once
        n_events += len(events)
        for entity in events[:5]:
            if entity.findtext("id") in linked or ";" in entity.findtext("span"):
                continue  # keep relations intact; only simple one-fragment spans
            start, end = map(int, entity.findtext("span").split(","))
            if end - start < 2 or f"{start},{end - 1}" in spans:
                continue  # never empty, never landing on another event's span
            entity.find("span").text = f"{start},{end - 1}"
            shortened += 1
        tree.write(file, encoding="UTF-8", xml_declaration=True)
    assert shortened > 0
    scores = score("semeval2016t12", shared_data / "semeval2016t12", tmp_path / "pred")
    # same number of predicted events, `shortened` of them no longer exact
    assert scores["event_span_precision"] == pytest.approx((n_events - shortened) / n_events)
    assert scores["event_span_recall"] == pytest.approx((n_events - shortened) / n_events)
    assert (scores["timex3_span_f1"], scores["contains_f1"]) == (1.0, 1.0)


def test_documents_are_scored_through_the_written_folders(shared_data: Path) -> None:
    from mtpeft.evaluation.metrics.temporal import temporal_scores_from_documents
    from mtpeft.tasks.formats import semeval2016t12

    gold = semeval2016t12.read(shared_data / "semeval2016t12").documents
    same = temporal_scores_from_documents(gold, gold)
    assert [same[k] for k in ("event_span_f1", "timex3_span_f1", "contains_f1")] == [1.0, 1.0, 1.0]
    first = gold[0]
    pruned = [first.__class__(id=first.id, text=None, mentions=first.mentions, relations=[]), *gold[1:]]
    scores = temporal_scores_from_documents(gold, pruned)
    n_first = sum(r.label == "CONTAINS" and r.attributes.get("@type") == "TLINK" for r in first.relations)
    n_all = sum(r.label == "CONTAINS" and r.attributes.get("@type") == "TLINK" for d in gold for r in d.relations)
    # the first document keeps its entities but loses every relation: its CONTAINS links are missed
    assert scores["contains_recall"] == pytest.approx((n_all - n_first) / n_all)
