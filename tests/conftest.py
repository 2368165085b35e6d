"""Fixtures shared by the whole test suite."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tokenizer():
    """The embedded SmolLM2-135M tokenizer (fast, with offset mapping), loaded once per session."""
    from mtpeft.backbone.loading import load_tokenizer

    return load_tokenizer("embedded")
