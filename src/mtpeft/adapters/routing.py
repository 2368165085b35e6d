"""Per-row routing of PEFT LoRA adapters, in training mode, with gradients.

PEFT can mix adapters within a batch only at inference (``adapter_names=`` is refused in training
mode by ``LoraModel``) and only one adapter per row. mtpeft needs, for every row of a batch, a
*set* of adapters (the shared one and the row's task's private one), optionally fused, with
gradients. This module does that without changing PEFT's layers or weight format:

1. a forward pre-hook on every PEFT ``LoraLayer`` passes ``adapter_names=["__base__"] * B``,
   PEFT's own placeholder for "no adapter", so PEFT returns the frozen base projection only;
2. a forward hook then adds, for each adapter, ``B_a A_a dropout(x[rows_a]) * scaling_a`` to the
   rows the adapter serves, reading the weights from PEFT's ``lora_A``/``lora_B`` dicts.

Outside a :meth:`AdapterRouter.route` block the hooks do nothing: the model is plain PEFT (all
active adapters summed). The adapters therefore save and load with plain ``peft``.

Rows are given as a ``slice`` (a contiguous block: a view, no copy) or a ``LongTensor`` of row
indices. When the blocks of a group tile the batch in order, their deltas are concatenated; else
they are scattered with an out-of-place ``index_add`` (autograd-safe).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from peft.tuners.lora import LoraLayer
from torch import Tensor, nn

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


def rows_from_indices(indices: list[int], offset: int = 0) -> Rows:
    """A slice when ``indices`` are consecutive (a cheap view), else a LongTensor."""
    if indices and indices == list(range(indices[0], indices[0] + len(indices))):
        return slice(indices[0] + offset, indices[0] + offset + len(indices))
    return torch.tensor([i + offset for i in indices], dtype=torch.long)


def _covers_all(rows: Rows, batch_size: int) -> bool:
    return isinstance(rows, slice) and rows.start == 0 and rows.stop == batch_size


def _as_index(rows: Rows, device: torch.device) -> Tensor:
    if isinstance(rows, slice):
        return torch.arange(rows.start, rows.stop, device=device)
    return rows.to(device)


def _tiles_in_order(groups: Mapping[str, Rows], batch_size: int) -> bool:
    position = 0
    for rows in groups.values():
        if not isinstance(rows, slice) or rows.start != position:
            return False
        position = rows.stop
    return position == batch_size


def _lora_delta(layer: LoraLayer, name: str, x: Tensor) -> Tensor:
    lora_a, lora_b = layer.lora_A[name], layer.lora_B[name]
    x = x.to(lora_a.weight.dtype)
    return lora_b(lora_a(layer.lora_dropout[name](x))) * layer.scaling[name]


def _summed_delta(layer: LoraLayer, x: Tensor, groups: Mapping[str, Rows], batch_size: int) -> Tensor | None:
    """Sum over adapters of their deltas on their rows, as a full-batch tensor; None if no adapter."""
    groups = {name: rows for name, rows in groups.items() if name in layer.lora_A}
    if not groups:
        return None
    if len(groups) > 1 and _tiles_in_order(groups, batch_size):
        return torch.cat([_lora_delta(layer, name, x[rows]) for name, rows in groups.items()], dim=0)
    total: Tensor | None = None
    for name, rows in groups.items():
        if _covers_all(rows, batch_size):
            delta = _lora_delta(layer, name, x)
            total = delta if total is None else total + delta
            continue
        delta = _lora_delta(layer, name, x[rows])
        if total is None:
            total = delta.new_zeros((batch_size, *delta.shape[1:]))
        total = total.index_add(0, _as_index(rows, delta.device), delta)
    return total


def fusion_key(module_name: str) -> str:
    """Key of a projection's layer-fusion module in an ``nn.ModuleDict`` (dots are not allowed)."""
    return module_name.replace(".", "__")


class AdapterRouter:
    """Installs the routing hooks on every PEFT LoRA layer of ``model``.

    ``layer_fusions`` (optional) maps :func:`fusion_key` of each adapted module's name to the
    fusion module applied to its (shared, private) deltas when a plan has ``fuse_rows``.
    """

    def __init__(self, model: nn.Module, layer_fusions: nn.ModuleDict | None = None) -> None:
        self._plan: RoutingPlan | None = None
        self._handles = []
        self.layer_names: list[str] = []
        for name, module in model.named_modules():
            if isinstance(module, LoraLayer):
                fusion = layer_fusions[fusion_key(name)] if layer_fusions is not None else None
                self._handles.append(module.register_forward_pre_hook(self._pre_hook, with_kwargs=True))
                self._handles.append(module.register_forward_hook(self._make_hook(fusion)))
                self.layer_names.append(name)
        if not self.layer_names:
            raise ValueError("the model has no PEFT LoRA layers to route")

    @contextmanager
    def route(self, plan: RoutingPlan) -> Iterator[None]:
        """Within this block, every LoRA layer applies ``plan`` instead of PEFT's active adapters."""
        if self._plan is not None:
            raise RuntimeError("routing plans do not nest")
        self._plan = plan
        try:
            yield
        finally:
            self._plan = None

    @property
    def active_plan(self) -> RoutingPlan | None:
        return self._plan

    def _pre_hook(self, module: nn.Module, args: tuple, kwargs: dict):
        if self._plan is None:
            return None
        x = args[0]
        if x.shape[0] != self._plan.batch_size:
            raise RuntimeError(f"routing plan is for {self._plan.batch_size} rows, the layer got {x.shape[0]}")
        return args, {**kwargs, "adapter_names": ["__base__"] * x.shape[0]}

    def _make_hook(self, fusion: nn.Module | None):
        def hook(module: LoraLayer, args: tuple, output: Tensor) -> Tensor | None:
            plan = self._plan
            if plan is None:
                return None
            x = args[0]
            shared = _summed_delta(module, x, plan.shared, plan.batch_size)
            private = _summed_delta(module, x, plan.private, plan.batch_size)
            if shared is None and private is None:
                return output
            if shared is None or private is None:
                delta = shared if private is None else private
            elif fusion is None or plan.fuse_rows is None:
                delta = shared + private
            elif _covers_all(plan.fuse_rows, plan.batch_size):
                delta = fusion(shared, private)
            else:
                index = _as_index(plan.fuse_rows, shared.device)
                fused = fusion(shared.index_select(0, index), private.index_select(0, index))
                delta = (shared + private).index_copy(0, index, fused)
            return output + delta.to(output.dtype)

        return hook

    def remove(self) -> None:
        """Remove the hooks (the model is plain PEFT again)."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
