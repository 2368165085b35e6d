"""CUI normalisation of disorder mentions (2014 T7 Task B, 2015 T14 Task 1): lexicons, the
classifier's classes and the choice of a CUI per predicted mention. The classifier itself is a
part of the token and span heads (:mod:`mtpeft.heads.normalisation`)."""

from mtpeft.tasks.normalisation.lexicon import (
    CUI_LESS,
    Lexicon,
    is_cui,
    mention_cui,
    mention_text,
    normalise_text,
    read_lexicon,
)
from mtpeft.tasks.normalisation.normaliser import OTHER, SOURCES, CuiNormaliser, CuiVocabulary, pooled_logits

__all__ = [
    "CUI_LESS",
    "OTHER",
    "SOURCES",
    "CuiNormaliser",
    "CuiVocabulary",
    "Lexicon",
    "is_cui",
    "mention_cui",
    "mention_text",
    "normalise_text",
    "pooled_logits",
    "read_lexicon",
]
