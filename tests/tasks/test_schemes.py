"""Label schemes on token sets: what BIO and BIOHD carry, what they report, and decoding."""

from __future__ import annotations

import itertools
import random

import pytest

from mtpeft.tasks.encoding.alignment import tokenize
from mtpeft.tasks.encoding.schemes import (
    DISCONTIGUOUS,
    OVERLAP,
    TokenMention,
    get_scheme,
    max_disjoint,
    sentence_units,
)


def M(key: str, tokens: list[int], label: str = "X") -> TokenMention:
    return TokenMention(label, frozenset(tokens), key)


def survivors(scheme: str, mentions: list[TokenMention], units: list[int]) -> tuple[set[str], dict]:
    """Encode, decode, and return the keys of the mentions that come back exactly, and the losses."""
    s = get_scheme(scheme)
    tags, losses = s.encode(mentions, len(units), units)
    assert len(tags) == len(units) and set(tags) <= set(s.tags(sorted({m.label for m in mentions} or {"X"})))
    decoded = {(m.label, m.tokens) for m in s.decode(tags, units)}
    back = {m.key for m in mentions if (m.label, m.tokens) in decoded}
    assert back.isdisjoint(losses) or all(losses[k][0] == OVERLAP for k in back & set(losses))
    return back, losses


ONE_SENTENCE = [0] * 20
CASES = [
    # (description, mentions, units, survivors under biohd, loss kinds under biohd)
    ("contiguous", [M("a", [1, 2]), M("b", [4])], ONE_SENTENCE, {"a", "b"}, {}),
    ("adjacent contiguous", [M("a", [1, 2]), M("b", [3, 4])], ONE_SENTENCE, {"a", "b"}, {}),
    ("one discontiguous", [M("a", [1, 2, 5])], ONE_SENTENCE, {"a"}, {}),
    ("three fragments", [M("a", [1, 4, 8, 9])], ONE_SENTENCE, {"a"}, {}),
    ("shared head", [M("a", [1, 2, 7]), M("b", [4, 5, 7])], ONE_SENTENCE, {"a", "b"}, {}),
    ("head + contiguous member", [M("c", [1, 2]), M("d", [1, 5])], ONE_SENTENCE, {"c", "d"}, {}),
    ("crossing contiguous", [M("a", [1, 2, 3]), M("b", [2, 3, 4])], ONE_SENTENCE, {"a", "b"}, {}),
    ("nested contiguous", [M("a", [1, 2, 3]), M("b", [2])], ONE_SENTENCE, {"a"}, {"b": OVERLAP}),
    (
        "two unrelated discontiguous",
        [M("a", [1, 3]), M("b", [5, 7])],
        ONE_SENTENCE,
        {"a"},
        {"b": DISCONTIGUOUS},
    ),
    ("two discontiguous, two sentences", [M("a", [1, 3]), M("b", [12, 14])], [0] * 10 + [1] * 10, {"a", "b"}, {}),
    ("discontiguous across sentences", [M("a", [8, 12])], [0] * 10 + [1] * 10, set(), {"a": DISCONTIGUOUS}),
    ("two types", [M("a", [1, 3], "X"), M("b", [5, 7], "Y")], ONE_SENTENCE, {"a", "b"}, {}),
]


@pytest.mark.parametrize(("name", "mentions", "units", "expected", "lost"), CASES, ids=[c[0] for c in CASES])
def test_biohd_carries_and_reports(name: str, mentions: list, units: list, expected: set, lost: dict) -> None:
    back, losses = survivors("biohd", mentions, units)
    assert back == expected
    assert {k: v[0] for k, v in losses.items()} == lost
    assert back | set(losses) == {m.key for m in mentions}  # every mention survives or is reported


@pytest.mark.parametrize(("name", "mentions", "units", "expected", "lost"), CASES, ids=[c[0] for c in CASES])
def test_bio_keeps_contiguous_only(name: str, mentions: list, units: list, expected: set, lost: dict) -> None:
    back, losses = survivors("bio", mentions, units)
    for m in mentions:
        if m.n_runs > 1:
            assert m.key not in back and losses[m.key][0] == DISCONTIGUOUS
    assert back | set(losses) == {m.key for m in mentions}
    contiguous = [m for m in mentions if m.n_runs == 1]
    assert len(back) == len(max_disjoint(contiguous))


def test_biohd_tags_of_a_shared_head() -> None:
    s = get_scheme("biohd")
    tags, _ = s.encode([M("a", [1, 2, 5]), M("b", [3, 5])], 6, [0] * 6)
    assert tags == ["O", "DB-X", "DI-X", "DB-X", "O", "HB-X"]


@pytest.mark.parametrize("scheme", ["bio", "biohd"])
def test_decode_repairs_ill_formed_sequences(scheme: str) -> None:
    s = get_scheme(scheme)
    decoded = s.decode(["I-X", "I-X", "O", "B-X", "I-Y", "I-Y"], [0] * 6)
    assert [(m.label, sorted(m.tokens)) for m in decoded] == [("X", [0, 1]), ("X", [3]), ("Y", [4, 5])]


def test_max_disjoint_is_optimal() -> None:
    rng = random.Random(0)
    for _ in range(200):
        mentions = []
        for k in range(rng.randint(0, 7)):
            a = rng.randint(0, 12)
            mentions.append(M(str(k), list(range(a, a + rng.randint(1, 4)))))
        kept = max_disjoint(mentions)
        assert all(not (x.tokens & y.tokens) for x, y in itertools.combinations(kept, 2))
        best = max(
            (n for n in range(len(mentions) + 1) for subset in itertools.combinations(mentions, n)
             if all(not (x.tokens & y.tokens) for x, y in itertools.combinations(subset, 2))),
            default=0,
        )  # fmt: skip
        assert len(kept) == best
        for y in kept:  # a nested mention is never kept where the one around it fits
            for x in mentions:
                assert not (x.tokens > y.tokens and all(not (x.tokens & z.tokens) for z in kept if z is not y))


def test_sentence_units(tokenizer) -> None:
    text = "Chest pain. No fever\nor chills!\n\nSkin rash on Smith's arm."
    tokens = tokenize(text, tokenizer)
    units = sentence_units(tokens)
    unit_of = {text[s:e].strip(): u for (s, e), u in zip(tokens.cores, units) if e > s}
    assert unit_of["pain"] < unit_of["No"] == unit_of["chills"] < unit_of["rash"] == unit_of["Smith"]
    assert units == sorted(units)
