"""CUI normalisation of predicted disorders: the classifier's classes, its targets, and the choice
of one CUI per mention from the classifier and the lexicons.

A task that normalises (2014 T7, 2015 T14 by default) owns one :class:`CuiNormaliser`:

* :meth:`CuiNormaliser.fit` runs when the task is built from a config with a training path
  (``model.build.build_task``), on the TRAINING documents only: it fixes the classifier's classes
  (:class:`CuiVocabulary`: ``CUI-less``, ``<other>``, then every training CUI seen at least
  ``min_count`` times) and builds the training lexicon. Dev and test files are never read here.
  An unfitted normaliser has only ``CUI-less`` and ``<other>`` (every CUI falls back to the
  lexicons: the user's, when given).
* encoding gives every gold mention its class id (:meth:`CuiNormaliser.target`), rarer CUIs the
  ``<other>`` class; the head trains a linear classifier over the mean of the mention's token
  states on them (:mod:`mtpeft.heads.normalisation`), in the same forward as the spans or tags.
* decoding pools the classifier's logits over each predicted mention's tokens and
  :meth:`CuiNormaliser.choose` picks the CUI: the classifier's class when its probability is at
  least ``threshold`` and it is not ``<other>``; else the training lexicon, then the user lexicon;
  else the classifier's most probable class other than ``<other>``. Each decoded mention records
  which rule chose its CUI in ``attributes["CUI_source"]`` (the official writers ignore it).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from mtpeft.errors import ConfigError
from mtpeft.tasks.document import Document, Mention
from mtpeft.tasks.normalisation.lexicon import CUI_LESS, Lexicon, mention_cui, mention_text, read_lexicon

OTHER = "<other>"
"""The class of training CUIs seen fewer than ``min_count`` times: their CUI comes from a lexicon."""

SOURCES = ("classifier", "training_lexicon", "user_lexicon", "classifier_unsure")
"""The values of ``Mention.attributes["CUI_source"]`` on decoded mentions."""


class CuiVocabulary:
    """The CUI classifier's classes: ``CUI-less`` (0), ``<other>`` (1), then the training CUIs seen
    at least ``min_count`` times, most frequent first (ties by CUI)."""

    def __init__(self, counts: Counter[str], min_count: int) -> None:
        self.counts = Counter(counts)
        self.min_count = min_count
        kept = sorted((c for c, n in counts.items() if c != CUI_LESS and n >= min_count), key=lambda c: (-counts[c], c))
        self.labels = [CUI_LESS, OTHER, *kept]
        self._index = {label: i for i, label in enumerate(self.labels)}

    def __len__(self) -> int:
        return len(self.labels)

    def class_id(self, cui: str) -> int:
        """The class of ``cui``: its own, or ``<other>`` for a CUI without one."""
        return self._index.get(cui, self._index[OTHER])

    @property
    def rare(self) -> list[str]:
        """Training CUIs below ``min_count``: they share ``<other>``."""
        return sorted(c for c in self.counts if c != CUI_LESS and c not in self._index)

    @classmethod
    def from_documents(cls, documents: Iterable[Document], min_count: int) -> CuiVocabulary:
        return cls(Counter(mention_cui(m) for d in documents for m in d.mentions), min_count)


class CuiNormaliser:
    """Classes, targets and the choice of a CUI for one task (see the module docstring)."""

    def __init__(
        self, task_id: str, min_count: int = 2, threshold: float = 0.5, lexicon: str | Path | None = None
    ) -> None:
        if not isinstance(min_count, int) or min_count < 1:
            raise ConfigError(f"task {task_id!r}: cui_min_count must be an integer >= 1, got {min_count!r}")
        if not 0.0 <= threshold <= 1.0:
            raise ConfigError(f"task {task_id!r}: cui_threshold must be in [0, 1], got {threshold!r}")
        self.task_id = task_id
        self.threshold = float(threshold)
        self.user_lexicon = read_lexicon(lexicon) if lexicon is not None else None
        self.vocabulary = CuiVocabulary(Counter(), min_count)
        self.training_lexicon = Lexicon("training data")
        self.fitted_on: int | None = None

    @property
    def min_count(self) -> int:
        return self.vocabulary.min_count

    @property
    def num_classes(self) -> int:
        return len(self.vocabulary)

    def fit(self, train_documents: Sequence[Document]) -> None:
        """Classes and training lexicon from the gold mentions of ``train_documents`` (training data only)."""
        self.vocabulary = CuiVocabulary.from_documents(train_documents, self.min_count)
        self.training_lexicon = Lexicon.from_documents(train_documents)
        self.fitted_on = len(train_documents)

    def target(self, mention: Mention) -> int:
        """The class id a gold mention trains the classifier towards."""
        return self.vocabulary.class_id(mention_cui(mention))

    def choose(self, logits: np.ndarray | None, text: str) -> tuple[str, str]:
        """``(CUI, source)`` for a mention of normalised ``text`` whose pooled classifier logits are
        ``logits`` (``None``: no classifier evidence). ``source`` is one of :data:`SOURCES`."""
        probs = None
        if logits is not None:
            shifted = np.exp(logits - logits.max())
            probs = shifted / shifted.sum()
            best = int(probs.argmax())
            if best != self.vocabulary.class_id(OTHER) and probs[best] >= self.threshold:
                return self.vocabulary.labels[best], "classifier"
        for lexicon, source in ((self.training_lexicon, "training_lexicon"), (self.user_lexicon, "user_lexicon")):
            found = lexicon.lookup(text) if lexicon is not None else None
            if found is not None:
                return found, source
        if probs is None:
            return CUI_LESS, "classifier_unsure"
        probs = probs.copy()
        probs[self.vocabulary.class_id(OTHER)] = -1.0
        return self.vocabulary.labels[int(probs.argmax())], "classifier_unsure"

    def assign(self, text: str, mention: Mention, logits: np.ndarray | None) -> None:
        """Set ``mention``'s ``CUI`` (and ``CUI_source``) from its pooled ``logits`` and its text."""
        cui, source = self.choose(logits, mention_text(text, mention.spans))
        mention.attributes["CUI"] = cui
        mention.attributes["CUI_source"] = source

    def summary(self) -> dict[str, object]:
        """What the classifier and lexicons hold (for ``data_report.json`` and ``data stats``)."""
        return {
            "classes": self.num_classes,
            "min_count": self.min_count,
            "threshold": self.threshold,
            "training_documents": self.fitted_on,
            "training_cuis": len([c for c in self.vocabulary.counts if c != CUI_LESS]),
            "rare_cuis_in_other": len(self.vocabulary.rare),
            "training_lexicon_texts": len(self.training_lexicon),
            "training_lexicon_ambiguous_texts": self.training_lexicon.ambiguous(),
            "user_lexicon": self.user_lexicon.source if self.user_lexicon is not None else None,
            "user_lexicon_texts": len(self.user_lexicon) if self.user_lexicon is not None else 0,
        }


def pooled_logits(pieces: Sequence[tuple[int, np.ndarray]]) -> np.ndarray | None:
    """The mean of per-range logits weighted by range length: ``sum n_i z_i / sum n_i``.

    Each ``z_i`` is the classifier's logits of the mean state of ``n_i`` tokens; because the
    classifier is linear, the result equals its logits of the mean state of all the tokens.
    ``None`` for no pieces.
    """
    if not pieces:
        return None
    weights = np.array([n for n, _ in pieces], dtype=np.float64)
    rows = np.stack([np.asarray(z, dtype=np.float64) for _, z in pieces])
    return (weights[:, None] * rows).sum(0) / weights.sum()
