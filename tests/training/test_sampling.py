"""Task sampler: probabilities, determinism, sampling without replacement, resume equivalence."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from mtpeft.config import SamplingConfig
from mtpeft.errors import MtpeftError
from mtpeft.registry import UnknownNameError
from mtpeft.training.sampling import SAMPLERS, TaskSampler

SIZES = {"a": 1000, "b": 100, "c": 10}


def test_registered_rules():
    assert SAMPLERS.names() == ["proportional", "temperature", "uniform"]


@pytest.mark.parametrize("tau", [1.0, 2.0, 5.0])
def test_temperature_probabilities(tau):
    sampler = TaskSampler(SIZES, 4, seed=0, strategy="temperature", temperature=tau)
    scores = {t: n ** (1 / tau) for t, n in SIZES.items()}
    expected = {t: s / sum(scores.values()) for t, s in scores.items()}
    assert sampler.probabilities == pytest.approx(expected)
    assert sum(sampler.probabilities.values()) == pytest.approx(1.0)


def test_proportional_uniform_and_temperature_one():
    total = sum(SIZES.values())
    proportional = TaskSampler(SIZES, 4, 0, strategy="proportional").probabilities
    assert proportional == pytest.approx({t: n / total for t, n in SIZES.items()})
    assert TaskSampler(SIZES, 4, 0, strategy="temperature", temperature=1.0).probabilities == pytest.approx(proportional)
    assert TaskSampler(SIZES, 4, 0, strategy="uniform").probabilities == pytest.approx({t: 1 / 3 for t in SIZES})
    # a large temperature flattens towards uniform
    hot = TaskSampler(SIZES, 4, 0, strategy="temperature", temperature=1e6).probabilities
    assert hot == pytest.approx({t: 1 / 3 for t in SIZES}, abs=1e-5)


@pytest.mark.parametrize("mode", ["per_task", "mixed"])
def test_empirical_frequencies_follow_probabilities(mode):
    sampler = TaskSampler(SIZES, 8, seed=1, strategy="temperature", temperature=2.0, batch_mode=mode)
    counts: Counter[str] = Counter()
    steps = 3000
    for _ in range(steps):
        for task, indices in sampler.next_batch().items():
            counts[task] += len(indices)
    total = sum(counts.values())
    assert total == steps * 8
    for task, p in sampler.probabilities.items():
        assert counts[task] / total == pytest.approx(p, abs=0.03 if mode == "per_task" else 0.01)


def test_batch_shapes():
    per_task = TaskSampler(SIZES, 5, seed=0, batch_mode="per_task")
    mixed = TaskSampler(SIZES, 5, seed=0, batch_mode="mixed")
    for _ in range(50):
        batch = per_task.next_batch()
        assert len(batch) == 1 and len(next(iter(batch.values()))) == 5
        batch = mixed.next_batch()
        assert sum(len(v) for v in batch.values()) == 5 and all(v for v in batch.values())
        assert list(batch) == [t for t in SIZES if t in batch]  # task order is the given order


def test_without_replacement_within_an_epoch():
    sizes = {"a": 37, "b": 11}
    sampler = TaskSampler(sizes, 3, seed=4, strategy="uniform", batch_mode="mixed")
    drawn: dict[str, list[int]] = {"a": [], "b": []}
    while min(len(v) for v in drawn.values()) < 2 * max(sizes.values()):
        for task, indices in sampler.next_batch().items():
            drawn[task].extend(indices)
    for task, n in sizes.items():
        epoch1, epoch2 = drawn[task][:n], drawn[task][n : 2 * n]
        assert sorted(epoch1) == list(range(n)) and sorted(epoch2) == list(range(n))
        assert epoch1 != epoch2  # a fresh shuffle each epoch
    assert sampler.epochs()["b"] >= 2


def _batches(sampler: TaskSampler, k: int) -> list[dict[str, list[int]]]:
    return [sampler.next_batch() for _ in range(k)]


@pytest.mark.parametrize("mode", ["per_task", "mixed"])
def test_deterministic_for_a_seed(mode):
    first = _batches(TaskSampler(SIZES, 6, seed=7, batch_mode=mode), 40)
    again = _batches(TaskSampler(SIZES, 6, seed=7, batch_mode=mode), 40)
    other = _batches(TaskSampler(SIZES, 6, seed=8, batch_mode=mode), 40)
    assert first == again
    assert first != other


@pytest.mark.parametrize("mode", ["per_task", "mixed"])
def test_resume_continues_the_same_sequence(mode):
    sizes = {"a": 13, "b": 7, "c": 3}  # small: the stop point falls after several epochs
    uninterrupted = _batches(TaskSampler(sizes, 4, seed=3, batch_mode=mode), 60)

    stopped = TaskSampler(sizes, 4, seed=3, batch_mode=mode)
    head = _batches(stopped, 25)
    state = json.loads(json.dumps(stopped.state_dict()))  # must survive state.json
    resumed = TaskSampler(sizes, 4, seed=3, batch_mode=mode)
    resumed.load_state_dict(state)
    assert head + _batches(resumed, 35) == uninterrupted
    assert resumed.steps == 60


def test_resume_refuses_a_different_setting():
    state = TaskSampler(SIZES, 4, seed=3).state_dict()
    with pytest.raises(MtpeftError, match="sizes"):
        TaskSampler({**SIZES, "c": 11}, 4, seed=3).load_state_dict(state)
    with pytest.raises(MtpeftError, match="seed"):
        TaskSampler(SIZES, 4, seed=4).load_state_dict(state)
    with pytest.raises(MtpeftError, match="temperature"):
        TaskSampler(SIZES, 4, seed=3, temperature=3.0).load_state_dict(state)


def test_bad_input():
    with pytest.raises(UnknownNameError, match="proportional, temperature, uniform"):
        TaskSampler(SIZES, 4, 0, strategy="nope")
    with pytest.raises(MtpeftError, match=r"\['b'\]"):
        TaskSampler({"a": 3, "b": 0}, 4, 0)


def test_from_config():
    config = SamplingConfig(strategy="uniform", batch_mode="per_task")
    sampler = TaskSampler.from_config(SIZES, 4, 0, config)
    assert sampler.batch_mode == "per_task" and sampler.strategy == "uniform"
