"""TensorBoard event files are written and readable; MLflow is skipped with a note when absent."""

from __future__ import annotations

import importlib.util

import pytest

from mtpeft.training.tracking import Tracker, flatten_scalars


def test_flatten_scalars():
    assert flatten_scalars({"loss": 1, "losses": {"a": 2.5}, "note": "x", "flag": True, "none": None}) == {
        "loss": 1.0,
        "losses/a": 2.5,
    }


def test_tensorboard_events_are_readable(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    with Tracker(tmp_path / "tb") as tracker:
        assert tracker.backends == ["tensorboard"]
        for step in (1, 2, 3):
            tracker.log(step, {"loss": 1.0 / step, "losses": {"a": float(step)}}, prefix="train/")
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    assert set(events.Tags()["scalars"]) == {"train/loss", "train/losses/a"}
    assert [e.value for e in events.Scalars("train/losses/a")] == [1.0, 2.0, 3.0]
    assert [e.step for e in events.Scalars("train/loss")] == [1, 2, 3]


@pytest.mark.skipif(importlib.util.find_spec("mlflow") is not None, reason="mlflow is installed")
def test_mlflow_missing_is_a_note_not_a_failure(tmp_path):
    tracker = Tracker(None, mlflow=True)
    assert tracker.backends == [] and "mlflow is not installed" in tracker.notes[0]
    tracker.log(1, {"loss": 1.0})
    tracker.close()
