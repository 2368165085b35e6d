"""Lexicons for CUI normalisation: normalised mention text -> UMLS CUI.

Two sources, both mapping a *normalised* text (:func:`normalise_text`) to a CUI or ``CUI-less``:

* the training lexicon, built from the gold mentions of the training documents only (the text of
  a mention is its fragments joined by one space), keeping for each text how often each CUI
  annotated it; a lookup returns the most frequent (ties: the CUI seen first in reading order);
* an optional user lexicon, a UTF-8 TSV file of ``text<TAB>CUI`` lines (a UMLS-derived list a
  user with a licence builds; nothing licensed ships with mtpeft). Blank lines and lines starting
  with ``#`` are not entries; every other line must be one entry, or reading stops with an error
  naming the file, the line and what was expected. A text listed with several CUIs keeps the
  first one listed (a user orders them by preference).

Written by hand: exact-match dictionaries are a few lines, and no maintained library reads a
plain ``text<TAB>CUI`` file (QuickUMLS and scispaCy's linker need the licensed UMLS release).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from mtpeft.errors import FormatError, Location
from mtpeft.tasks.document import Document, Fragment, Mention

CUI_LESS = "CUI-less"
CUI_PATTERN = re.compile(r"C\d{7}")
_SPACE = re.compile(r"\s+")
_EDGE_PUNCTUATION = " \t.,;:!?\"'()[]{}"


def is_cui(value: str) -> bool:
    """Whether ``value`` is a UMLS CUI (``C`` + 7 digits) or ``CUI-less``."""
    return value == CUI_LESS or CUI_PATTERN.fullmatch(value) is not None


def normalise_text(text: str) -> str:
    """The key a lexicon is looked up by: lower-cased, runs of whitespace made one space,
    punctuation at both ends removed (``"Chest  Pain."`` -> ``"chest pain"``)."""
    return _SPACE.sub(" ", text.lower()).strip(_EDGE_PUNCTUATION)


def mention_text(text: str, spans: Sequence[Fragment]) -> str:
    """The normalised text of a mention: its fragments joined by one space."""
    return normalise_text(" ".join(text[start:end] for start, end in spans))


class Lexicon:
    """Normalised text -> CUI counts; :meth:`lookup` gives the preferred CUI of a text."""

    def __init__(self, source: str) -> None:
        self.source = source
        self._counts: dict[str, Counter[str]] = {}

    def add(self, text: str, cui: str, count: int = 1) -> None:
        """Count ``cui`` once more for ``text`` (already normalised)."""
        self._counts.setdefault(text, Counter())[cui] += count

    def lookup(self, text: str) -> str | None:
        """The most frequent CUI of the normalised ``text`` (ties: the first seen), or ``None``."""
        counts = self._counts.get(text)
        if not counts:
            return None
        return counts.most_common(1)[0][0]  # Counter keeps insertion order among equal counts

    def __contains__(self, text: str) -> bool:
        return text in self._counts

    def __len__(self) -> int:
        return len(self._counts)

    def ambiguous(self) -> int:
        """How many texts carry more than one CUI."""
        return sum(len(c) > 1 for c in self._counts.values())

    def entries(self) -> dict[str, dict[str, int]]:
        """``{text: {cui: count}}`` (a copy), for reports and tests."""
        return {text: dict(counts) for text, counts in self._counts.items()}

    @classmethod
    def from_documents(cls, documents: Iterable[Document], source: str = "training data") -> Lexicon:
        """The training lexicon: every gold mention's normalised text -> its CUI (documents
        without text are skipped: their mentions have no text to match)."""
        lexicon = cls(source)
        for doc in documents:
            if doc.text is None:
                continue
            for mention in doc.mentions:
                text = mention_text(doc.text, mention.spans)
                if text:
                    lexicon.add(text, mention_cui(mention))
        return lexicon


def mention_cui(mention: Mention) -> str:
    """A gold mention's CUI (``CUI-less`` when the reader gave none)."""
    return mention.attributes.get("CUI", CUI_LESS)


def read_lexicon(path: str | Path) -> Lexicon:
    """A user lexicon from a ``text<TAB>CUI`` file (see the module docstring).

    Raises :class:`~mtpeft.errors.FormatError` naming the file and line of the first bad entry:
    a line without a tab (or with more than one), an empty text, a CUI that is neither ``C`` + 7
    digits nor ``CUI-less``; and for a missing or undecodable file.
    """
    path = Path(path)
    if not path.is_file():
        raise FormatError(Location(str(path)), "the lexicon file does not exist", "a text<TAB>CUI file")
    try:
        content = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise FormatError(Location(str(path)), f"not UTF-8 ({err.reason} at byte {err.start})", "a UTF-8 file") from None
    lexicon = Lexicon(str(path))
    for number, line in enumerate(content.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        loc = Location(str(path), line=number)
        fields = line.split("\t")
        if len(fields) != 2:
            found = "no tab" if len(fields) == 1 else f"{len(fields) - 1} tabs"
            raise FormatError(loc, f"{found} in {line[:60]!r}", "one entry per line: text<TAB>CUI")
        text, cui = normalise_text(fields[0]), fields[1].strip()
        if not text:
            raise FormatError(loc, f"empty text {fields[0]!r}", "the mention text before the tab")
        if not is_cui(cui):
            raise FormatError(loc, f"unknown CUI {cui!r}", f"a UMLS CUI (C + 7 digits) or {CUI_LESS!r} after the tab")
        if text not in lexicon:  # the first CUI listed for a text is the user's preferred one
            lexicon.add(text, cui)
    return lexicon
