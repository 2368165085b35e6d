"""ECE and reliability diagrams on hand-worked cases."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from mtpeft.errors import FormatError
from mtpeft.evaluation.calibration import (
    expected_calibration_error,
    read_calibration,
    reliability_bins,
    reliability_diagram,
    run_calibration,
)


def test_ece_hand_example():
    # bins of width 0.1: 0.05 -> bin 0 (acc 0, conf .05); 0.15 -> bin 1 (acc 1, conf .15);
    # 0.95 and 1.0 -> bin 9 (acc 1, conf .975).
    # ECE = 1/4 * .05 + 1/4 * .85 + 2/4 * .025 = .0125 + .2125 + .0125 = .2375
    assert expected_calibration_error([0.05, 0.15, 0.95, 1.0], [0, 1, 1, 1], bins=10) == pytest.approx(0.2375)


def test_perfect_calibration_is_zero_and_overconfidence_is_the_gap():
    assert expected_calibration_error([0.75] * 4, [1, 1, 1, 0], bins=10) == pytest.approx(0.0)
    # all in one bin: |acc - conf| = |0.5 - 0.9|
    assert expected_calibration_error([0.9] * 4, [1, 0, 1, 0], bins=10) == pytest.approx(0.4)


def test_bin_edges_left_closed_and_one_in_last_bin():
    stats = reliability_bins([0.0, 0.1, 0.2, 0.5, 0.999, 1.0], [1, 1, 1, 1, 1, 1], bins=5)
    # edges 0, .2, .4, .6, .8, 1: 0.0 and 0.1 -> bin 0; 0.2 -> bin 1 (left-closed); 0.5 -> bin 2;
    # 0.999 and 1.0 -> bin 4 (the last bin is closed on the right)
    assert stats.counts.tolist() == [2, 1, 1, 0, 2]
    assert stats.edges.tolist() == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    assert math.isnan(stats.accuracy[3]) and stats.total == 6


def test_number_of_bins_changes_the_result():
    conf, ok = [0.1, 0.3, 0.6, 0.8], [0, 0, 1, 1]
    # one bin: |mean acc - mean conf| = |0.5 - 0.45|
    assert expected_calibration_error(conf, ok, bins=1) == pytest.approx(0.05)
    # two bins: [0, .5): acc 0, conf .2 -> gap .2; [.5, 1]: acc 1, conf .7 -> gap .3; ECE = .5*.2 + .5*.3
    assert expected_calibration_error(conf, ok, bins=2) == pytest.approx(0.25)


def test_no_pairs_gives_nan():
    assert math.isnan(expected_calibration_error([], [], bins=10))


@pytest.mark.parametrize(
    ("confidences", "correct", "message"),
    [([0.5, 1.2], [1, 0], "outside"), ([0.5], [1, 0], "one flag per confidence"), ([0.5], [2], "expected 0 or 1"),
     ([float("nan")], [1], "outside")],
)
def test_bad_pairs_are_refused(confidences, correct, message):
    with pytest.raises(ValueError, match=message):
        expected_calibration_error(confidences, correct)


def test_bins_must_be_positive():
    with pytest.raises(ValueError, match="bins"):
        reliability_bins([0.5], [1], bins=0)


def test_reliability_diagram_writes_a_png(tmp_path):
    import matplotlib.image

    rng = np.random.default_rng(0)
    conf = rng.random(300)
    path = reliability_diagram(conf, (rng.random(300) < conf).astype(int), 10, tmp_path / "sub" / "r.png", title="t")
    pixels = matplotlib.image.imread(path)
    assert pixels.shape[0] > 200 and pixels.shape[1] > 200
    assert len(np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)) > 10  # not a blank canvas


def test_read_calibration_and_run_folder(tmp_path):
    folder = tmp_path / "run" / "calibration" / "dev"
    folder.mkdir(parents=True)
    (folder / "taskA.json").write_text(json.dumps({"confidences": [0.2, 0.9], "correct": [0, 1], "ece": 0.15, "bins": 10}))
    records = run_calibration(tmp_path / "run", "dev")
    assert list(records) == ["taskA"]
    assert records["taskA"].correct.tolist() == [0, 1] and records["taskA"].bins == 10
    assert run_calibration(tmp_path / "run", "test") == {}
    (folder / "bad.json").write_text(json.dumps({"confidences": [0.2, 1.5], "correct": [0, 1]}))
    with pytest.raises(FormatError, match=r"bad\.json.*outside"):
        read_calibration(folder / "bad.json")
    (folder / "bad.json").write_text("{not json")
    with pytest.raises(FormatError, match=r"bad\.json: cannot read JSON"):
        read_calibration(folder / "bad.json")
