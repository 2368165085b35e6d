"""Meme-style texts with persuasion-technique spans (samples of 2021 T6, subtask 2).

Templates mark spans as ``<XX|...>`` (see :func:`builder.parse_markup`); nesting gives the
overlapping spans of the real data (a smear containing a loaded word). The targets are
invented (the mayor, city hall, "the other party"); no real person or meme text is used.
Some memes carry no technique at all.
"""

from __future__ import annotations

import random

from mtpeft.tasks.document import Document, Mention

from .builder import fill, parse_markup

CODES = {
    "AU": "Appeal to authority", "FE": "Appeal to fear/prejudice", "BW": "Black-and-white Fallacy/Dictatorship",
    "CO": "Causal Oversimplification", "DO": "Doubt", "EX": "Exaggeration/Minimisation", "FW": "Flag-waving",
    "GG": "Glittering generalities (Virtue)", "LL": "Loaded Language",
    "ST": "Misrepresentation of Someone's Position (Straw Man)", "NC": "Name calling/Labeling",
    "OB": "Obfuscation, Intentional vagueness, Confusion", "RH": "Presenting Irrelevant Data (Red Herring)",
    "RA": "Reductio ad hitlerum", "RE": "Repetition", "SL": "Slogans", "SM": "Smears",
    "TT": "Thought-terminating cliché", "WH": "Whataboutism", "BA": "Bandwagon",
}  # fmt: skip
SLOTS = {
    "TARGET": ["the mayor", "city hall", "the council", "the other party", "big corporations", "the tax office"],
    "GROUP": ["<NC|clowns>", "<NC|career politicians>", "<NC|armchair experts>", "<NC|paper pushers>"],
    "LOADED": ["<LL|disgusting>", "<LL|shameful>", "<LL|insane>", "<LL|outrageous>"],
    "SLOGAN": ["<SL|take back our town>", "<SL|vote them all out>", "<SL|stand up and fight>", "<SL|one town one voice>"],
    "THREAT": ["they will take everything you worked for", "your children will pay the price", "the streets will not be safe"],
    "THING": ["budget", "decision", "plan", "tax"],
    "OTHER": ["their own expenses", "the last council", "the parking fines"],
    "SCAPEGOAT": ["the new bike lanes", "the council", "one new law"],
}  # fmt: skip
TEMPLATES = [
    "{SLOGAN}!",
    "they call it progress\n\ni call it <LL|a disaster>",
    "when {GROUP} tell you what to think",
    "<SM|{TARGET} has lied to you for <EX|decades>>",
    "{TARGET} wants more money?\n\n<WH|but what about {OTHER}?>",
    "<BW|either you stand with us or you stand with {TARGET}>",
    "<DO|is this really who we want in charge?>",
    "<FE|if we do nothing, {THREAT}>",
    "<FW|real patriots> {SLOGAN}",
    "<TT|it is what it is>",
    "<CO|prices went up because of {SCAPEGOAT}>",
    "<AU|every doctor agrees>: stop worrying",
    "<BA|everyone is switching>, why aren't you?",
    "<GG|freedom, family and fairness>",
    "<RE|no more lies>. <RE|no more lies>.",
    "<EX|the worst {THING} in history>",
    "this {THING} is {LOADED}",
    "<SM|{TARGET} only cares about <LL|greedy> friends>",
    "<ST|so you want us to pay for everything and ask nothing?>",
    "<RA|that is exactly what tyrants do>",
    "<OB|some people say things, you know what I mean>",
    "<RH|the weather was lovely the day they voted>",
    "<SL|<LL|fight> for your street>",
]
NEUTRAL = [
    "happy monday everyone", "when the coffee finally kicks in", "me after one workout", "weekend mood",
    "that feeling when the bus is on time", "nobody:\n\nme at 3 am: snacks",
]


def make_meme(meme_id: str, rng: random.Random) -> Document:
    """One meme of one to three lines; about one in six has no technique."""
    if rng.random() < 0.17:
        marked = rng.choice(NEUTRAL)
    else:
        parts = [fill(t, SLOTS, rng) for t in rng.sample(TEMPLATES, rng.randint(1, 3))]
        marked = rng.choice(["\n\n", "\n"]).join(parts)
    if rng.random() < 0.6:
        marked = _upper_outside_marks(marked)
    text, spans = parse_markup(marked, CODES)
    mentions = [
        Mention(id=f"T{n}", spans=((start, end),), label=label, attributes={"text_fragment": text[start:end]})
        for n, (start, end, label) in enumerate(sorted(spans))
    ]
    return Document(id=meme_id, text=text + "\n", mentions=mentions)


def _upper_outside_marks(marked: str) -> str:
    """Meme capitals: upper-case the text but not the two-letter codes of the marks."""
    pieces = marked.split("<")
    return pieces[0].upper() + "".join("<" + piece[:3] + piece[3:].upper() for piece in pieces[1:])


def make_documents(rng: random.Random, n: int, split: str) -> list[Document]:
    """``n`` memes with string ids as in the official files."""
    offset = {"train": 1000, "dev": 5000}[split]
    return [make_meme(str(offset + index), rng) for index in range(n)]
