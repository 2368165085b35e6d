"""Fusion rules in isolation."""

from __future__ import annotations

import pytest
import torch

from mtpeft.adapters.fusion import FUSIONS, AttentionFusion, GatedFusion, create_fusion
from mtpeft.registry import UnknownNameError


def _randomize(module: torch.nn.Module) -> None:
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn_like(p))


@pytest.mark.parametrize("gate_rank", [0, 4])
def test_gated_over_identical_inputs_is_the_input(gate_rank):
    fusion = GatedFusion(12, gate_rank=gate_rank)
    _randomize(fusion)  # whatever the gate, g * x + (1 - g) * x == x
    x = torch.randn(3, 5, 12)
    torch.testing.assert_close(fusion(x, x), x)


def test_gated_is_a_convex_mix_with_learned_gate():
    fusion = GatedFusion(4, gate_rank=0)
    _randomize(fusion)
    s, p = torch.randn(2, 4), torch.randn(2, 4)
    g = torch.sigmoid(fusion.gate(torch.cat([s, p], -1)))
    torch.testing.assert_close(fusion(s, p), g * s + (1 - g) * p)


def test_attention_at_init_over_identical_inputs_is_the_input():
    fusion = AttentionFusion(12, attn_dim=4)
    x = torch.randn(3, 5, 12)
    torch.testing.assert_close(fusion(x, x), x)  # output projection starts at zero


def test_attention_after_training_mixes_with_weights_summing_to_one():
    fusion = AttentionFusion(8, attn_dim=4)
    _randomize(fusion)
    s, p = torch.randn(2, 3, 8), torch.randn(2, 3, 8)
    weights = fusion.attention_weights(s, p)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 3))
    assert not torch.allclose(fusion(s, p), s)


@pytest.mark.parametrize("name", ["sum", "gated", "attention"])
def test_zero_deltas_stay_zero(name):
    fusion = create_fusion(name, 6)
    _randomize(fusion)
    zero = torch.zeros(2, 6)
    torch.testing.assert_close(fusion(zero, zero), zero)


def test_unknown_fusion_lists_choices():
    with pytest.raises(UnknownNameError, match="attention, gated, sum"):
        FUSIONS.get("concat")
