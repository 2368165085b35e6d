"""Packed (padding-free) batches equal the padded path: states, losses and gradients, in float64.

The tiny Llama (SDPA on CPU) in float64, every head kind (the six study tasks), rows that mix
tasks, S1, S2, S3a at layer and output placement, S3b, S4, PCGrad; examples in a packed row never
see each other; the length-grouped fallback is exact too.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from mtpeft.model.build import build_model
from mtpeft.model.packing import GroupedLayout, PackedLayout, Packing
from mtpeft.training.weighting import build_loss_strategy
from tests.model.conftest import features_for, make_config

TOLERANCE = 1e-6


def _built(strategy: str, tiny_backbone, **options):
    """The model of ``strategy`` in float64 with random LoRA B and fusion weights (so every adapter
    and gate acts), in eval mode (no dropout: the comparisons are deterministic)."""
    built = build_model(make_config(strategy, **options), backbone=tiny_backbone)
    model = built.model.double().eval()
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.requires_grad and ("lora_B" in name or "fusion" in name):
                param.copy_(0.1 * torch.randn(param.shape, generator=generator, dtype=param.dtype))
    return built, model


def _pass(model, features, packing, loss_strategy: str | None = None):
    """States (real tokens), per-task losses and the gradients of one forward + backward."""
    model.zero_grad(set_to_none=True)
    batch = model.collate(features, packing)
    with torch.no_grad():
        states = {t: s[batch.batches[t]["attention_mask"].bool()] for t, s in model.hidden_states(batch).items()}
    losses = model(batch).losses
    if loss_strategy is None:
        sum(losses.values()).backward()
    else:
        shared = model.shared_parameters()
        ids = {id(p) for p in shared}
        strategy = build_loss_strategy(loss_strategy, list(losses), seed=0)
        strategy.backward(losses, shared, [p for p in model.trainable_parameters() if id(p) not in ids])
        strategy.finish(shared)
    grads = {n: (p.grad if p.grad is not None else torch.zeros_like(p)).clone() for n, p in model.named_parameters()
             if p.requires_grad}
    return batch, states, {t: loss.detach() for t, loss in losses.items()}, grads


def _assert_close(reference, other) -> None:
    _, states, losses, grads = reference
    _, states2, losses2, grads2 = other
    assert set(states) == set(states2) and set(losses) == set(losses2)
    for task in states:
        assert states[task].shape == states2[task].shape
        assert (states[task] - states2[task]).abs().max() <= TOLERANCE, task
        assert abs(float(losses[task] - losses2[task])) <= TOLERANCE, task
    worst = max((grads[n] - grads2[n]).abs().max().item() for n in grads)
    assert worst <= TOLERANCE
    assert any(g.abs().sum() > 0 for g in grads.values())


@pytest.fixture(scope="module")
def features(sample_documents, tokenizer):
    from mtpeft.backbone import Backbone, tiny_llama

    built = build_model(make_config(), backbone=Backbone(model=tiny_llama(0), tokenizer=tokenizer, name="tiny", source="t"))
    return features_for(built, sample_documents, tokenizer, per_task=3)


def test_the_six_tasks_cover_every_head_kind(features):
    from mtpeft.tasks.from_config import task_from_config

    kinds = {task_from_config({"id": t}).head_kind for t in features}
    assert {"token", "span", "relation", "ranking"} <= kinds


@pytest.mark.parametrize(
    ("strategy", "options"),
    [("s1", {}), ("s2", {}), ("s3a", {}), ("s3a", {"placement": "output"}), ("s3a", {"fusion": "attention"}),
     ("s3b", {}), ("s3b", {"detach_l1_for_l2": False}), ("s4", {})],
    ids=["s1", "s2", "s3a-layer", "s3a-output", "s3a-attention-fusion", "s3b", "s3b-attached", "s4"],
)
def test_packed_rows_equal_the_padded_batch(strategy, options, tiny_backbone, features):
    _, model = _built(strategy, tiny_backbone, **options)
    padded = _pass(model, features, None)
    for budget in (80, 4096):  # several rows whose tasks mix, and one row holding every example
        packed = _pass(model, features, Packing("packed", budget))
        layout = packed[0].layout
        assert isinstance(layout, PackedLayout) and layout.real_tokens == padded[0].num_tokens
        assert packed[0].num_positions < padded[0].num_positions
        _assert_close(padded, packed)
    groups_per_row = [len(set(layout.token_groups[r * layout.input_ids.shape[1]:(r + 1) * layout.input_ids.shape[1]]))
                      for r in range(layout.input_ids.shape[0])]
    assert max(groups_per_row) == len(features)  # the one-row layout mixes all six tasks


@pytest.mark.parametrize("loss_strategy", ["pcgrad", "equal"])
def test_gradient_strategies_see_the_same_gradients(loss_strategy, tiny_backbone, features):
    _, model = _built("s3a", tiny_backbone)
    _assert_close(_pass(model, features, None, loss_strategy), _pass(model, features, Packing("packed", 80), loss_strategy))


def test_length_grouped_fallback_equals_the_padded_batch(tiny_backbone, features):
    _, model = _built("s3b", tiny_backbone)
    grouped = _pass(model, features, Packing("grouped"))
    assert isinstance(grouped[0].layout, GroupedLayout) and len(grouped[0].layout.buckets) > 1
    _assert_close(_pass(model, features, None), grouped)


def test_an_example_never_sees_its_neighbours(tiny_backbone, features, tokenizer):
    """Change one example's tokens: every other example's states stay bit-identical."""
    _, model = _built("s3a", tiny_backbone)
    packing = Packing("packed", 80)
    batch = model.collate(features, packing)
    layout = batch.layout
    width = layout.input_ids.shape[1]
    # the example to change: one with other examples right before and after it in its row
    real = torch.zeros(layout.positions + 1, dtype=torch.bool)
    real[layout.index] = True
    real[-1] = False
    target, offset = None, 0
    for g, t in enumerate(batch.tasks):
        mask = batch.batches[t]["attention_mask"]
        grid = layout.index[offset : offset + mask.numel()].view(mask.shape)
        offset += mask.numel()
        for i in range(mask.shape[0]):
            first, last = int(grid[i, 0]), int(grid[i, int(mask[i].sum()) - 1])
            if target is None and first % width and (last + 1) % width and real[first - 1] and real[last + 1]:
                target = (t, i)
    assert target is not None, "no example with neighbours on both sides; the layout changed"
    task, i = target
    changed = {t: list(f) for t, f in features.items()}
    old = changed[task][i]
    changed[task][i] = replace(old, input_ids=[(x + 17) % 1000 + 1 for x in old.input_ids])

    with torch.no_grad():
        before = model.hidden_states(model.collate(features, packing))
        after_batch = model.collate(changed, packing)
        after = model.hidden_states(after_batch)
    assert torch.equal(after_batch.layout.position_ids, layout.position_ids)  # same places, other tokens
    for t in batch.tasks:
        mask = batch.batches[t]["attention_mask"].bool()
        for row in range(mask.shape[0]):
            same = torch.equal(before[t][row][mask[row]], after[t][row][mask[row]])
            assert same == ((t, row) != target), (t, row)


def test_an_example_longer_than_the_budget_gets_a_row_of_its_own(tiny_backbone, features):
    _, model = _built("s3a", tiny_backbone)
    longest = max(len(f.input_ids) for fs in features.values() for f in fs)
    packed = _pass(model, features, Packing("packed", 16))
    layout = packed[0].layout
    assert layout.input_ids.shape[1] == longest  # widened to the longest example, never truncated
    assert layout.real_tokens == sum(len(f.input_ids) for fs in features.values() for f in fs)
    full_rows = [r for r in range(layout.input_ids.shape[0]) if layout.position_ids[r, -1] == longest - 1
                 and layout.position_ids[r, 0] == 0 and layout.position_ids[r].diff().eq(1).all()]
    assert full_rows  # the longest example alone in its row
    _assert_close(_pass(model, features, None), packed)


def test_the_backbone_refuses_mismatched_token_routes(tiny_backbone):
    _, model = _built("s3a", tiny_backbone)
    routes = list(model.backbone.routes.values())
    with pytest.raises(ValueError, match="token routes"):
        model.backbone(torch.ones(2, 3, dtype=torch.long), None, token_routes=routes[:2])
