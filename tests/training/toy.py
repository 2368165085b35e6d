"""A tiny multi-task model for training tests: frozen 'backbone', shared layer, one head per task."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class ToyMultiTask(nn.Module):
    """``x -> frozen backbone -> shared (trainable) -> head_t``; loss_t = MSE of head_t on its targets."""

    def __init__(self, tasks: list[str], dim: int = 6, hidden: int = 4, backbone: int = 32, seed: int = 0) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.backbone = nn.Linear(dim, backbone)
        self.shared = nn.Linear(backbone, hidden)
        self.heads = nn.ModuleDict({t: nn.Linear(hidden, 1) for t in tasks})
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=generator) * 0.5)
        self.backbone.requires_grad_(False)

    def shared_parameters(self) -> list[nn.Parameter]:
        return list(self.shared.parameters())

    def other_parameters(self) -> list[nn.Parameter]:
        return list(self.heads.parameters())

    def losses(self, batches: dict[str, tuple[Tensor, Tensor]]) -> dict[str, Tensor]:
        out = {}
        for task, (x, y) in batches.items():
            h = torch.tanh(self.shared(torch.tanh(self.backbone(x))))
            out[task] = ((self.heads[task](h).squeeze(-1) - y) ** 2).mean()
        return out


def toy_batches(tasks: list[str], n: int = 5, dim: int = 6, seed: int = 1) -> dict[str, tuple[Tensor, Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    return {t: (torch.randn(n, dim, generator=generator), torch.randn(n, generator=generator)) for t in tasks}
