"""Seeding and JSON-able snapshots of every global RNG (python, numpy, torch CPU and CUDA).

A resumed run restores these so that dropout masks and any other draw continue exactly as in
an uninterrupted run. Byte states are base64 text so they fit in ``state.json``.
"""

from __future__ import annotations

import base64
import os
import random
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch


def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seed python ``random``, numpy's global RNG and torch (CPU and every CUDA device).

    With ``deterministic`` torch uses deterministic kernels where it has them
    (``use_deterministic_algorithms(True, warn_only=True)``: ops without one warn, never fail).
    Needed even on CPU: with more than one thread, the backward of advanced indexing with
    repeated indices (``h[b_idx, start]`` in the heads) accumulates in a varying order, and two
    runs with the same seed drift apart in the last bits after a few steps. Call this before any
    CUDA work: cuBLAS reads ``CUBLAS_WORKSPACE_CONFIG`` when it starts.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def encode_state(state: torch.Tensor) -> str:
    """A torch ``uint8`` RNG state as base64 text."""
    return base64.b64encode(state.cpu().numpy().tobytes()).decode("ascii")


def decode_state(text: str) -> torch.Tensor:
    """Inverse of :func:`encode_state`."""
    return torch.frombuffer(bytearray(base64.b64decode(text)), dtype=torch.uint8).clone()


def get_rng_state() -> dict[str, Any]:
    """The states of python, numpy, torch CPU and (if available) every CUDA device, JSON-able."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": [version, list(internal), gauss],
        "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)],
        "torch": encode_state(torch.get_rng_state()),
    }
    if torch.cuda.is_available():
        state["cuda"] = [encode_state(s) for s in torch.cuda.get_rng_state_all()]
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore what :func:`get_rng_state` returned (CUDA states only when saved and available)."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(decode_state(state["torch"]))
    if "cuda" in state and torch.cuda.is_available():
        # Devices beyond those saved (or saved beyond those visible) are left as they are: a run
        # resumed on another number of GPUs cannot be bit-identical anyway.
        for index, saved in enumerate(state["cuda"][: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(decode_state(saved), index)
