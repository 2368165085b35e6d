"""SemEval-2017 T3 subtask A: ev.py's MAP, AvgRec, MRR and classification scores."""

from __future__ import annotations

from pathlib import Path

import pytest

from mtpeft.errors import FormatError
from mtpeft.evaluation.metrics.ranking import ranking_scores
from mtpeft.evaluation.score import score
from mtpeft.tasks.document import Candidate, Document


def _gold(qid: str, labels: list[str]) -> Document:
    return Document(id=qid, text=None, candidates=[Candidate(f"{qid}_C{i}", "", label) for i, label in enumerate(labels, 1)])


def _pred(qid: str, rows: list[tuple[float, str]]) -> Document:
    return Document(
        id=qid, text=None, candidates=[Candidate(f"{qid}_C{i}", "", label, score) for i, (score, label) in enumerate(rows, 1)]
    )


def test_three_questions_by_hand() -> None:
    gold = [
        _gold("Q1", ["Bad", "Good", "PotentiallyUseful", "Good"]),
        _gold("Q2", ["Good", "Bad"]),
        _gold("Q3", ["Bad", "PotentiallyUseful"]),  # no Good comment
    ]
    pred = [
        _pred("Q1", [(0.9, "true"), (0.5, "false"), (0.5, "true"), (0.7, "true")]),
        _pred("Q2", [(0.1, "true"), (0.1, "false")]),
        _pred("Q3", [(0.3, "false"), (0.2, "false")]),
    ]
    scores = ranking_scores(gold, pred)
    # Q1 ranked C1(.9) C4(.7) C2(.5) C3(.5) -- the tie keeps file order -> F T T F
    #   AP = (1/2 + 2/3) / 2 hits = 7/12; first hit at rank 2 -> RR 1/2
    # Q2 tie keeps C1 first -> T F: AP = 1, RR = 1.   Q3: no Good -> AP = 0, RR = 0
    assert scores["map"] == pytest.approx((7 / 12 + 1 + 0) / 3)
    assert scores["map_ignore_noanswer"] == pytest.approx((7 / 12 + 1) / 2)
    assert scores["mrr"] == pytest.approx((1 / 2 + 1 + 0) / 3)
    # AvgRec: Goods found in the top k over all questions: k=1: 1 (Q2), k=2: 2, k>=3: 3
    #   findable sum of min(k, #Good): k=1: 1+1 = 2, k>=2: 2+1 = 3
    #   recalls 1/2, 2/3, then 1 eight times; mean over k = 1..10
    assert scores["avg_rec"] == pytest.approx((1 / 2 + 2 / 3 + 8 * 1) / 10)
    assert scores["avg_rec_ignore_noanswer"] == pytest.approx(scores["avg_rec"])
    # labels (gold, predicted): tt = Q1C4, Q2C1; tf = Q1C2; ft = Q1C1, Q1C3; ff = Q2C2, Q3C1, Q3C2
    assert scores["accuracy"] == pytest.approx(5 / 8)
    assert scores["precision"] == pytest.approx(2 / 4)
    assert scores["recall"] == pytest.approx(2 / 3)
    assert scores["f1"] == pytest.approx(2 * (1 / 2) * (2 / 3) / (1 / 2 + 2 / 3))
    assert (scores["questions"], scores["questions_with_good"]) == (3.0, 2.0)


def test_only_the_top_ten_count_and_ap_divides_by_hits_found() -> None:
    labels = ["Good"] + ["Bad"] * 9 + ["Good"]  # Goods end up at ranks 1 and 11
    scores_desc = [(float(11 - i), "false") for i in range(11)]
    scores = ranking_scores([_gold("Q", labels)], [_pred("Q", scores_desc)])
    # one hit in the top 10, precision 1/1 there: AP = 1 (not 1/2: ev.py divides by hits found)
    assert scores["map"] == pytest.approx(1.0)
    # AvgRec: found 1 at every k; findable min(k, 2): 1 then 2 -> (1 + 9 * 1/2) / 10
    assert scores["avg_rec"] == pytest.approx((1 + 9 * 0.5) / 10)
    late = ranking_scores([_gold("Q", ["Bad"] * 10 + ["Good"])], [_pred("Q", scores_desc)])
    assert (late["map"], late["mrr"], late["map_ignore_noanswer"]) == (0.0, 0.0, 0.0)


def test_comment_ids_and_labels_are_checked() -> None:
    gold = [_gold("Q1", ["Good", "Bad"])]
    with pytest.raises(FormatError, match="comment ids differ.*Q1_C2"):
        ranking_scores(gold, [_pred("Q1", [(1.0, "true")])])
    with pytest.raises(FormatError, match="relevance label 'maybe'"):
        ranking_scores(gold, [_pred("Q1", [(1.0, "maybe"), (0.0, "false")])])
    with pytest.raises(FormatError, match="no usable score"):
        ranking_scores(gold, [_pred("Q1", [(float("nan"), "true"), (0.0, "false")])])


# --- the real official file ----------------------------------------------------------------


def _xml_gold(shared_data: Path) -> Path:
    return shared_data / "semeval2017t3" / "SemEval2016-Task3-CQA-QL-train-part2-subtaskA.xml"


def _threads(path: Path) -> list[tuple[str, list[tuple[str, bool]]]]:
    """(qid, [(cid, is_good)]) from the XML, parsed here independently of the format reader."""
    import xml.etree.ElementTree as ElementTree

    threads = []
    for thread in ElementTree.parse(path).getroot().iter("Thread"):
        qid = thread.find("RelQuestion").get("RELQ_ID")
        comments = [(c.get("RELC_ID"), c.get("RELC_RELEVANCE2RELQ") == "Good") for c in thread.iter("RelComment")]
        threads.append((qid, comments))
    return threads


def _write_ev(rows: list[tuple[str, str, float, bool]], path: Path) -> Path:
    path.write_text("".join(f"{q}\t{c}\t0\t{s!r}\t{'true' if t else 'false'}\n" for q, c, s, t in rows), encoding="utf-8")
    return path


def test_perfect_ranking_of_the_real_file(shared_data: Path, tmp_path: Path) -> None:
    threads = _threads(_xml_gold(shared_data))
    rows = [(q, c, 1.0 if good else 0.0, good) for q, comments in threads for c, good in comments]
    scores = score("semeval2017t3", _xml_gold(shared_data), _write_ev(rows, tmp_path / "perfect.pred"))
    with_good = sum(1 for _, comments in threads if any(good for _, good in comments))
    # every answered question has AP = RR = 1; the others count 0 unless ignored
    assert scores["map_ignore_noanswer"] == pytest.approx(1.0)
    assert scores["map"] == pytest.approx(with_good / len(threads))
    assert scores["mrr"] == pytest.approx(with_good / len(threads))
    assert scores["avg_rec"] == pytest.approx(1.0)
    assert (scores["accuracy"], scores["precision"], scores["recall"], scores["f1"]) == (1.0, 1.0, 1.0, 1.0)
    # the same predictions against a .relevancy gold written from the XML score the same
    relevancy = _write_ev([(q, c, 0.0, good) for q, comments in threads for c, good in comments], tmp_path / "g.relevancy")
    assert score("semeval2017t3", relevancy, tmp_path / "perfect.pred") == scores


def test_one_bad_comment_promoted_above_the_good_ones(shared_data: Path, tmp_path: Path) -> None:
    threads = _threads(_xml_gold(shared_data))
    rows, expected_ap, expected_rr = [], [], []
    for qid, comments in threads:
        goods = [c for c, good in comments if good]
        others = [c for c, good in comments if not good]
        promoted = others[0] if others and goods else None
        for cid, good in comments:
            rank_score = 2.0 if cid == promoted else (1.0 if good else 0.0)
            rows.append((qid, cid, rank_score, True))  # every comment predicted "true"
        if not goods:
            expected_ap.append(0.0)
            expected_rr.append(0.0)
        elif promoted is None:  # all comments Good: perfect
            expected_ap.append(1.0)
            expected_rr.append(1.0)
        else:  # Goods sit at ranks 2 .. g+1; only those within the top 10 count
            hits = min(len(goods), 9)
            expected_ap.append(sum(j / (j + 1) for j in range(1, hits + 1)) / hits)
            expected_rr.append(1 / 2)
    scores = score("semeval2017t3", _xml_gold(shared_data), _write_ev(rows, tmp_path / "pred"))
    assert scores["map"] == pytest.approx(sum(expected_ap) / len(threads))
    assert scores["mrr"] == pytest.approx(sum(expected_rr) / len(threads))
    n_good = sum(good for _, comments in threads for _, good in comments)
    n_all = sum(len(comments) for _, comments in threads)
    # everything predicted true: accuracy = precision = share of Good, recall = 1
    assert scores["accuracy"] == pytest.approx(n_good / n_all)
    assert scores["precision"] == pytest.approx(n_good / n_all)
    assert scores["recall"] == pytest.approx(1.0)


def test_a_missing_comment_line_is_an_error(shared_data: Path, tmp_path: Path) -> None:
    threads = _threads(_xml_gold(shared_data))
    rows = [(q, c, 0.0, False) for q, comments in threads for c, _ in comments][1:]
    with pytest.raises(FormatError, match="comment ids differ"):
        score("semeval2017t3", _xml_gold(shared_data), _write_ev(rows, tmp_path / "pred"))
