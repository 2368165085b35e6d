"""Clinic notes with temporal annotations (samples of 2016 T12, Anafora).

A note has a DOCTIME (the visit date in the first line), a LABS section whose header date is a
SECTIONTIME, and sentences in the past, present and future. Each sentence template lists its
entities (EVENT with DocTimeRel/Polarity/ContextualModality, TIMEX3 with Class) and TLINKs;
CONTAINS links join a time expression to the event it dates, or an event to an event inside it,
always within one sentence, so the relation is learnable from the text.
"""

from __future__ import annotations

import random
import re

from mtpeft.tasks.document import Document, Mention, Relation

from .builder import TextBuilder

PROCEDURES = ["colonoscopy", "biopsy", "resection", "CT scan", "MRI", "ultrasound", "surgery", "chemotherapy"]
SYMPTOMS = ["pain", "nausea", "bleeding", "fatigue", "diarrhea", "constipation", "fever", "cramping"]
FINDINGS = ["mass", "polyp", "lesion", "nodule", "stricture"]
LABS = ["CEA", "hemoglobin", "creatinine", "white count"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October"]
NUMBERS = ["two", "three", "four", "six"]

# Sentence templates: {name:TYPE} marks an entity (EVENT, TIMEX3) whose text is drawn from the
# vocabulary named by the slot; LINKS gives (source, type, target) by slot name; the dict after
# sets EVENT DocTimeRel per slot and the TIMEX3 Class.
SENTENCES: list[tuple[str, list[tuple[str, str, str]], dict[str, str]]] = [
    ("She underwent a {p:EVENT} on {date:TIMEX3}.", [("date", "CONTAINS", "p")], {"p": "BEFORE", "date": "DATE"}),
    ("In {month:TIMEX3}, a {p:EVENT} showed a {f:EVENT}.", [("month", "CONTAINS", "p"), ("p", "CONTAINS", "f")],
     {"p": "BEFORE", "f": "BEFORE", "month": "DATE"}),
    ("She was {adm:EVENT} {ago:TIMEX3} with {s:EVENT}.", [("ago", "CONTAINS", "adm"), ("adm", "CONTAINS", "s")],
     {"adm": "BEFORE", "s": "BEFORE", "ago": "DATE"}),
    ("She has had {s:EVENT} for {dur:TIMEX3}.", [("dur", "CONTAINS", "s")], {"s": "BEFORE/OVERLAP", "dur": "DURATION"}),
    ("{today:TIMEX3} she {rep:EVENT} mild {s:EVENT}.", [("today", "CONTAINS", "rep"), ("rep", "CONTAINS", "s")],
     {"rep": "OVERLAP", "s": "OVERLAP", "today": "DATE"}),
    ("She denies {s:EVENT}.", [], {"s": "OVERLAP"}),
    ("The {exam:EVENT} shows a small {f:EVENT}.", [("exam", "CONTAINS", "f")], {"exam": "OVERLAP", "f": "OVERLAP"}),
    ("After the {p:EVENT}, she developed {s:EVENT}.", [("p", "BEFORE", "s")], {"p": "BEFORE", "s": "BEFORE"}),
    ("A {p:EVENT} is planned for {next:TIMEX3}.", [("next", "CONTAINS", "p")], {"p": "AFTER", "next": "DATE"}),
    ("She will {ret:EVENT} in {n:TIMEX3} for a {p:EVENT}.", [("n", "CONTAINS", "ret")],
     {"ret": "AFTER", "p": "AFTER", "n": "DATE"}),
    ("If {s:EVENT} recurs, she will call.", [], {"s": "AFTER"}),
]  # fmt: skip
NEGATED = {"She denies {s:EVENT}."}
HYPOTHETICAL = {"If {s:EVENT} recurs, she will call."}


def _date(rng: random.Random, year: int) -> str:
    return f"{rng.choice(MONTHS)} {rng.randint(1, 28)}, {year}"


def _fresh(vocabulary: list[str], used: set[str], rng: random.Random) -> str:
    """A word not used yet in this note (so a note never both reports and denies one symptom)."""
    word = rng.choice([w for w in vocabulary if w not in used] or vocabulary)
    used.add(word)
    return word


def _slot_text(slot: str, year: int, used: set[str], rng: random.Random) -> str:
    choices = {
        "p": lambda: _fresh(PROCEDURES, used, rng), "s": lambda: _fresh(SYMPTOMS, used, rng),
        "f": lambda: _fresh(FINDINGS, used, rng),
        "date": lambda: _date(rng, year - 1), "month": lambda: f"{rng.choice(MONTHS)} {year - 1}",
        "ago": lambda: f"{rng.choice(NUMBERS)} weeks ago", "dur": lambda: f"{rng.choice(NUMBERS)} months",
        "today": lambda: "Today", "next": lambda: rng.choice(["next week", "next month", "early May"]),
        "n": lambda: f"{rng.choice(NUMBERS)} months", "adm": lambda: "admitted", "rep": lambda: "reports",
        "exam": lambda: rng.choice(["exam", "scan"]), "ret": lambda: "return",
    }  # fmt: skip
    return choices[slot]()


class _Note:
    """Accumulates text, entities and relations with Anafora-style ids."""

    def __init__(self, doc_id: str, year: int) -> None:
        self.doc_id = doc_id
        self.year = year
        self.used: set[str] = set()
        self.builder = TextBuilder()
        self.mentions: list[Mention] = []
        self.relations: list[Relation] = []

    def entity(self, text: str, kind: str, properties: dict[str, str]) -> str:
        span = self.builder.add(text)
        ident = f"{len(self.mentions) + 1}@e@{self.doc_id}@gold"
        attributes = {**properties, "@parentsType": "TemporalEntities"}
        self.mentions.append(Mention(id=ident, spans=(span,), label=kind, attributes=attributes))
        return ident

    def link(self, source: str, kind: str, target: str) -> None:
        ident = f"{len(self.relations) + 1}@r@{self.doc_id}@gold"
        attributes = {"@type": "TLINK", "@parentsType": "TemporalRelations"}
        self.relations.append(Relation(id=ident, label=kind, source=source, target=target, attributes=attributes))

    def sentence(self, template: str, links: list[tuple[str, str, str]], props: dict[str, str],
                 rng: random.Random) -> None:  # fmt: skip
        ids: dict[str, str] = {}
        for piece in re.split(r"(\{\w+:\w+\})", template):
            if not piece.startswith("{"):
                self.builder.add(piece)
                continue
            slot, kind = piece[1:-1].split(":")
            if kind == "TIMEX3":
                ids[slot] = self.entity(_slot_text(slot, self.year, self.used, rng), kind, {"Class": props[slot]})
            else:
                text = _slot_text(slot, self.year, self.used, rng)
                ids[slot] = self.entity(text, kind, _event(props[slot], template))
        for source, kind, target in links:
            self.link(ids[source], kind, ids[target])


def _event(doc_time_rel: str, template: str) -> dict[str, str]:
    return {
        "DocTimeRel": doc_time_rel, "Type": "N/A", "Degree": "N/A",
        "Polarity": "NEG" if template in NEGATED else "POS",
        "ContextualModality": "HYPOTHETICAL" if template in HYPOTHETICAL else "ACTUAL",
        "ContextualAspect": "N/A", "Permanence": "UNDETERMINED",
    }  # fmt: skip


def make_note(doc_id: str, rng: random.Random) -> Document:
    """A visit note: DOCTIME line, history (3-4 sentences), a dated LABS section, a plan."""
    year = rng.randint(2008, 2013)
    note = _Note(doc_id, year)
    note.builder.add("Clinic visit ")
    note.entity(_date(rng, year), "DOCTIME", {})
    note.builder.add("\n\nHISTORY:\n")
    past_and_present = [s for s in SENTENCES if "AFTER" not in s[2].values()]
    for index, (template, links, props) in enumerate(rng.sample(past_and_present, rng.randint(3, 4))):
        note.builder.add(" " if index else "")
        note.sentence(template, links, props, rng)
    note.builder.add("\n\nLABS (")
    section = note.entity(_date(rng, year), "SECTIONTIME", {})
    note.builder.add(f"):\nHer {rng.choice(LABS)} was ")
    lab = note.entity(rng.choice(["elevated", "normal", "low"]), "EVENT", _event("BEFORE", ""))
    note.builder.add(".\n\nPLAN:\n")
    note.link(section, "CONTAINS", lab)
    future = [s for s in SENTENCES if "AFTER" in s[2].values()]
    template, links, props = rng.choice(future)
    note.sentence(template, links, props, rng)
    note.builder.add("\n")
    return Document(id=doc_id, text=note.builder.text, mentions=note.mentions, relations=note.relations)


def make_documents(rng: random.Random, n: int, split: str) -> list[Document]:
    """``n`` notes with THYME-like ids (``ID101_clinic_001``)."""
    prefix = {"train": 1, "dev": 2}[split]
    return [make_note(f"ID{prefix}{index // 3:02d}_clinic_{index + 1:03d}", rng) for index in range(n)]
