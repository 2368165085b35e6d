"""Routing plans: which adapters act on which rows of the batch entering the backbone.

Shared by both routing kernels (``adapters/routing.py``: PEFT's modules behind hooks;
``adapters/fused.py``: one autograd function per projection). Rows are a ``slice`` (a contiguous
block: views, no copies) or a ``LongTensor`` of row indices.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

Rows = slice | Tensor


@dataclass
class RoutingPlan:
    """Which adapters apply to which rows of the batch entering the backbone.

    ``shared`` and ``private`` map adapter names to rows. Without layer fusion every delta is
    simply added. With layer fusion, on ``fuse_rows`` the summed shared delta ``S`` and summed
    private delta ``P`` are combined as ``fusion(S, P)``; elsewhere as ``S + P``.
    """

    batch_size: int
    shared: dict[str, Rows] = field(default_factory=dict)
    private: dict[str, Rows] = field(default_factory=dict)
    fuse_rows: Rows | None = None
    tied_halves: bool = False
    """Rows ``[0, B/2)`` and ``[B/2, B)`` are the same examples (``output`` placement's doubled
    batch): row ``i`` and row ``i + B/2`` share their LoRA dropout mask."""


def rows_from_indices(indices: list[int], offset: int = 0) -> Rows:
    """A slice when ``indices`` are consecutive (a cheap view), else a LongTensor."""
    if indices and indices == list(range(indices[0], indices[0] + len(indices))):
        return slice(indices[0] + offset, indices[0] + offset + len(indices))
    return torch.tensor([i + offset for i in indices], dtype=torch.long)


def covers_all(rows: Rows, batch_size: int) -> bool:
    """Whether ``rows`` is the whole batch."""
    return isinstance(rows, slice) and rows.start == 0 and rows.stop == batch_size


def as_index(rows: Rows, device: torch.device) -> Tensor:
    """``rows`` as a LongTensor on ``device``."""
    if isinstance(rows, slice):
        return torch.arange(rows.start, rows.stop, device=device)
    return rows.to(device)


def row_set(rows: Rows, batch_size: int) -> set[int]:
    """``rows`` as a set of Python ints."""
    return set(range(batch_size)[rows]) if isinstance(rows, slice) else set(rows.tolist())
