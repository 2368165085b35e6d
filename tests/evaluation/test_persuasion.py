"""SemEval-2021 T6 subtask 2: partial-credit span P/R/F1 on hand-made cases and on the real files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mtpeft.errors import FormatError
from mtpeft.evaluation.metrics.persuasion import persuasion_span_scores, prec_rec_f1
from mtpeft.evaluation.score import score


def test_every_same_technique_pair_earns_partial_credit(make_doc) -> None:
    gold = [
        make_doc("1", ("T1", [(0, 10)]), ("T1", [(20, 30)]), ("T2", [(0, 10)])),
        make_doc("2", ("T2", [(0, 8)])),
    ]
    pred = [
        make_doc("1", ("T1", [(5, 25)]), ("T2", [(0, 4)]), ("T1", [(40, 45)])),
        make_doc("2"),
    ]
    scores = persuasion_span_scores(gold, pred)
    # precision numerator: T1 5-25 (20 chars) shares 5 chars with 0-10 and 5 with 20-30:
    #   5/20 + 5/20 = 0.5; T2 0-4 inside T2 0-10: 4/4 = 1; T1 40-45 overlaps nothing: 0 -> 1.5
    # precision = 1.5 / 3 predicted spans = 0.5
    assert scores["precision"] == pytest.approx(0.5)
    # recall numerator: 5/10 + 5/10 + 4/10 = 1.4; 4 gold spans (doc 2's is missed) -> 0.35
    assert scores["recall"] == pytest.approx(0.35)
    # F1 = 2 * 0.5 * 0.35 / 0.85
    assert scores["f1"] == pytest.approx(0.35 / 0.85)
    assert (scores["gold_spans"], scores["pred_spans"]) == (4.0, 3.0)
    # per technique, the scorer's formula: numerator = precision credit of that technique
    # T1: 0.5 / 2 predicted = 0.25 and 0.5 / 2 gold = 0.25 -> F1 0.25
    assert scores["f1:T1"] == pytest.approx(0.25)
    # T2: 1.0 / 1 predicted = 1.0 and 1.0 / 2 gold = 0.5 -> F1 = 2 * 0.5 / 1.5
    assert scores["f1:T2"] == pytest.approx(2 * 0.5 / 1.5)


def test_a_technique_mismatch_earns_nothing(make_doc) -> None:
    scores = persuasion_span_scores([make_doc("1", ("T1", [(0, 10)]))], [make_doc("1", ("T2", [(0, 10)]))])
    assert (scores["precision"], scores["recall"], scores["f1"]) == (0.0, 0.0, 0.0)


def test_overlapping_gold_spans_against_themselves_exceed_one(make_doc) -> None:
    gold = [make_doc("1", ("T1", [(0, 10)]), ("T1", [(5, 15)]))]
    scores = persuasion_span_scores(gold, gold)
    # 0-10 vs itself 10/10, vs 5-15 5/10; 5-15 vs 0-10 5/10, vs itself 10/10: 3.0 over 2 spans
    assert scores["precision"] == pytest.approx(1.5)
    assert scores["recall"] == pytest.approx(1.5)


def test_zero_denominators_follow_the_official_rules() -> None:
    assert prec_rec_f1(0.0, 0, 0.0, 0) == (0.0, 0.0, 1.0)  # nothing to find, nothing found
    assert prec_rec_f1(0.0, 0, 0.0, 3) == (0.0, 0.0, 0.0)  # nothing predicted


def test_prediction_ids_must_equal_gold_ids(make_doc) -> None:
    gold = [make_doc("1"), make_doc("2")]
    with pytest.raises(FormatError, match="no prediction for 1 gold document id.*'2'"):
        persuasion_span_scores(gold, [make_doc("1")])
    with pytest.raises(FormatError, match="not in the gold.*'3'"):
        persuasion_span_scores(gold, [make_doc("1"), make_doc("2"), make_doc("3")])
    with pytest.raises(FormatError, match="appears twice"):
        persuasion_span_scores(gold, [make_doc("1"), make_doc("2"), make_doc("2")])


def test_unknown_technique_is_an_error_when_the_list_is_given(make_doc) -> None:
    with pytest.raises(FormatError, match="unknown technique 'T9'"):
        persuasion_span_scores([make_doc("1")], [make_doc("1", ("T9", [(0, 2)]))], techniques=["T1"])


# --- the real official files ---------------------------------------------------------------


def _write(items: list[dict], path: Path) -> Path:
    path.write_text(json.dumps(items), encoding="utf-8")
    return path


def test_dev_gold_against_itself_scores_one(shared_data: Path) -> None:
    dev = shared_data / "semeval2021t6" / "dev_set_task2.txt"
    for task, prefix in (("semeval2021t6", ""), ("semeval2021t6_level1", ""), ("semeval2021t6_level2", "oracle_span_")):
        scores = score(task, dev, dev)
        assert tuple(scores[f"{prefix}{k}"] for k in ("precision", "recall", "f1")) == (1.0, 1.0, 1.0)


def test_training_gold_against_itself_counts_its_overlapping_spans(shared_data: Path) -> None:
    train = shared_data / "semeval2021t6" / "training_set_task2.txt"
    items = json.loads(train.read_text(encoding="utf-8"))
    n_spans = sum(len(item["labels"]) for item in items)
    # each span matches itself (credit 1) plus every OTHER span of its meme with its technique
    extra = 0.0
    for item in items:
        labels = item["labels"]
        for i, a in enumerate(labels):
            for j, b in enumerate(labels):
                if i != j and a["technique"] == b["technique"]:
                    shared = max(0, min(a["end"], b["end"]) - max(a["start"], b["start"]))
                    extra += shared / (a["end"] - a["start"])
    assert extra > 0  # the file does contain same-technique overlaps
    scores = score("semeval2021t6", train, train)
    assert scores["precision"] == pytest.approx((n_spans + extra) / n_spans)
    assert scores["recall"] == pytest.approx(scores["precision"])  # symmetric when pred == gold


def test_shortened_spans_keep_precision_and_lose_recall(shared_data: Path, tmp_path: Path) -> None:
    dev = shared_data / "semeval2021t6" / "dev_set_task2.txt"
    items = json.loads(dev.read_text(encoding="utf-8"))
    kept_fractions = []
    for item in items:
        for label in item["labels"]:
            length = label["end"] - label["start"]
            label["end"] = label["start"] + max(1, length // 2)  # keep the first half
            kept_fractions.append((label["end"] - label["start"]) / length)
    scores = score("semeval2021t6", dev, _write(items, tmp_path / "pred.txt"))
    # dev has no same-technique overlaps: each half lies inside its own gold span only,
    # so precision credit is 1 per span and recall credit is the kept fraction
    assert scores["precision"] == pytest.approx(1.0)
    assert scores["recall"] == pytest.approx(sum(kept_fractions) / len(kept_fractions))


def test_swapped_techniques_lose_exactly_those_spans(shared_data: Path, tmp_path: Path) -> None:
    dev = shared_data / "semeval2021t6" / "dev_set_task2.txt"
    items = json.loads(dev.read_text(encoding="utf-8"))
    techniques = [t.strip() for t in (shared_data / "semeval2021t6" / "techniques_list_task1-2.txt").read_text(
        encoding="utf-8").splitlines() if t.strip()]
    n_spans = sum(len(item["labels"]) for item in items)
    swapped = 0
    for item in items[:20]:
        if not item["labels"]:
            continue
        used = {label["technique"] for label in item["labels"]}
        unused = next(t for t in techniques if t not in used)  # matches no gold span of this meme
        item["labels"][0]["technique"] = unused
        swapped += 1
    scores = score("semeval2021t6", dev, _write(items, tmp_path / "pred.txt"))
    # the swapped spans earn nothing; all others still match themselves exactly (no overlaps)
    assert scores["precision"] == pytest.approx((n_spans - swapped) / n_spans)
    assert scores["recall"] == pytest.approx((n_spans - swapped) / n_spans)


def test_missing_prediction_ids_are_named(shared_data: Path, tmp_path: Path) -> None:
    dev = shared_data / "semeval2021t6" / "dev_set_task2.txt"
    items = json.loads(dev.read_text(encoding="utf-8"))
    dropped = items.pop()["id"]
    with pytest.raises(FormatError, match=f"'{dropped}'"):
        score("semeval2021t6", dev, _write(items, tmp_path / "pred.txt"))


# --- span identification (2021 T6 level 1): overlapping spans merged, bounded ----------------


def test_merged_extents_merge_shared_characters_only() -> None:
    from mtpeft.evaluation.metrics.persuasion import merged_extents

    assert merged_extents([(5, 15), (0, 10), (20, 30), (30, 35), (12, 14)]) == [(0, 15), (20, 30), (30, 35)]
    assert merged_extents([]) == []


def test_span_identification_merges_both_sides_by_hand(make_doc) -> None:
    from mtpeft.evaluation.metrics.persuasion import span_identification_scores

    # gold: two overlapping spans of different techniques -> one merged span 0-20
    gold = [make_doc("1", ("T1", [(0, 10)]), ("T2", [(5, 20)]))]
    # predicted: 0-10 and 8-12 merge to 0-12 (12 chars, 12 inside gold 0-20)
    pred = [make_doc("1", ("X", [(0, 10)]), ("Y", [(8, 12)]))]
    scores = span_identification_scores(gold, pred)
    assert (scores["precision"], scores["recall"]) == (pytest.approx(1.0), pytest.approx(12 / 20))
    assert (scores["gold_spans"], scores["pred_spans"]) == (1.0, 1.0)
    # unmerged, one type: 0-10 earns 10/10 + 5/10, 8-12 earns 2/4 + 4/4 -> 3.0 over 2 predicted spans
    assert scores["unmerged_precision"] == pytest.approx(1.5)


def _real_memes(shared_data: Path, name: str) -> list[dict]:
    return json.loads((shared_data / "semeval2021t6" / name).read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", ["training_set_task2.txt", "dev_set_task2.txt"])
def test_level1_scores_stay_in_the_unit_interval_on_the_real_files(shared_data: Path, tmp_path: Path, name: str) -> None:
    """The real gold has overlapping spans: unmerged, one prediction per distinct extent scored
    1.91 and one span over each whole meme 1.035; merged, every figure stays in [0, 1]."""
    gold_path = shared_data / "semeval2021t6" / name
    items = _real_memes(shared_data, name)
    assert any(  # the file has overlapping spans (the reason for merging)
        a is not b and a["start"] < b["end"] and b["start"] < a["end"] for item in items
        for a in item["labels"] for b in item["labels"]
    )
    itself = score("semeval2021t6_level1", gold_path, gold_path)
    assert (itself["precision"], itself["recall"], itself["f1"]) == (1.0, 1.0, 1.0)
    assert itself["unmerged_precision"] > 1.0  # the old headline
    extents = [{**item, "labels": [dict(t) for t in {(label["start"], label["end"]): label for label in item["labels"]}.values()]}
               for item in items]
    whole = [{**item, "labels": [{"start": 0, "end": len(item["text"]), "technique": "Slogans"}] if item["text"] else []}
             for item in items]
    for predictions in (extents, whole):
        scores = score("semeval2021t6_level1", gold_path, _write(predictions, tmp_path / "pred.txt"))
        assert all(0.0 <= scores[k] <= 1.0 for k in ("precision", "recall", "f1")), scores
    assert score("semeval2021t6_level1", gold_path, _write(extents, tmp_path / "pred.txt"))["f1"] == 1.0
