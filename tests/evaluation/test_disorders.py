"""2015 T14 (the official Perl scripts' counting) and 2014 T7 (the task definitions), by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from mtpeft.errors import FormatError
from mtpeft.evaluation.metrics.disorders import semeval2014_scores, semeval2015_scores
from mtpeft.evaluation.score import score


def _counts(scores: dict[str, float], prefix: str) -> tuple[int, int, int]:
    return tuple(int(scores[f"{prefix}_{name}"]) for name in ("tp", "fp", "fn"))  # type: ignore[return-value]


def test_2015_task1_strict_and_relaxed_by_hand(make_doc) -> None:
    gold = [make_doc("d1",
                     ("D", [(10, 20)], {"CUI": "C1"}),
                     ("D", [(30, 40), (50, 55)], {"CUI": "C2"}),
                     ("D", [(70, 80)], {"CUI": "C1"}))]
    pred = [make_doc("d1",
                     ("D", [(10, 20)], {"CUI": "C1"}),             # P1 = G1 exactly
                     ("D", [(30, 40), (50, 55)], {"CUI": "C9"}),   # P2: G2's spans, wrong CUI
                     ("D", [(72, 78)], {"CUI": "C1"}),             # P3 inside G3
                     ("D", [(75, 79)], {"CUI": "C1"}),             # P4 inside G3 too
                     ("D", [(80, 85)], {"CUI": "C1"}),             # P5 touches G3's end (80 <= 80)
                     ("D", [(90, 95)], {"CUI": "C1"}))]            # P6 overlaps nothing
    scores = semeval2015_scores(gold, pred)
    # strict (spans and CUI): only G1; P2..P6 are FP; G2, G3 are FN
    assert _counts(scores, "strict") == (1, 5, 2)
    # relaxed: G1 exact; G3 takes P3, P4, P5 (touching counts), one TP and two FP;
    # P2 (CUI differs) and P6 stay FP; G2 is FN
    assert _counts(scores, "relaxed") == (2, 4, 1)
    assert scores["relaxed_precision"] == pytest.approx(2 / 6)
    assert scores["relaxed_recall"] == pytest.approx(2 / 3)
    assert scores["relaxed_f1"] == pytest.approx(2 * (2 / 6) * (2 / 3) / (2 / 6 + 2 / 3))
    # spans only (task2_eval.pl): G1 and G2 exact; G3 takes P3-P5 (1 TP, 2 FP); P6 FP
    assert _counts(scores, "span_strict") == (2, 4, 1)
    assert _counts(scores, "span_relaxed") == (3, 3, 0)
    assert scores["span_relaxed_f1"] == pytest.approx(2 * 0.5 * 1.0 / 1.5)


def test_2015_an_exactly_matched_gold_absorbs_one_more_overlap(make_doc) -> None:
    gold = [make_doc("d", ("D", [(10, 20)], {"CUI": "C1"}))]
    pred = [make_doc("d", ("D", [(10, 20)], {"CUI": "C1"}), ("D", [(12, 15)], {"CUI": "C1"}))]
    scores = semeval2015_scores(gold, pred)
    assert _counts(scores, "strict") == (1, 1, 0)
    # relaxed: the exact pass matches 10-20; the overlap pass then lets the same gold
    # disorder take 12-15 as its (single) overlap, so it is not a FP -- as in the script
    assert _counts(scores, "relaxed") == (1, 0, 0)


def test_2015_repeated_spans_are_one_disorder_and_cuis_ignore_case(make_doc) -> None:
    gold = [make_doc("d", ("D", [(10, 20)], {"CUI": "C1"}), ("D", [(10, 20)], {"CUI": "C0000002"}))]
    pred = [make_doc("d", ("D", [(10, 20)], {"CUI": "c0000002"}))]
    # the second gold line overwrites the first (same spans): one disorder with CUI C0000002
    assert _counts(semeval2015_scores(gold, pred), "strict") == (1, 0, 0)


def test_2015_predictions_in_documents_without_gold_are_ignored(make_doc) -> None:
    gold = [make_doc("d1", ("D", [(0, 5)], {"CUI": "C1"})), make_doc("d2")]
    pred = [make_doc("d1", ("D", [(0, 5)], {"CUI": "C1"})), make_doc("d2", ("D", [(0, 5)], {"CUI": "C1"}))]
    scores = semeval2015_scores(gold, pred)
    assert _counts(scores, "strict") == (1, 0, 0)  # d2's disorder is neither TP nor FP
    assert scores["ignored_predictions"] == 1.0


def test_2014_strict_relaxed_and_cui_accuracy_by_hand(make_doc) -> None:
    gold = [make_doc("d",
                     ("D", [(0, 5)], {"CUI": "C1"}),
                     ("D", [(10, 20)], {"CUI": "C2"}),
                     ("D", [(30, 35), (40, 45)], {"CUI": "C3"}))]
    pred = [make_doc("d",
                     ("D", [(0, 5)], {"CUI": "C1"}),              # exact, right CUI
                     ("D", [(12, 18)], {"CUI": "C2"}),            # inside G2: shares 6 chars
                     ("D", [(14, 25)], {"CUI": "C2"}),            # also G2: shares 6 chars
                     ("D", [(30, 35), (40, 45)], {"CUI": "C9"}))]  # exact, wrong CUI
    scores = semeval2014_scores(gold, pred)
    # strict: G1 and G3 matched -> TP 2, FP 4 - 2 = 2, FN 1
    assert _counts(scores, "strict") == (2, 2, 1)
    assert (scores["strict_precision"], scores["strict_recall"]) == (pytest.approx(0.5), pytest.approx(2 / 3))
    # relaxed, one-to-one: G2 takes one of 12-18 / 14-25 (tie: the earlier); the other is FP
    assert _counts(scores, "relaxed") == (3, 1, 0)
    assert scores["relaxed_f1"] == pytest.approx(2 * 0.75 * 1.0 / 1.75)
    # CUIs over the strict pairs: G1 right, G3 wrong -> 1 correct
    assert scores["cui_accuracy_strict"] == pytest.approx(1 / 3)  # / 3 gold disorders
    assert scores["cui_accuracy_relaxed"] == pytest.approx(1 / 2)  # / 2 strictly matched


def test_2014_one_prediction_over_two_gold_disorders_counts_once(make_doc) -> None:
    gold = [make_doc("d", ("D", [(0, 10)]), ("D", [(20, 30)]))]
    scores = semeval2014_scores(gold, [make_doc("d", ("D", [(5, 25)]))])
    assert _counts(scores, "relaxed") == (1, 0, 1)
    assert "cui_accuracy_strict" not in scores  # no CUI predicted


def test_2014_discontiguous_spans_must_match_every_fragment(make_doc) -> None:
    gold = [make_doc("d", ("D", [(0, 4), (10, 14)]))]
    scores = semeval2014_scores(gold, [make_doc("d", ("D", [(0, 4)]))])
    assert _counts(scores, "strict") == (0, 1, 1)
    assert _counts(scores, "relaxed") == (1, 0, 0)


# --- score() on official-format folders (the corpora are licensed: synthetic files here) ------


def _note(folder: Path, name: str, lines: list[str], text: str | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.pipe").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    if text is not None:
        (folder / f"{name}.txt").write_text(text, encoding="utf-8")


def test_score_2014_folders_without_note_text(tmp_path: Path) -> None:
    text = "x" * 100
    _note(tmp_path / "gold", "n1", ["n1.txt||Disease_Disorder||C0000001||0||5",
                                    "n1.txt||Disease_Disorder||CUI-less||10||14||20||24"], text)
    _note(tmp_path / "gold", "n2", [], text)
    _note(tmp_path / "pred", "n1", ["n1.txt||Disease_Disorder||C0000001||0||5",
                                    "n1.txt||Disease_Disorder||CUI-less||10||14"])
    _note(tmp_path / "pred", "n2", ["n2.txt||Disease_Disorder||CUI-less||50||60"])
    scores = score("semeval2014t7", tmp_path / "gold", tmp_path / "pred")
    # strict: 0-5 only (TP 1); FP: 10-14 and n2's 50-60; FN: the discontiguous gold disorder
    assert (scores["strict_precision"], scores["strict_recall"]) == (pytest.approx(1 / 3), pytest.approx(1 / 2))
    # relaxed: 10-14 overlaps 10-14;20-24 -> TP 2, FP 1 (n2), FN 0
    assert (scores["relaxed_precision"], scores["relaxed_recall"]) == (pytest.approx(2 / 3), 1.0)
    assert scores["cui_accuracy_strict"] == pytest.approx(1 / 2)


def test_score_2015_reads_task1_three_field_lines(tmp_path: Path) -> None:
    full = "|".join(["n1.txt", "0-5", "C0000001", "no", "null", "patient", "null", "no", "null", "unmarked", "null",
                     "unmarked", "null", "false", "null", "false", "null", "NULL", "null"])
    _note(tmp_path / "gold", "n1", [full, "n1.txt|10-14,20-24|CUI-less"])
    _note(tmp_path / "pred", "n1", ["n1.txt|0-5|C0000001|", "n1.txt|20-30|CUI-less|"])
    scores = score("semeval2015t14", tmp_path / "gold", tmp_path / "pred")
    assert _counts(scores, "strict") == (1, 1, 1)
    assert _counts(scores, "relaxed") == (2, 0, 0)  # 20-30 overlaps the second fragment 20-24


def test_score_disorder_folders_name_missing_and_unknown_notes(tmp_path: Path) -> None:
    _note(tmp_path / "gold", "n1", ["n1.txt|0-5|C0000001"])
    _note(tmp_path / "gold", "n2", ["n2.txt|0-5|C0000001"])
    _note(tmp_path / "pred", "n1", ["n1.txt|0-5|C0000001"])
    with pytest.raises(FormatError, match="no prediction for 1 gold document.*'n2'"):
        score("semeval2015t14", tmp_path / "gold", tmp_path / "pred")
    _note(tmp_path / "pred", "n2", [])
    _note(tmp_path / "pred", "n3", [])
    with pytest.raises(FormatError, match="not in the gold.*'n3'"):
        score("semeval2015t14", tmp_path / "gold", tmp_path / "pred")
    _note(tmp_path / "bad", "n1", ["n1.txt|5-0|C0000001"])
    with pytest.raises(FormatError, match=r"n1\.pipe:1"):
        score("semeval2015t14", tmp_path / "gold", tmp_path / "bad")
