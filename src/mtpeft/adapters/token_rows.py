"""Per-token adapter routing for packed rows that mix tasks: every token is a row of the router.

The router (:mod:`mtpeft.adapters.routing`) applies a :class:`~mtpeft.adapters.routing.RoutingPlan`
along dimension 0 of each LoRA layer's input, i.e. per row of the batch. A packed row
(:mod:`mtpeft.model.packing`) holds examples of several tasks, so the adapters must be chosen per
token. Rather than a second router, this module shows the router a token-level batch: while
:meth:`TokenRows.view` is active, a forward pre-hook that runs BEFORE the router's views the layer
input ``(B, T, D)`` as ``(B * T, 1, D)``, and a forward hook that runs AFTER the router's views the
output back as ``(B, T, out)``. A plan over ``B * T`` "rows" then routes each token; where a task's
tokens are contiguous in the flattened batch (the packer lays tasks out in order) its rows are a
slice, so the router's fast paths (views, one matmul per block) apply unchanged. Every LoRA op is
per token (projection, dropout, scalar gate, fusion), so nothing else changes.

Why hand-written: PEFT mixes adapters per row and only at inference (``adapter_names``); no
library routes several adapters per token with gradients.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from peft.tuners.lora import LoraLayer
from torch import Tensor, nn


class TokenRows:
    """Hooks on every PEFT LoRA layer of ``model`` that, inside :meth:`view`, present tokens as rows.

    Install it AFTER the :class:`~mtpeft.adapters.routing.AdapterRouter` (its output hook must run
    after the router's, which adds the deltas); its input hook is prepended, so it runs first.
    """

    def __init__(self, model: nn.Module) -> None:
        self._shape: tuple[int, int] | None = None
        self._handles = []
        for module in model.modules():
            if isinstance(module, LoraLayer):
                self._handles.append(module.register_forward_pre_hook(self._flatten, prepend=True))
                self._handles.append(module.register_forward_hook(self._restore))

    @contextmanager
    def view(self, batch: int, length: int) -> Iterator[None]:
        """Within this block, LoRA layers of a ``(batch, length)`` forward see ``batch * length`` rows."""
        if self._shape is not None:
            raise RuntimeError("token views do not nest")
        self._shape = (batch, length)
        try:
            yield
        finally:
            self._shape = None

    def _flatten(self, module: nn.Module, args: tuple) -> tuple | None:
        if self._shape is None:
            return None
        x: Tensor = args[0]
        if tuple(x.shape[:2]) != self._shape:
            raise RuntimeError(f"token view of a {self._shape} batch, but a LoRA layer got input {tuple(x.shape)}")
        return (x.reshape(self._shape[0] * self._shape[1], 1, *x.shape[2:]), *args[1:])

    def _restore(self, module: nn.Module, args: tuple, output: Tensor) -> Tensor | None:
        if self._shape is None:
            return None
        return output.reshape(*self._shape, *output.shape[2:])

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
