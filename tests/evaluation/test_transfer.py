"""Transfer matrices from synthetic run folders, checked against hand-computed relative changes."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from mtpeft.evaluation.report.run_folder import find_runs
from mtpeft.evaluation.transfer import TransferError, available_modes, transfer_matrix, write_transfer
from tests.evaluation.synthetic_runs import make_run


def _run(root, name, tasks, f1, seed=0, **kw):
    # generic task ids: the headline metric is "f1"; "precision" is there to show it is not used
    return make_run(root, name, tasks=tasks, seed=seed, strategy="s1" if len(tasks) == 1 else "s3a",
                    metrics={t: {"f1": v, "precision": 0.99} for t, v in zip(tasks, f1)}, log=False,
                    conflicts=False, calibration=False, **kw)


def test_pairwise_by_hand(tmp_path):
    _run(tmp_path, "a0", ["a"], [0.50], seed=0)
    _run(tmp_path, "a1", ["a"], [0.60], seed=1)  # seed mean 0.55
    _run(tmp_path, "b", ["b"], [0.40])
    _run(tmp_path, "ab", ["a", "b"], [0.66, 0.30])
    runs, _ = find_runs([tmp_path])
    assert available_modes(runs) == ["pairwise"]
    matrix = transfer_matrix(runs, "pairwise")
    assert matrix.tasks == ("a", "b") and matrix.metric == {"a": "f1", "b": "f1"}
    # adding b changes a: (0.66 - 0.55) / 0.55 = +0.2; adding a changes b: (0.30 - 0.40) / 0.40 = -0.25
    assert matrix.values[1, 0] == pytest.approx(0.2)
    assert matrix.values[0, 1] == pytest.approx(-0.25)
    assert np.isnan(matrix.values[0, 0]) and np.isnan(matrix.values[1, 1])
    assert matrix.without_source[1, 0] == pytest.approx(0.55) and matrix.missing == []


def test_leave_one_out_by_hand(tmp_path):
    _run(tmp_path, "abc", ["a", "b", "c"], [0.6, 0.5, 0.4])
    _run(tmp_path, "bc", ["b", "c"], [0.4, 0.5])  # without a
    _run(tmp_path, "ac", ["a", "c"], [0.5, 0.2])  # without b
    runs, _ = find_runs([tmp_path])
    assert available_modes(runs) == ["leave_one_out"]
    matrix = transfer_matrix(runs, "leave_one_out")
    # T[a][b] = (0.5 - 0.4) / 0.4; T[a][c] = (0.4 - 0.5) / 0.5; T[b][a] = (0.6 - 0.5) / 0.5; T[b][c] = (0.4 - 0.2) / 0.2
    assert matrix.values[0, 1] == pytest.approx(0.25)
    assert matrix.values[0, 2] == pytest.approx(-0.2)
    assert matrix.values[1, 0] == pytest.approx(0.2)
    assert matrix.values[1, 2] == pytest.approx(1.0)
    # the run without c (a+b) is missing: row c is undefined and listed
    assert np.isnan(matrix.values[2, 0]) and np.isnan(matrix.values[2, 1])
    assert matrix.missing == ["a+b (for a)", "a+b (for b)"]


def test_task_headline_comes_from_the_shared_mapping(tmp_path):
    from mtpeft.evaluation.results import headline_metric_name

    task = "semeval2017t3"
    name = headline_metric_name(task, {"map": 0.0, "f1": 0.0})
    other = "f1" if name != "f1" else "map"
    make_run(tmp_path, "single", tasks=[task], metrics={task: {name: 0.5, other: 0.9}}, log=False, calibration=False)
    make_run(tmp_path, "pair", tasks=[task, "x"], metrics={task: {name: 0.6, other: 0.1}, "x": {"f1": 0.3}},
             log=False, conflicts=False, calibration=False)
    make_run(tmp_path, "x", tasks=["x"], metrics={"x": {"f1": 0.3}}, log=False, calibration=False)
    matrix = transfer_matrix(find_runs([tmp_path])[0], "pairwise")
    assert matrix.metric[task] == name
    assert matrix.values[1, 0] == pytest.approx((0.6 - 0.5) / 0.5)


def test_zero_baseline_and_unknown_mode(tmp_path):
    _run(tmp_path, "a", ["a"], [0.0])
    _run(tmp_path, "b", ["b"], [0.5])
    _run(tmp_path, "ab", ["a", "b"], [0.3, 0.5])
    runs, _ = find_runs([tmp_path])
    matrix = transfer_matrix(runs, "pairwise")
    assert math.isnan(matrix.values[1, 0]) and matrix.values[0, 1] == 0.0
    with pytest.raises(TransferError, match="valid choices: pairwise, leave_one_out"):
        transfer_matrix(runs, "both")


def test_two_configurations_on_one_task_set_are_refused(tmp_path):
    _run(tmp_path, "a", ["a"], [0.5])
    _run(tmp_path, "ab1", ["a", "b"], [0.5, 0.5])
    _run(tmp_path, "ab2", ["a", "b"], [0.5, 0.5], strategy_options={"shared_rank": 4})
    with pytest.raises(TransferError, match=r"2 different configurations were trained on tasks \['a', 'b'\]"):
        transfer_matrix(find_runs([tmp_path])[0], "pairwise")


def test_write_transfer(tmp_path):
    _run(tmp_path / "runs", "a", ["a"], [0.5])
    _run(tmp_path / "runs", "b", ["b"], [0.4])
    _run(tmp_path / "runs", "ab", ["a", "b"], [0.55, 0.5])
    matrix = transfer_matrix(find_runs([tmp_path / "runs"])[0], "pairwise")
    paths = write_transfer(matrix, tmp_path / "out")
    with paths["csv"].open() as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["added_task", "a", "b"]
    assert rows[1][1] == "" and float(rows[1][2]) == pytest.approx(0.25)
    assert float(rows[2][1]) == pytest.approx(0.1)
    assert "+25.0%" in paths["md"].read_text() and "+10.0%" in paths["md"].read_text()
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
