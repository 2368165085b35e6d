"""Fixtures of the evaluation tests: where the real SemEval files are, and tiny document builders."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from mtpeft.tasks.document import Candidate, Document, Mention
from mtpeft.testing import require_shared_data


@pytest.fixture
def shared_data() -> Path:
    """The folder of real official files (``../shared/data``); skips the test when it is absent."""
    return require_shared_data("")


def _doc(doc_id: str, *mentions: tuple, candidates: list[Candidate] | None = None) -> Document:
    built = [
        Mention(id=f"m{i}", spans=tuple(m[1]), label=m[0], attributes=dict(m[2]) if len(m) > 2 else {})
        for i, m in enumerate(mentions)
    ]
    return Document(id=doc_id, text=None, mentions=built, candidates=candidates or [])


@pytest.fixture
def make_doc() -> Callable[..., Document]:
    """``make_doc("d", (label, [(s, e), ...], {attrs}), ...)``: a text-less Document with those mentions."""
    return _doc
