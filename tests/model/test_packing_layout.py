"""The packer's layouts, the check that a backbone honours packed rows, and packed prediction."""

from __future__ import annotations

import logging
import random

import pytest
import torch
from torch import nn

from mtpeft.backbone import tiny_llama
from mtpeft.errors import ConfigError
from mtpeft.model.packing import (
    Packing,
    choose_width,
    length_buckets,
    pack_rows,
    packed_attention_problem,
    resolve_packing,
)


@pytest.mark.parametrize("seed", range(5))
def test_rows_hold_every_example_once_within_the_width_and_each_task_in_one_range(seed):
    rng = random.Random(seed)
    lengths = [[rng.randint(1, 60) for _ in range(rng.randint(1, 9))] for _ in range(rng.randint(1, 5))]
    width, rows = choose_width(lengths, budget=100)
    assert max(map(max, lengths)) <= width <= 100 or width == max(map(max, lengths))
    slots = [slot for row in rows for slot in row]
    assert sorted(slots) == sorted((g, i) for g, group in enumerate(lengths) for i in range(len(group)))
    assert all(sum(lengths[g][i] for g, i in row) <= width for row in rows)
    groups = [g for g, _ in slots]
    assert groups == sorted(groups)  # flattened row-major, each group is one contiguous range
    # no layout of this width and order needs fewer rows than all tokens over the width
    assert len(rows) >= -(-sum(map(sum, lengths)) // width)


def test_the_packer_fills_the_room_the_previous_task_left():
    rows = pack_rows([[60, 30], [40, 10]], width=100)
    assert rows == [[(0, 0), (0, 1), (1, 1)], [(1, 0)]]


def test_length_buckets_group_similar_lengths():
    assert length_buckets([10, 100, 12, 98, 11], max_buckets=2) == [[1, 3], [0, 2, 4]]
    assert length_buckets([5, 5, 5], max_buckets=4) == [[0, 1, 2]]  # more forwards would save nothing


def test_bad_packing_settings_are_refused():
    with pytest.raises(ConfigError, match="budget"):
        Packing("packed", 0)
    with pytest.raises(ConfigError, match="training.packing"):
        resolve_packing(tiny_llama(0), "sometimes", 256, "training.packing")


class _IgnoresPositions(nn.Module):
    """A decoder without packed-sequence support: it drops position ids and masks causally only."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = tiny_llama(0)
        self.config = self.inner.config

    def forward(self, input_ids, attention_mask=None, position_ids=None, use_cache=None):
        return self.inner(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)


def test_the_tiny_llama_honours_packed_rows():
    assert packed_attention_problem(tiny_llama(0)) is None
    assert resolve_packing(tiny_llama(0), "auto", 64, "training.packing") == Packing("packed", 64)
    assert resolve_packing(tiny_llama(0), False, 64, "training.packing").mode == "padded"


def test_a_backbone_that_cannot_pack_falls_back_once_or_raises(caplog):
    model = _IgnoresPositions()
    problem = packed_attention_problem(model)
    assert problem is not None and "own forward" in problem
    with pytest.raises(ConfigError) as error:
        resolve_packing(model, True, 256, "training.packing")
    assert "training.packing" in str(error.value) and "(sdpa)" in str(error.value)
    caplog.set_level(logging.WARNING, logger="mtpeft")
    assert resolve_packing(model, "auto", 256, "evaluation.packing").mode == "grouped"
    assert resolve_packing(model, "auto", 256, "evaluation.packing").mode == "grouped"
    said = [r.getMessage() for r in caplog.records if "length-grouped" in r.getMessage()]
    assert len(said) == 1 and "evaluation.packing" in said[0]


def test_packed_and_grouped_prediction_equal_padded_prediction(tiny_backbone, sample_documents, tokenizer):
    from mtpeft.evaluation.evaluate import predict_features
    from mtpeft.model.build import build_model
    from tests.model.conftest import make_config

    tasks = ("semeval2016t12", "semeval2017t3", "semeval2021t6_level1")
    built = build_model(make_config("s3a", tasks=tasks), backbone=tiny_backbone)
    model = built.model.double()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.1)
    for task_id, task in built.tasks.items():
        features = task.encode(sample_documents[task_id], tokenizer).features
        reference = predict_features(model, task_id, features, batch_size=3, packing=False)
        for packing in ("auto", Packing("packed", 70), Packing("grouped")):
            predictions = predict_features(model, task_id, features, batch_size=3, packing=packing)
            for a, b in zip(reference, predictions, strict=True):
                assert _same(a.__dict__, b.__dict__), (task_id, packing, a.doc_id, a.window)


def _same(a, b) -> bool:
    """Equal, floats within 1e-9 (the layouts round differently in the last bits)."""
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= 1e-9
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return a.shape == b.shape and bool(torch.allclose(a, b, rtol=0, atol=1e-9))
    return a == b
