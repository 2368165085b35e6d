"""Fixtures of the head tests: seeded randomness and a Features factory (no backbone needed)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from mtpeft.tasks.features import Features


@pytest.fixture(autouse=True)
def seeded() -> None:
    torch.manual_seed(0)


@pytest.fixture
def make_features() -> Callable[..., Features]:
    """``make_features(n_tokens, **fields)``: one window of ``n_tokens`` text-bearing tokens
    (token ids 1..n, offsets (2i, 2i+1)); ``special`` lists positions that carry no text."""

    def make(n_tokens: int, special: tuple[int, ...] = (), doc_id: str = "doc", **fields: object) -> Features:
        offsets = [(0, 0) if i in special else (2 * i, 2 * i + 1) for i in range(n_tokens)]
        return Features(
            task="task", doc_id=doc_id, input_ids=list(range(1, n_tokens + 1)), token_offsets=offsets, **fields
        )

    return make


def _assert_padding_inert(head: torch.nn.Module, batch: dict, hidden_size: int) -> None:
    """Loss unchanged when padded positions of the hidden states change, and zero gradient there."""
    mask = batch["attention_mask"].bool()
    B, T = mask.shape
    hidden = torch.randn(B, T, hidden_size, requires_grad=True)
    loss = head(hidden, batch).loss
    loss.backward()
    assert (~mask).any(), "the batch must contain padding for this check to mean anything"
    assert torch.count_nonzero(hidden.grad[~mask]) == 0
    assert torch.count_nonzero(hidden.grad[mask]) > 0
    noisy = hidden.detach().clone()
    noisy[~mask] = 100.0 * torch.randn(int((~mask).sum()), hidden_size)
    assert torch.allclose(head(noisy, batch).loss, loss.detach(), rtol=0, atol=1e-6)


def _overfit(
    head: torch.nn.Module, batch: dict, hidden: torch.Tensor, steps: int = 100, lr: float = 1e-2
) -> tuple[float, float]:
    """Train ``head`` on one fixed batch with Adam; return (first loss, last loss)."""
    optimizer = torch.optim.Adam(head.parameters(), lr=lr)
    head.train()
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = head(hidden, batch).loss
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses[0], losses[-1]


@pytest.fixture
def assert_padding_inert() -> Callable[[torch.nn.Module, dict, int], None]:
    return _assert_padding_inert


@pytest.fixture
def overfit() -> Callable[..., tuple[float, float]]:
    return _overfit
