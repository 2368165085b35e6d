"""Seed spread, bootstrap intervals and the paired bootstrap test on hand-checkable cases."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from mtpeft.errors import FormatError
from mtpeft.evaluation.uncertainty import (
    DocumentStats,
    bootstrap_ci,
    bootstrap_distribution,
    derive_metrics,
    mean_std,
    paired_bootstrap_test,
    read_document_stats,
    stats_metric,
)


def stats(rows: list[dict[str, float]]) -> DocumentStats:
    keys = tuple(sorted(rows[0]))
    return DocumentStats(tuple(f"d{i}" for i in range(len(rows))), keys, np.array([[r[k] for k in keys] for r in rows], float))


ACCURACY = stats_metric("accuracy")


def test_mean_std_is_the_sample_std():
    mean, std = mean_std([1.0, 2.0, 3.0])
    assert mean == 2.0 and std == pytest.approx(1.0)  # sqrt(((1)^2 + 0 + 1^2) / (3 - 1))
    assert math.isnan(mean_std([0.7])[1])
    with pytest.raises(ValueError):
        mean_std([])


def test_derive_metrics_naming_convention():
    derived = derive_metrics({"strict_tp": 3, "strict_fp": 1, "strict_fn": 2, "map_num": 1.5, "map_den": 2,
                              "precision_num": 1.0, "precision_den": 4, "recall_num": 1.0, "recall_den": 2})
    assert derived["strict_precision"] == pytest.approx(3 / 4)
    assert derived["strict_recall"] == pytest.approx(3 / 5)
    assert derived["strict_f1"] == pytest.approx(6 / 9)  # 2tp / (2tp + fp + fn)
    assert derived["map"] == pytest.approx(0.75)
    # partial credit: P = 1/4, R = 1/2, F1 = 2PR / (P + R) = 0.25 / 0.75
    assert derived["f1"] == pytest.approx(1 / 3)
    assert derive_metrics({"tp": 0, "fp": 0, "fn": 0}) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    with pytest.raises(KeyError, match="derivable"):
        stats_metric("mrr")({"tp": 1, "fp": 0, "fn": 0})


def test_constant_documents_give_a_zero_width_interval():
    ci = bootstrap_ci(stats([{"tp": 1, "fp": 1, "fn": 0}] * 7), stats_metric("precision"), n_resamples=200)
    assert ci.estimate == ci.low == ci.high == pytest.approx(0.5)


def test_two_documents_by_hand():
    # doc 0 wrong, doc 1 right. A resample draws 2 documents: both doc 0 (p = 1/4) -> accuracy 0,
    # one of each (p = 1/2) -> 0.5, both doc 1 (p = 1/4) -> 1.
    two = stats([{"accuracy_num": 0, "accuracy_den": 1}, {"accuracy_num": 1, "accuracy_den": 1}])
    values = bootstrap_distribution(two, ACCURACY, n_resamples=4000, seed=1)
    assert set(np.unique(values)) == {0.0, 0.5, 1.0}
    assert np.mean(values == 0.0) == pytest.approx(0.25, abs=0.03)
    assert np.mean(values == 0.5) == pytest.approx(0.5, abs=0.03)
    wide = bootstrap_ci(two, ACCURACY, n_resamples=4000, confidence=0.95, seed=1)
    assert (wide.estimate, wide.low, wide.high) == (0.5, 0.0, 1.0)  # 2.5% and 97.5% fall in the outer quarters
    narrow = bootstrap_ci(two, ACCURACY, n_resamples=4000, confidence=0.4, seed=1)
    assert (narrow.low, narrow.high) == (0.5, 0.5)  # the 30% and 70% quantiles fall in the middle half


def test_bootstrap_is_seeded():
    rng = np.random.default_rng(3)
    docs = stats([{"accuracy_num": float(x), "accuracy_den": 1.0} for x in rng.integers(0, 2, 50)])
    first = bootstrap_distribution(docs, ACCURACY, n_resamples=300, seed=5)
    assert np.array_equal(first, bootstrap_distribution(docs, ACCURACY, n_resamples=300, seed=5))
    assert not np.array_equal(first, bootstrap_distribution(docs, ACCURACY, n_resamples=300, seed=6))
    assert bootstrap_ci(docs, ACCURACY, n_resamples=300, seed=5) == bootstrap_ci(docs, ACCURACY, n_resamples=300, seed=5)


def test_agrees_with_scipy_for_a_mean():
    from scipy.stats import bootstrap

    values = np.random.default_rng(0).normal(0.6, 0.2, 80)
    docs = stats([{"score_num": v, "score_den": 1.0} for v in values])
    ours = bootstrap_ci(docs, stats_metric("score"), n_resamples=4000, seed=0)
    theirs = bootstrap((values,), np.mean, n_resamples=4000, method="percentile", random_state=0).confidence_interval
    assert ours.estimate == pytest.approx(values.mean())
    assert ours.low == pytest.approx(theirs.low, abs=0.01) and ours.high == pytest.approx(theirs.high, abs=0.01)


def test_seeds_are_resampled_together_and_must_share_documents():
    a = stats([{"accuracy_num": 1, "accuracy_den": 1}, {"accuracy_num": 0, "accuracy_den": 1}])
    b = stats([{"accuracy_num": 0, "accuracy_den": 1}, {"accuracy_num": 1, "accuracy_den": 1}])
    # every resample gives a and b opposite accuracies, so their mean is always 0.5
    ci = bootstrap_ci([a, b], ACCURACY, n_resamples=500)
    assert ci.estimate == ci.low == ci.high == 0.5
    other = DocumentStats(("x", "d1"), a.keys, a.values)
    with pytest.raises(ValueError, match="different documents"):
        bootstrap_ci([a, other], ACCURACY)


def test_paired_test_identical_better_and_by_hand():
    rng = np.random.default_rng(2)
    docs = stats([{"accuracy_num": float(x), "accuracy_den": 1.0} for x in rng.integers(0, 2, 30)])
    same = paired_bootstrap_test(docs, docs, ACCURACY, n_resamples=500)
    assert same.delta == 0.0 and same.p_value == 1.0
    right = stats([{"accuracy_num": 1, "accuracy_den": 1}] * 10)
    wrong = stats([{"accuracy_num": 0, "accuracy_den": 1}] * 10)
    assert paired_bootstrap_test(right, wrong, ACCURACY, n_resamples=500).p_value == 0.0
    assert paired_bootstrap_test(wrong, right, ACCURACY, n_resamples=500).p_value == 1.0
    # A right on doc 0 only, B never: delta = 0.5; a resample's delta is 1 (doc 0 twice, p = 1/4),
    # 0.5 or 0; only the first reaches 2 * delta = 1, so p = 1/4.
    a = stats([{"accuracy_num": 1, "accuracy_den": 1}, {"accuracy_num": 0, "accuracy_den": 1}])
    b = stats([{"accuracy_num": 0, "accuracy_den": 1}, {"accuracy_num": 0, "accuracy_den": 1}])
    test = paired_bootstrap_test(a, b, ACCURACY, n_resamples=4000, seed=3)
    assert test.delta == 0.5 and test.p_value == pytest.approx(0.25, abs=0.03)


def test_read_document_stats(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in [
        {"doc_id": "b", "stats": {"tp": 1, "fp": 0, "fn": 2}},
        {"doc_id": "a", "stats": {"fn": 0, "fp": 1, "tp": 3}},
    ]) + "\n")
    read = read_document_stats(path)
    assert read.doc_ids == ("b", "a") and read.keys == ("fn", "fp", "tp")
    assert read.sums() == {"fn": 2.0, "fp": 1.0, "tp": 4.0}
    assert read.aligned_to(["a", "b"]).values[0].tolist() == [0.0, 1.0, 3.0]


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (['{"doc_id": "a", "stats": {"tp": 1}}', '{"doc_id": "b", "stats": {"fp": 1}}'], r"t\.jsonl:2 \(b\): stat names"),
        (['{"doc_id": "a", "stats": {"tp": 1}}', '{"doc_id": "a", "stats": {"tp": 1}}'], r":2 \(a\): duplicate doc_id"),
        (['{"doc_id": "a", "stats": {"tp": "x"}}'], r":1 \(a\): a statistic is not a finite number"),
        (['{"doc_id": "a"', ], r":1: invalid JSON"),
        (['{"stats": {}}'], r":1: missing 'doc_id'"),
        ([""], "no documents"),
    ],
)
def test_read_document_stats_errors_name_file_and_line(tmp_path, lines, message):
    path = tmp_path / "t.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(FormatError, match=message):
        read_document_stats(path)


def test_many_documents_are_resampled_in_chunks():
    many = stats([{"accuracy_num": 1, "accuracy_den": 2}] * 100_000)  # 4M draws per chunk -> 40 resamples a chunk
    values = bootstrap_distribution(many, ACCURACY, n_resamples=90, seed=0)
    assert values.shape == (90,) and np.all(values == 0.5)
