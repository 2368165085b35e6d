"""What a routing plan asks of one projection, for the fused kernel (``adapters/fused.py``).

A plan maps adapters to rows; the fused kernel works on row *groups*, rows that the same adapters act
on (and are gated or not alike), so that each group's adapters are ONE ``A`` and ONE ``B`` GEMM. The
layout of a plan is made once per forward (the router caches it by the set of adapters a layer
holds), with the small per-group tensors (column scalings, gate coefficients, row indices).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from mtpeft.adapters.plan import Rows, RoutingPlan, as_index, covers_all, row_set, rows_from_indices


@dataclass(frozen=True)
class Group:
    """Rows of the batch that the same adapters act on (``adapters``: indices, shared ones first)."""

    rows: Rows
    adapters: tuple[int, ...]
    gated: bool
    """The scalar gate mixes shared and private on these rows (else their deltas are summed)."""


@dataclass(frozen=True)
class Layout:
    """What one routing plan asks of one projection: its adapters (shared first) and row groups."""

    names: tuple[str, ...]
    shared: tuple[bool, ...]
    groups: tuple[Group, ...]
    batch_size: int
    tied_halves: bool
    both_kinds: bool
    """Some group has shared and private adapters (a fusion applies)."""
    constants: dict = field(default_factory=dict, compare=False, repr=False)
    """Per ``(ranks, factors, dtype, device)``: each group's :class:`Constants` (made once per plan)."""


def layout_for(plan: RoutingPlan, present: set[str] | Sequence[str], gated: bool) -> Layout:
    """The :class:`Layout` of ``plan`` for a projection holding the adapters ``present``; ``gated``:
    the projection has a scalar gate, applied on the plan's ``fuse_rows``."""
    names = [n for n in plan.shared if n in present] + [n for n in plan.private if n in present]
    shared = [n in plan.shared for n in names]
    rows = [row_set({**plan.shared, **plan.private}[n], plan.batch_size) for n in names]
    fuse = row_set(plan.fuse_rows, plan.batch_size) if gated and plan.fuse_rows is not None else set()
    by_signature: dict[tuple[tuple[int, ...], bool], list[int]] = {}
    both = False
    for i in range(plan.batch_size):
        members = tuple(a for a in range(len(names)) if i in rows[a])
        if members:
            mixed = len({shared[a] for a in members}) == 2
            both = both or mixed
            by_signature.setdefault((members, mixed and i in fuse), []).append(i)
    groups = tuple(Group(rows_from_indices(r), members, g) for (members, g), r in by_signature.items())
    return Layout(tuple(names), tuple(shared), groups, plan.batch_size, plan.tied_halves, both)


@dataclass(frozen=True)
class Constants:
    """Per-group tensors that depend on the layout and the scalings only."""

    index: Tensor | None  # the rows as indices (None: a slice)
    full: bool  # the group is the whole batch
    blocks: tuple[tuple[int, int, int], ...]  # (adapter, first column, end column) in h
    scale: Tensor  # (R,): f_a on each adapter's columns
    coef_base: Tensor | None = None  # gated: (R,) f on private columns, 0 on shared ones
    coef_slope: Tensor | None = None  # gated: (R,) f on shared, -f on private: c = base + slope g
    kinds: Tensor | None = None  # gated: (2, R) 1 on shared columns (row 0), private ones (row 1)
    shared_columns: Tensor | None = None  # gated: (R,) bool


def constants_for(layout: Layout, ranks: tuple[int, ...], factors: tuple[float, ...], dtype: torch.dtype,
                  device: torch.device) -> tuple[Constants, ...]:
    """Each group's :class:`Constants` for adapters of ``ranks`` and column factors ``factors``
    (``s_a / (1 - p)``), made on first use and kept with the layout."""
    key = (ranks, factors, dtype, device)
    if key not in layout.constants:
        layout.constants[key] = tuple(_group_constants(layout, group, ranks, factors, dtype, device)
                                      for group in layout.groups)
    return layout.constants[key]


def _group_constants(layout: Layout, group: Group, ranks: tuple[int, ...], factors: tuple[float, ...],
                     dtype: torch.dtype, device: torch.device) -> Constants:
    blocks, start = [], 0
    for a in group.adapters:
        blocks.append((a, start, start + ranks[a]))
        start += ranks[a]
    columns = [a for a, lo, hi in blocks for _ in range(hi - lo)]
    scale = torch.tensor([factors[a] for a in columns], dtype=dtype)
    shared = torch.tensor([layout.shared[a] for a in columns])
    gated = {}
    if group.gated:
        gated = {
            "coef_base": scale * ~shared,
            "coef_slope": scale * (2 * shared.to(dtype) - 1),
            "kinds": torch.stack([shared, ~shared]).to(dtype),
            "shared_columns": shared,
        }
    return Constants(
        index=None if isinstance(group.rows, slice) else as_index(group.rows, device),
        full=covers_all(group.rows, layout.batch_size),
        blocks=tuple(blocks),
        scale=scale.to(device),
        **{name: t.to(device) for name, t in gated.items()},
    )
