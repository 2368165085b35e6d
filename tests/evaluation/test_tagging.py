"""seqeval entity P/R/F1 of tag sequences, by hand."""

from __future__ import annotations

import pytest

from mtpeft.evaluation.metrics.tagging import entity_scores


def test_entity_scores_by_hand() -> None:
    gold = [["B-DIS", "I-DIS", "O", "B-DIS", "O"], ["O", "B-TEC", "I-TEC"]]
    pred = [["B-DIS", "I-DIS", "O", "O", "O"], ["O", "B-TEC", "O"]]
    scores = entity_scores(gold, pred)
    # gold entities: DIS 0-1, DIS 3, TEC 1-2; predicted: DIS 0-1, TEC 1; only DIS 0-1 is right
    assert scores["precision"] == pytest.approx(1 / 2)
    assert scores["recall"] == pytest.approx(1 / 3)
    assert scores["f1"] == pytest.approx(2 * (1 / 2) * (1 / 3) / (1 / 2 + 1 / 3))
    assert scores["f1:DIS"] == pytest.approx(2 * 1 * (1 / 2) / (1 + 1 / 2))  # P 1/1, R 1/2
    assert scores["f1:TEC"] == 0.0


def test_strict_mode_rejects_chunks_that_start_with_i() -> None:
    gold, pred = [["B-DIS", "I-DIS", "O"]], [["I-DIS", "I-DIS", "O"]]
    assert entity_scores(gold, pred)["f1"] == 1.0  # conlleval: I- after O opens the chunk
    assert entity_scores(gold, pred, strict=True)["f1"] == 0.0  # IOB2: not a valid chunk


def test_length_mismatches_are_named() -> None:
    with pytest.raises(ValueError, match="sentence 1: 2 gold tags but 1 predicted"):
        entity_scores([["O"], ["O", "O"]], [["O"], ["O"]])
    with pytest.raises(ValueError, match="unknown tagging scheme"):
        entity_scores([["O"]], [["O"]], strict=True, scheme="BIO9")
