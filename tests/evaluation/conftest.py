"""Fixtures of the evaluation tests: where the real SemEval files are, and tiny document builders."""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from mtpeft.tasks.document import Candidate, Document, Mention


def _shared_data_dir() -> Path:
    try:  # the project's own helper, when it exists
        return Path(importlib.import_module("mtpeft.testing").shared_data_dir())
    except (ImportError, AttributeError):
        default = Path(__file__).resolve().parents[3] / "shared" / "data"
        return Path(os.environ.get("MTPEFT_SHARED_DATA", default))


@pytest.fixture
def shared_data() -> Path:
    """The folder of real official files (``../shared/data``); skips the test when it is absent."""
    path = _shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"real SemEval data not found at {path} (set MTPEFT_SHARED_DATA)")
    return path


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
