"""Fusion rules that mix a shared and a private representation of the same shape.

Each rule is an ``nn.Module`` with ``forward(shared, private) -> fused`` over tensors of shape
``(..., dim)``, registered in :data:`FUSIONS` by name. They serve both placements:

* ``output``: ``dim`` is the backbone's hidden size; shared/private are the final hidden states of a
  shared-only and a private-only pass.
* ``layer``: ``dim`` is an adapted projection's output size; shared/private are the two low-rank
  deltas ``B A x`` inside that projection. All rules map ``(0, 0)`` to ``0`` so that zero-initialised
  LoRA B matrices leave the backbone's output unchanged at every placement.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from mtpeft.registry import Registry

FUSIONS: Registry[type[nn.Module]] = Registry("fusion")


@FUSIONS.register("sum")
class SumFusion(nn.Module):
    """No fusion: ``shared + private`` (the A3 ablation). At ``layer`` placement this is exactly PEFT
    with both adapters active."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, shared: Tensor, private: Tensor) -> Tensor:
        return shared + private


@FUSIONS.register("gated")
class GatedFusion(nn.Module):
    """``fused = g * shared + (1 - g) * private`` with ``g = sigmoid(f([shared; private]))``.

    ``gate_rank = 0`` gives one scalar gate per position (``f`` is ``Linear(2 dim, 1)``), cheap
    enough to put inside every projection; ``gate_rank = k > 0`` gives one gate per feature through a
    rank-k bottleneck (``Linear(2 dim, k) -> Linear(k, dim)``). ``f`` starts at zero, so ``g = 0.5``.
    Over identical inputs the output equals the input whatever ``g`` is, i.e. plain LoRA.
    """

    def __init__(self, dim: int, gate_rank: int = 0) -> None:
        super().__init__()
        if gate_rank < 0:
            raise ValueError(f"gate_rank must be >= 0, got {gate_rank}")
        self.dim = dim
        self.gate_rank = gate_rank
        if gate_rank == 0:
            self.gate = nn.Linear(2 * dim, 1)
            nn.init.zeros_(self.gate.weight)
        else:
            # Down-projection random, up-projection zero: g starts at 0.5 yet both get gradients.
            self.gate = nn.Sequential(nn.Linear(2 * dim, gate_rank, bias=False), nn.Linear(gate_rank, dim))
            nn.init.zeros_(self.gate[1].weight)
        nn.init.zeros_(self._gate_bias())

    def _gate_bias(self) -> Tensor:
        return self.gate.bias if self.gate_rank == 0 else self.gate[1].bias

    def gate_values(self, shared: Tensor, private: Tensor) -> Tensor:
        """The gate ``g`` (shape ``(..., 1)`` or ``(..., dim)``), for logging and analysis."""
        return torch.sigmoid(self.gate(torch.cat([shared, private], dim=-1)))

    def forward(self, shared: Tensor, private: Tensor) -> Tensor:
        g = self.gate_values(shared, private)
        return private + g * (shared - private)  # = g * shared + (1 - g) * private, one fewer product


@FUSIONS.register("attention")
class AttentionFusion(nn.Module):
    """Attention of one query over the two sources (shared, private), with layer norm and residual.

    ``q = Wq LN((s + p) / 2)``, ``k_i = Wk LN(x_i)``, ``v_i = Wv LN(x_i)``, ``a = softmax(q k / sqrt(d))``,
    ``fused = (a_s s + a_p p) + Wo (a_s v_s + a_p v_p)``.

    The first term is the residual path: a convex mix of the raw sources, so scale is preserved;
    ``Wo`` starts at zero, so at initialisation (and for identical inputs with ``Wo = 0``) the
    output is plain LoRA. Layer norms and projections have no bias, so ``(0, 0) -> 0`` always.
    """

    def __init__(self, dim: int, attn_dim: int = 32) -> None:
        super().__init__()
        if attn_dim <= 0:
            raise ValueError(f"attn_dim must be > 0, got {attn_dim}")
        self.dim = dim
        self.attn_dim = attn_dim
        self.norm = nn.LayerNorm(dim, bias=False)
        self.query = nn.Linear(dim, attn_dim, bias=False)
        self.key = nn.Linear(dim, attn_dim, bias=False)
        self.value = nn.Linear(dim, attn_dim, bias=False)
        self.out = nn.Linear(attn_dim, dim, bias=False)
        nn.init.zeros_(self.out.weight)

    def attention_weights(self, shared: Tensor, private: Tensor) -> Tensor:
        """Weights over (shared, private), shape ``(..., 2)``."""
        sources = self.norm(torch.stack([shared, private], dim=-2))  # (..., 2, dim)
        q = self.query(self.norm((shared + private) / 2)).unsqueeze(-2)  # (..., 1, d)
        k = self.key(sources)  # (..., 2, d)
        return torch.softmax((q * k).sum(-1) / math.sqrt(self.attn_dim), dim=-1)

    def forward(self, shared: Tensor, private: Tensor) -> Tensor:
        sources = torch.stack([shared, private], dim=-2)  # (..., 2, dim)
        normed = self.norm(sources)
        q = self.query(self.norm((shared + private) / 2)).unsqueeze(-2)  # (..., 1, d)
        a = torch.softmax((q * self.key(normed)).sum(-1) / math.sqrt(self.attn_dim), dim=-1)  # (..., 2)
        a = a.unsqueeze(-1)  # (..., 2, 1)
        mixed = (a * sources).sum(-2)  # (..., dim)
        attended = (a * self.value(normed)).sum(-2)  # (..., d)
        return mixed + self.out(attended)


def create_fusion(name: str, dim: int, **options) -> nn.Module:
    """Instantiate the fusion rule ``name`` for representations of size ``dim``."""
    return FUSIONS.get(name)(dim, **options)
