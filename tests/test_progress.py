"""Progress: a one-line bar with the real tokens/s on a terminal, nothing (the trainer's lines) elsewhere."""

from __future__ import annotations

import io
import logging
import sys

import pytest

from mtpeft.progress import PredictionProgress, TrainingProgress, bars_enabled


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def terminal(monkeypatch):
    """Makes stderr a terminal when called (inside the test: pytest swaps stderr between phases)."""
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    logger = logging.getLogger("mtpeft")
    level = logger.level
    logger.setLevel(logging.INFO)

    def make() -> _Terminal:
        stream = _Terminal()
        monkeypatch.setattr(sys, "stderr", stream)
        return stream

    yield make
    logger.setLevel(level)


def test_no_bar_without_a_terminal(monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert not bars_enabled()
    progress = TrainingProgress(10)
    progress.step({"loss": 1.0, "tokens": 100, "tokens_per_s": 50.0})
    assert not progress.shown and sys.stderr.getvalue() == ""


def test_the_training_bar_shows_steps_loss_and_real_tokens_per_second(terminal):
    terminal = terminal()
    assert bars_enabled()
    progress = TrainingProgress(4, initial=1)
    assert progress.shown
    with progress.shown_above():
        logging.getLogger("mtpeft.training").info("evaluating on dev at step 2")
        progress.step({"loss": 0.5, "tokens": 300, "tokens_per_s": 100.0})  # 3 s
        progress.step({"loss": 0.25, "tokens": 100, "tokens_per_s": 100.0})  # 1 s: 400 tokens in 4 s
        progress.step(None)  # a skipped step still counts
    progress.close()
    text = terminal.getvalue()
    assert "evaluating on dev at step 2" in text
    assert "4/4" in text and "loss 0.2500, 100 real tokens/s" in text


def test_the_prediction_bar_is_transient(terminal):
    terminal = terminal()
    progress = PredictionProgress(3, "predicting semeval2017t3")
    progress.update(2, 50)
    progress.update(1, 25)
    progress.close()
    assert "predicting semeval2017t3" in terminal.getvalue()
