"""Gradient-conflict measurement: cosine matrix and conflict fraction on hand-made vectors."""

from __future__ import annotations

import json
import math

import pytest
import torch

from mtpeft.training.conflicts import ConflictMonitor, gradient_conflicts
from mtpeft.training.weighting import build_loss_strategy
from tests.training.toy import ToyMultiTask, toy_batches


def test_cosine_matrix_on_hand_vectors():
    vectors = {"a": torch.tensor([1.0, 0.0]), "b": torch.tensor([1.0, 1.0]), "c": torch.tensor([-1.0, 0.0])}
    result = gradient_conflicts(vectors)
    assert result["tasks"] == ["a", "b", "c"]
    s = 1 / math.sqrt(2)
    expected = [[1.0, s, -1.0], [s, 1.0, -s], [-1.0, -s, 1.0]]
    for row, want in zip(result["cosine"], expected):
        assert row == pytest.approx(want)
    assert result["conflict_fraction"] == pytest.approx(2 / 3)  # (a,c) and (b,c) of 3 pairs
    assert result["norms"] == pytest.approx({"a": 1.0, "b": math.sqrt(2), "c": 1.0})


def test_zero_gradients_and_single_tasks():
    result = gradient_conflicts({"a": torch.tensor([1.0, 0.0]), "z": torch.zeros(2)})
    assert result["cosine"][0][1] is None and result["conflict_fraction"] is None and result["pairs"] == 0
    assert gradient_conflicts({"a": torch.ones(3)})["conflict_fraction"] is None
    result = gradient_conflicts({"a": torch.tensor([1.0, 0.0]), "b": torch.tensor([0.0, 1.0])})
    assert result["conflict_fraction"] == 0.0  # orthogonal is not conflicting


def test_monitor_writes_jsonl_on_due_steps(tmp_path):
    monitor = ConflictMonitor(tmp_path / "conflicts.jsonl", every=3)
    assert [s for s in range(1, 10) if monitor.due(s)] == [3, 6, 9]
    assert not ConflictMonitor(tmp_path / "never.jsonl", every=0).due(3)

    tasks = ["a", "b"]
    model = ToyMultiTask(tasks)
    losses = model.losses(toy_batches(tasks))
    measured = monitor.measure(3, losses, model.shared_parameters())
    # the graph was kept: the real backward still runs
    sum(losses.values()).backward()

    strategy = build_loss_strategy("pcgrad", tasks)
    strategy.backward(model.losses(toy_batches(tasks)), model.shared_parameters(), model.other_parameters())
    reused = monitor.record(6, strategy.finish(model.shared_parameters()).per_task_gradients)

    lines = [json.loads(line) for line in (tmp_path / "conflicts.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [3, 6]
    assert lines[0]["cosine"] == measured["cosine"] and lines[1]["tasks"] == reused["tasks"] == tasks
    assert {"step", "tasks", "cosine", "conflict_fraction"} <= set(lines[0])
