"""Character offsets <-> tokens with a byte-level BPE tokenizer (leading spaces in tokens)."""

from __future__ import annotations

from mtpeft.tasks.encoding.alignment import (
    fragments_to_token_set,
    runs,
    token_set_to_fragments,
    tokenize,
    tokenized_from,
)

TEXT = "Patient has chest pain.\n\nNo painful knee!"


def test_leading_space_tokens_align_to_word_boundaries(tokenizer) -> None:
    tokens = tokenize(TEXT, tokenizer)
    start = TEXT.index("chest pain")
    rng = tokens.char_span_to_tokens(start, start + len("chest pain"))
    assert rng is not None
    assert tokens.offsets[rng[0]][0] < start  # the token carries the space before "chest"...
    assert tokens.tokens_to_char_span(*rng) == (start, start + len("chest pain"))  # ...its core does not


def test_boundary_inside_a_token_is_not_exact(tokenizer) -> None:
    tokens = tokenize(TEXT, tokenizer)
    start = TEXT.index("pain", TEXT.index("No"))  # "pain" inside "painful"
    token_set, exact = fragments_to_token_set(tokens, ((start, start + 4),))
    assert token_set and not exact
    (moved,) = token_set_to_fragments(tokens, token_set)
    assert moved[0] == start and moved[1] > start + 4


def test_whitespace_tokens_belong_to_a_fragment_only_inside_it(tokenizer) -> None:
    tokens = tokenize(TEXT, tokenizer)
    newline = next(i for i, (s, e) in enumerate(tokens.offsets) if TEXT[s:e].strip() == "")
    assert not tokens.has_core(newline)
    whole = tokens.char_span_to_tokens(0, len(TEXT))
    assert whole == (0, len(tokens) - 1)
    just_before = tokens.char_span_to_tokens(0, TEXT.index("\n"))
    assert just_before is not None and just_before[1] < newline


def test_offsets_cover_the_text_and_rebuild(tokenizer) -> None:
    tokens = tokenize(TEXT, tokenizer)
    assert tokens.offsets[0][0] == 0 and tokens.offsets[-1][1] == len(TEXT)
    assert all(a[1] == b[0] for a, b in zip(tokens.offsets, tokens.offsets[1:]))
    rebuilt = tokenized_from(TEXT, tokens.input_ids, tokens.offsets)
    assert rebuilt.cores == tokens.cores


def test_runs_split_at_gaps() -> None:
    assert runs({1, 2, 3, 7, 9, 10}) == [(1, 3), (7, 7), (9, 10)]
    assert runs(set()) == []
