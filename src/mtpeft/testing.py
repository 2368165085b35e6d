"""Helpers for tests: where the real SemEval files are, and a comparable view of annotations.

The real files (``../shared/data`` next to the repository, or ``$MTPEFT_SHARED_DATA``) are never
copied into the repository; tests that need them skip with a message saying where they looked.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from mtpeft.tasks.document import Document

ENV_VAR = "MTPEFT_SHARED_DATA"
_DEFAULT = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def shared_data_dir() -> Path | None:
    """The folder of real data (``$MTPEFT_SHARED_DATA``, default ``<repo>/../shared/data``), or ``None``."""
    configured = os.environ.get(ENV_VAR)
    path = Path(configured) if configured else _DEFAULT
    return path.resolve() if path.is_dir() else None


def require_shared_data(sub: str) -> Path:
    """``shared_data_dir() / sub``, or ``pytest.skip`` with a message naming what is missing."""
    import pytest  # only tests call this; pytest is not a runtime dependency

    base = shared_data_dir()
    if base is None:
        where = os.environ.get(ENV_VAR) or str(_DEFAULT.resolve())
        pytest.skip(f"real data folder not found at {where} (set {ENV_VAR} to its location)")
    path = base / sub
    if not path.exists():
        pytest.skip(f"real data {sub!r} not found under {base}")
    return path


def annotations_of(documents: Iterable[Document]) -> list[tuple]:
    """A comparable, id-independent view of documents' annotations, for round-trip tests.

    Mentions become ``(spans, label, attributes)`` (sorted); relations refer to their ends by
    those keys instead of by id; candidates keep order, id, text, label, score and attributes.
    Mention ids are left out because formats without ids (``.pipe``) number them by line.
    """
    view = []
    for doc in documents:
        key = {m.id: (m.spans, m.label, tuple(sorted(m.attributes.items()))) for m in doc.mentions}
        relations = sorted(
            (r.label, key.get(r.source, r.source), key.get(r.target, r.target), tuple(sorted(r.attributes.items())))
            for r in doc.relations
        )
        candidates = [(c.id, c.text, c.label, c.score, tuple(sorted(c.attributes.items()))) for c in doc.candidates]
        attributes = tuple(sorted(doc.attributes.items()))
        view.append((doc.id, doc.text, sorted(key.values()), relations, candidates, attributes))
    return view
