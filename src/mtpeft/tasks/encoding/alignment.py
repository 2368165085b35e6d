"""Character offsets <-> token positions, through a fast tokenizer's offset mapping.

Byte-level BPE tokenizers (Llama 3, SmolLM2) attach the space before a word to the word's token:
``" pain"`` has offsets ``(10, 15)`` while the mention ``pain`` is ``(11, 15)``. Alignment
therefore works on each token's *core*, its offsets with surrounding whitespace trimmed, so a
mention boundary that falls on a word boundary maps exactly. A token made only of whitespace
(``"\\n\\n"``) has an empty core; it belongs to a fragment only when it lies inside it.

No special tokens are added: every token carries text, and ``token_offsets`` of the features
are the tokenizer's raw offsets.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field

from mtpeft.tasks.document import Fragment
from mtpeft.tasks.encoding.windows import merge_owned
from mtpeft.tasks.features import Features, TokenRange


@dataclass
class TokenizedText:
    """A document's tokens: ids, raw character offsets and whitespace-trimmed cores."""

    text: str
    input_ids: list[int]
    offsets: list[tuple[int, int]]
    cores: list[tuple[int, int]]  # (start, start) when the token is whitespace only
    _ends: list[int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._ends = [end for _, end in self.offsets]

    def __len__(self) -> int:
        return len(self.input_ids)

    def has_core(self, i: int) -> bool:
        return self.cores[i][1] > self.cores[i][0]

    def char_span_to_tokens(self, start: int, end: int) -> TokenRange | None:
        """The tokens ``(first, last)`` (inclusive) a character fragment covers, or ``None``.

        A token is covered when its core overlaps ``[start, end)``, or when it is whitespace
        only and lies inside it. ``None`` when no token qualifies (a fragment of whitespace).
        """
        first = bisect_right(self._ends, start)  # first token that ends after `start`
        covered = []
        for i in range(first, len(self.offsets)):
            raw_start, raw_end = self.offsets[i]
            if raw_start >= end:
                break
            core_start, core_end = self.cores[i]
            if core_end > core_start:
                if core_start < end and start < core_end:
                    covered.append(i)
            elif start <= raw_start and raw_end <= end:
                covered.append(i)
        return (covered[0], covered[-1]) if covered else None

    def tokens_to_char_span(self, first: int, last: int) -> Fragment:
        """The character fragment of tokens ``first..last`` (inclusive): core start of the first
        token to core end of the last, raw offsets for a whitespace-only end token."""
        start = self.cores[first][0] if self.has_core(first) else self.offsets[first][0]
        end = self.cores[last][1] if self.has_core(last) else self.offsets[last][1]
        return start, end


def _core(text: str, start: int, end: int) -> tuple[int, int]:
    piece = text[start:end]
    stripped = piece.lstrip()
    if not stripped:
        return start, start
    core_start = start + len(piece) - len(stripped)
    return core_start, core_start + len(stripped.rstrip())


def tokenize(text: str, tokenizer: object) -> TokenizedText:
    """Tokenize ``text`` without special tokens, keeping the offset mapping.

    ``tokenizer`` must be a fast (Rust) Hugging Face tokenizer: slow ones have no offset mapping.
    """
    if not getattr(tokenizer, "is_fast", False):
        raise TypeError(f"{type(tokenizer).__name__} is not a fast tokenizer; offsets need a fast tokenizer")
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    return tokenized_from(text, list(encoded["input_ids"]), encoded["offset_mapping"])


def tokenized_from(text: str, input_ids: list[int], offsets: Sequence[tuple[int, int]]) -> TokenizedText:
    """A :class:`TokenizedText` from ids and raw offsets (e.g. the owned tokens of merged windows)."""
    pairs = [(int(s), int(e)) for s, e in offsets]
    if len(pairs) != len(input_ids):
        raise ValueError(f"{len(pairs)} offsets for {len(input_ids)} tokens")
    return TokenizedText(text=text, input_ids=input_ids, offsets=pairs, cores=[_core(text, s, e) for s, e in pairs])


def fragments_to_token_set(tokens: TokenizedText, spans: tuple[Fragment, ...]) -> tuple[frozenset[int], bool]:
    """All tokens of a mention's fragments, and whether every fragment maps back exactly.

    Exact means ``tokens_to_char_span`` of each fragment's tokens gives the fragment again:
    a mention that starts or ends inside a token (``pain`` in ``painful``) is not exact.
    """
    covered: set[int] = set()
    exact = True
    for start, end in spans:
        rng = tokens.char_span_to_tokens(start, end)
        if rng is None:
            exact = False
            continue
        covered.update(range(rng[0], rng[1] + 1))
        exact = exact and tokens.tokens_to_char_span(*rng) == (start, end)
    return frozenset(covered), exact


def runs(token_set: frozenset[int] | set[int]) -> list[TokenRange]:
    """Maximal runs of consecutive token indices, as inclusive ranges, in order."""
    out: list[TokenRange] = []
    for i in sorted(token_set):
        if out and out[-1][1] == i - 1:
            out[-1] = (out[-1][0], i)
        else:
            out.append((i, i))
    return out


def token_set_to_fragments(tokens: TokenizedText, token_set: frozenset[int] | set[int]) -> tuple[Fragment, ...]:
    """Character fragments of a set of tokens: one per maximal run of consecutive tokens."""
    return tuple(tokens.tokens_to_char_span(a, b) for a, b in runs(token_set))


def merged_tokens(text: str, windows: Sequence[Features]) -> TokenizedText:
    """The document's tokens rebuilt from its windows (in order): the owned part of each."""
    owned = [f.owned for f in windows]
    ids = merge_owned(owned, [f.input_ids for f in windows])
    return tokenized_from(text, ids, merge_owned(owned, [f.token_offsets for f in windows]))
