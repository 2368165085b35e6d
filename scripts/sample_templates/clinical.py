"""Clinical-style notes with disorder mentions (samples of 2014 T7 and 2015 T14).

Each note has a few sections of short sentences. Disorders come from a small vocabulary with
UMLS CUIs (or ``CUI-less``); some are discontiguous (``pain ... chest``), some carry an
attribute signalled by a fixed cue word (``denies`` -> negation, ``Possible`` -> uncertainty,
``worsening`` -> course, ``Severe`` -> severity, ``mother`` -> subject, ``if`` -> conditional),
so the attribute is learnable from the text. Mentions carry all 2015 T14 attributes; the 2014
writer uses only ``CUI``.
"""

from __future__ import annotations

import random
import re

from mtpeft.tasks.document import Document, Mention
from mtpeft.tasks.formats.semeval2015t14 import DEFAULTS, LABEL

from .builder import Fragment, TextBuilder

DISORDERS = [
    ("chest pain", "C0008031"), ("shortness of breath", "C0013404"), ("nausea", "C0027497"),
    ("vomiting", "C0042963"), ("fever", "C0015967"), ("cough", "C0010200"),
    ("congestive heart failure", "C0018802"), ("atrial fibrillation", "C0004238"), ("pneumonia", "C0032285"),
    ("diarrhea", "C0011991"), ("headache", "C0018681"), ("abdominal pain", "C0000737"),
    ("dizziness", "C0012833"), ("anemia", "C0002871"), ("COPD", "C0024117"),
    ("myocardial infarction", "C0027051"), ("hypertension", "C0020538"), ("diabetes mellitus", "C0011849"),
    ("urinary tract infection", "C0042029"), ("hypercholesterolemia", "C0020443"), ("depression", "C0011570"),
    ("anxiety", "C0003467"), ("stroke", "C0038454"), ("sepsis", "C0243026"),
    ("bibasilar crackles", "CUI-less"), ("right lower lobe opacity", "CUI-less"), ("pedal swelling", "CUI-less"),
]  # fmt: skip

# (template, cue, attribute value); {d} is the disorder, {D} the same capitalised, {cue} the cue.
ATTRIBUTE_TEMPLATES: dict[str, list[tuple[str, str, str]]] = {
    "Neg": [
        ("Patient {cue} {d}.", "denies", "yes"), ("{cue} {d} on today's exam.", "No evidence of", "yes"),
        ("{cue} {d}.", "Negative for", "yes"), ("She has been {cue} {d} this week.", "free of", "yes"),
    ],
    "Uncertain": [
        ("{cue} {d}.", "Possible", "yes"), ("{cue} {d} versus viral illness.", "Rule out", "yes"),
        ("{D} is {cue}.", "suspected", "yes"),
    ],
    "Course": [
        ("Her {d} has {cue}.", "improved", "improved"), ("{D} is {cue}.", "worsening", "worsened"),
        ("{D} {cue} after treatment.", "resolved", "resolved"), ("{D} has {cue} since admission.", "increased", "increased"),
    ],
    "Severity": [
        ("{cue} {d} overnight.", "Severe", "severe"), ("{cue} {d} noted.", "Mild", "slight"),
        ("{cue} {d} on presentation.", "Moderate", "moderate"),
    ],
    "Subj": [
        ("Family history of {d} in her {cue}.", "mother", "family_member"),
        ("Her {cue} had {d}.", "father", "family_member"), ("Her {cue} was treated for {d}.", "sister", "family_member"),
    ],
    "Cond": [("Return to the clinic {cue} {d} develops.", "if", "true"), ("Call us {cue} {d} recurs.", "if", "true")],
    "Generic": [("Patient was {cue} {d} and its warning signs.", "educated about", "true")],
}  # fmt: skip
PLAIN_TEMPLATES = [
    "The patient presents with {d}.", "History is significant for {d}.", "She was admitted with {d}.",
    "She has a long history of {d}.", "{D}, stable on current treatment.", "Known {d}, followed by her physician.",
]  # fmt: skip
# (template, first fragment, second fragment, CUI); {cue} optional severity adverb.
DISCONTIGUOUS = [
    ("The {d1} is {cue} {d2}.", "left atrium", "dilated", "C0344720"),
    ("The {d1} is {cue} {d2}.", "right ventricle", "enlarged", "CUI-less"),
    ("She reports {d1} in the left {d2}.", "pain", "chest", "C0008031"),
    ("The {d1} is soft but {d2}.", "abdomen", "distended", "C0000731"),
    ("Both {d1} are {d2} today.", "lower extremities", "swollen", "CUI-less"),
]
SEVERITY_ADVERBS = [("mildly", "slight"), ("moderately", "moderate"), ("severely", "severe")]
FILLERS = [
    "Vital signs are stable.", "Lungs are clear to auscultation.", "Heart has a regular rate and rhythm.",
    "Continue {med} daily.", "Started on {med}.", "Plan discussed with the patient and family.",
    "Labs reviewed with the patient.", "Follow up in {n} weeks.",
]  # fmt: skip
MEDICATIONS = ["aspirin", "metoprolol", "lisinopril", "metformin", "furosemide", "atorvastatin", "omeprazole"]
KIND_WEIGHTS = {"plain": 4, "Neg": 3, "Uncertain": 1, "Course": 1, "Severity": 1, "Subj": 1, "Cond": 0.6,
                "Generic": 0.3, "discontiguous": 1.5}  # fmt: skip


def _emit(builder: TextBuilder, template: str, values: dict[str, str]) -> dict[str, Fragment]:
    """Append ``template`` with ``{name}`` replaced by ``values``; return each value's span."""
    spans = {}
    for piece in re.split(r"(\{\w+\})", template):
        name = piece[1:-1] if piece.startswith("{") else None
        if name is None:
            builder.add(piece)
        else:
            spans[name] = builder.add(values[name])
    return spans


def _mention(spans: list[Fragment], cui: str, **attributes: str) -> Mention:
    return Mention(id="", spans=tuple(spans), label=LABEL, attributes={**DEFAULTS, "CUI": cui, **attributes})


def _span(fragment: Fragment) -> str:
    return f"{fragment[0]}-{fragment[1]}"


def _gendered(template: str, sex: str) -> str:
    """Templates are written for a woman; switch the pronouns for a man."""
    if sex == "woman":
        return template
    for female, male in (("She ", "He "), ("she ", "he "), ("Her ", "His "), ("her ", "his ")):
        template = template.replace(female, male)
    return template


def _sentence(builder: TextBuilder, kind: str, sex: str, rng: random.Random) -> list[Mention]:
    if kind == "discontiguous":
        template, first, second, cui = rng.choice(DISCONTIGUOUS)
        template = _gendered(template, sex)
        adverb, severity = rng.choice(SEVERITY_ADVERBS)
        spans = _emit(builder, template, {"d1": first, "d2": second, "cue": adverb})
        extra = {"Severity_value": severity, "Severity_span": _span(spans["cue"])} if "cue" in spans else {}
        if second == "chest":
            extra = {"Bodyloc_value": "C0817096", "Bodyloc_span": _span(spans["d2"])}
        return [_mention([spans["d1"], spans["d2"]], cui, **extra)]
    surface, cui = rng.choice(DISORDERS)
    values = {"d": surface, "D": surface[0].upper() + surface[1:]}
    if kind == "plain":
        spans = _emit(builder, _gendered(rng.choice(PLAIN_TEMPLATES), sex), values)
        return [_mention([spans.get("d") or spans["D"]], cui)]
    template, cue, value = rng.choice(ATTRIBUTE_TEMPLATES[kind])
    spans = _emit(builder, _gendered(template, sex), {**values, "cue": cue})
    attributes = {f"{kind}_value": value, f"{kind}_span": _span(spans["cue"])}
    return [_mention([spans.get("d") or spans["D"]], cui, **attributes)]


def _filler(rng: random.Random) -> str:
    return rng.choice(FILLERS).format(med=rng.choice(MEDICATIONS), n=rng.randint(2, 8))


def make_note(doc_id: str, rng: random.Random) -> Document:
    """One note of three sections with three to six disorder mentions."""
    builder = TextBuilder()
    mentions: list[Mention] = []
    sex = rng.choice(["woman", "man"])
    builder.add(f"Patient is a {rng.randint(25, 90)} year old {sex} seen for follow-up.\n")
    kinds, weights = list(KIND_WEIGHTS), list(KIND_WEIGHTS.values())
    for section, count in (("HISTORY", rng.randint(1, 3)), ("EXAM", 1), ("ASSESSMENT", rng.randint(1, 2))):
        builder.add(f"{section}: ")
        for index in range(count):
            if index:
                builder.add(" ")
            kind = "discontiguous" if section == "EXAM" and rng.random() < 0.6 else rng.choices(kinds, weights)[0]
            mentions.extend(_sentence(builder, kind, sex, rng))
        builder.add(" " + _filler(rng) + "\n")
    builder.add(f"PLAN: {_filler(rng)}\n")
    for number, mention in enumerate(mentions, start=1):
        mention.id = f"M{number}"
    return Document(id=doc_id, text=builder.text, mentions=mentions)


def make_documents(rng: random.Random, n: int, split: str) -> list[Document]:
    """``n`` notes named like the ShARe files (``NUMBER-NUMBER-DISCHARGE_SUMMARY``)."""
    kinds = ["DISCHARGE_SUMMARY", "ECHO_REPORT", "RADIOLOGY_REPORT"]
    prefix = {"train": 1, "dev": 2}[split]
    names = (f"{prefix}{index:04d}-{rng.randint(100000, 999999)}-{rng.choice(kinds)}" for index in range(n))
    return [make_note(name, rng) for name in names]
