"""Fixtures for adapter tests: the seeded tiny Llama with S3a-style adapters."""

from __future__ import annotations

import pytest
import torch

from mtpeft.adapters.model import MultiAdapterBackbone, Route
from mtpeft.adapters.routing import KERNELS
from mtpeft.backbone import tiny_llama

TASKS = ("a", "b", "c")


def shared_private(tasks=TASKS, shared_rank=16, private_rank=8):
    adapters = {"shared": shared_rank, **{f"private_{t}": private_rank for t in tasks}}
    routes = {t: Route(shared=("shared",), private=f"private_{t}") for t in tasks}
    return adapters, routes


def randomize_lora_b(model: MultiAdapterBackbone, seed: int = 1) -> None:
    """LoRA B starts at zero; tests that compare routes need adapters that change the output."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.05)


def build(fusion="gated", placement="layer", tasks=TASKS, seed=0, randomize=True, **kwargs) -> MultiAdapterBackbone:
    """S3a-style adapters on the tiny Llama, no LoRA dropout (``kwargs``: e.g. ``kernel``)."""
    adapters, routes = shared_private(tasks)
    model = MultiAdapterBackbone(
        tiny_llama(seed), adapters, routes, fusion=fusion, placement=placement, lora_dropout=0.0, **kwargs
    )
    if randomize:
        randomize_lora_b(model)
    return model


@pytest.fixture(params=KERNELS)
def kernel(request) -> str:
    """Every routing test runs on both kernels (``adapters.kernel``)."""
    return request.param


@pytest.fixture
def input_ids() -> torch.Tensor:
    return torch.randint(0, 1000, (6, 9), generator=torch.Generator().manual_seed(0))
