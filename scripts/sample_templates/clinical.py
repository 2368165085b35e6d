"""Clinical-style notes with disorder mentions (samples of 2014 T7 and 2015 T14).

Each note has a few sections of short sentences. Disorders come from a small vocabulary with
UMLS CUIs (or ``CUI-less``); some are discontiguous (``pain ... chest``), some carry an
attribute signalled by a fixed cue word (``denies`` -> negation, ``Possible`` -> uncertainty,
``worsening`` -> course, ``Severe`` -> severity, ``mother`` -> subject, ``if`` -> conditional),
so the attribute is learnable from the text. Mentions carry all 2015 T14 attributes; the 2014
writer uses only ``CUI``.

CUIs are learnable as in real notes: one surface form has one CUI in every document, except a
few ambiguous abbreviations whose CUI the sentence decides (``History of MI`` is a myocardial
infarction, ``Echo shows MI`` a mitral insufficiency); about a quarter of the disorders are
``CUI-less`` (ShARe/CLEF: roughly a quarter to a third); and dev notes also use forms that
training never shows (:data:`DEV_ONLY`), synonyms of training CUIs and CUIs of their own, so the
lexicon fallback and the ceiling of a classifier over training CUIs are exercised.
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
    ("scattered wheezes", "CUI-less"), ("decreased breath sounds", "CUI-less"),
    ("thickened mitral leaflets", "CUI-less"), ("wall motion abnormality", "CUI-less"),
    ("mild septal hypokinesis", "CUI-less"), ("patchy basilar opacities", "CUI-less"),
]  # fmt: skip
DEV_ONLY = [
    ("heart attack", "C0027051"), ("high blood pressure", "C0020538"), ("throwing up", "C0042963"),
    ("gout", "C0018099"), ("cellulitis", "C0007642"), ("asthma", "C0004096"), ("trace edema", "CUI-less"),
]  # fmt: skip
"""Forms only dev notes use (with probability ``DEV_ONLY_RATE``): synonyms of training CUIs, new CUIs."""
DEV_ONLY_RATE = 0.15
CUI_LESS_RATE = 0.27
"""The share of CUI-less forms among the single-fragment disorders (2 of the 5 discontiguous ones are)."""
# (template, abbreviation, CUI): the same form, a CUI the sentence decides
AMBIGUOUS = [
    ("History of {d}, on aspirin since.", "MI", "C0027051"), ("Echo shows {d} with normal ejection fraction.", "MI", "C0026266"),
    ("Known {d}, followed by neurology.", "MS", "C0026769"), ("Echo shows {d} with a mean gradient of 8.", "MS", "C0026269"),
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
                "Generic": 0.3, "discontiguous": 1.5, "ambiguous": 0.6}  # fmt: skip


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


class _Draw:
    """Draws single-fragment disorders for one split: every so often (error diffusion at
    :data:`CUI_LESS_RATE`) a CUI-less form, so even a small split has the intended share; dev
    notes sometimes use a form training never shows."""

    def __init__(self, rng: random.Random, split: str) -> None:
        self.rng, self.split, self.balance = rng, split, 0.0

    def __call__(self) -> tuple[str, str]:
        if self.split == "dev" and self.rng.random() < DEV_ONLY_RATE:
            return self.rng.choice(DEV_ONLY)
        self.balance += CUI_LESS_RATE
        cui_less = self.balance >= 1.0
        self.balance -= cui_less
        return self.rng.choice([(form, cui) for form, cui in DISORDERS if (cui == "CUI-less") == cui_less])


def _sentence(builder: TextBuilder, kind: str, sex: str, rng: random.Random, draw: _Draw) -> list[Mention]:
    if kind == "discontiguous":
        template, first, second, cui = rng.choice(DISCONTIGUOUS)
        template = _gendered(template, sex)
        adverb, severity = rng.choice(SEVERITY_ADVERBS)
        spans = _emit(builder, template, {"d1": first, "d2": second, "cue": adverb})
        extra = {"Severity_value": severity, "Severity_span": _span(spans["cue"])} if "cue" in spans else {}
        if second == "chest":
            extra = {"Bodyloc_value": "C0817096", "Bodyloc_span": _span(spans["d2"])}
        return [_mention([spans["d1"], spans["d2"]], cui, **extra)]
    if kind == "ambiguous":
        template, surface, cui = rng.choice(AMBIGUOUS)
        return [_mention([_emit(builder, template, {"d": surface})["d"]], cui)]
    surface, cui = draw()
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


def make_note(doc_id: str, rng: random.Random, draw: _Draw | None = None) -> Document:
    """One note of three sections with three to six disorder mentions."""
    builder = TextBuilder()
    draw = draw or _Draw(rng, "train")
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
            mentions.extend(_sentence(builder, kind, sex, rng, draw))
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
    draw = _Draw(rng, split)
    return [make_note(name, rng, draw) for name in names]
