"""The fused routed projection (``adapters.kernel: fused``): one autograd function per adapted
projection computes the frozen projection, every adapter of every row, LoRA dropout and the
scalar gate of gated fusion.

Why by hand: PEFT runs each LoRA as separate modules (dropout, ``A``, ``B``, scaling, addition), each
keeping its input for the backward; with LoRA dropout every adapter keeps a masked copy of the
projection input and its mask, and the frozen projection, the adapters and the gate are separate
passes over the same tensors. No library fuses a routed, multi-adapter, gated LoRA with its frozen
projection (Unsloth's LoRA autograd functions are CUDA-only and one adapter per layer).

For ``y = x W^T + b`` and the row groups of a plan (rows that the same adapters act on; ``A_g`` and
``B_g`` stack the group's ``A_a`` and ``B_a``; ``f_a = s_a / (1 - p)`` per column):

forward:   ``x_d`` = ``x`` with the dropped elements zeroed (a transient copy, freed at once)
           ``h_g = x_d[rows_g] A_g^T``             ONE GEMM per group, all its adapters
           ``c_g = f`` or, gated, ``[f g, f (1 - g)]`` with ``g = sigmoid(h_g . u + b0)``,
           ``u_a = f_a w_kind B_a``                rank level: no ``(rows, out)`` tensor
           ``y = x W^T + b + (c_g h_g) B_g^T``    in training the deltas first and the frozen GEMM
                                                  accumulated into them by addmm; without
                                                  autograd the GEMM first and the deltas added in
                                                  place (each order measured faster in its mode)
backward:  ``dh``, ``dB``, the gate's gradients   rank level
           ``dA_g = dh_g^T x_d[rows_g]``          ``x_d`` rebuilt from ``x`` and the drop positions
           ``dx = drop(dh A) + dy W``             one buffer: the LoRA part, its drops zeroed, then
                                                  ``dy W`` accumulated into it by addmm

Saved for the backward: ``x`` (by reference: q, k and v share one tensor), the frozen ``W``, the
adapters' and gate's weights, the rank-level ``h_g`` (or ``c_g h_g``), gates ``g`` and ``u``, and the
positions of the dropped input elements (``adapters/lora_dropout.py``: int32, about ``4 p`` bytes per
input element, against PEFT's masked copy of the input and its mask per adapter). No ``(rows, in)`` or
``(rows, out)`` tensor is kept. One mask per projection is shared by a row's adapters (as in the PEFT
kernel), and at ``output`` placement (``tied_halves``) by the two copies of an example.

Fusions other than the scalar gate (attention) need the dense deltas ``S`` and ``P``: with
``rank_only`` the function returns ``x W^T + b`` and each group's ``c_g h_g``; the router forms ``S``,
``P`` and the fusion with ordinary autograd (``adapters/routing.py``).

Not done: the joint GEMM ``x [W; A]^T`` (the frozen projection and ``A`` reading ``x`` once). It
applies only where no dropout is drawn (``A`` reads the dropped-out input), needs a cached copy of
every frozen ``W`` (refreshed in its ``A`` rows at every call: a fused optimizer updates ``A`` without
bumping ``_version``), and leaves ``y`` a strided view of the joint output. Tried for prediction on the
project's CPU it was slower (prediction / bare forward 0.89 -> 0.79; ``benchmarks/RESULTS.md``).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from mtpeft.adapters.fused_layout import Constants, Group, Layout, constants_for
from mtpeft.adapters.lora_dropout import draw_seed, drop_positions
from mtpeft.adapters.plan import Rows


# ------------------------------------------------------------------------------- the function


@dataclass(frozen=True)
class _Call:
    """The non-tensor arguments of one call."""

    layout: Layout
    constants: tuple[Constants, ...]
    p: float
    seed: int | None
    rank_only: bool
    base_dtype: torch.dtype | None  # compute dtype of the frozen GEMM (dense W only)
    lora_dtype: torch.dtype
    autocast: bool  # the caller runs under autocast: computed here in explicit dtypes instead


def _as(t: Tensor, dtype: torch.dtype) -> Tensor:
    return t if t.dtype == dtype else t.to(dtype)


def _take(t2: Tensor, group: Group, c: Constants, batch: int) -> Tensor:
    """A group's token rows of a ``(N, F)`` tensor (``N = batch * T``): a view for a slice."""
    if c.full:
        return t2
    if c.index is None:
        per_row = t2.shape[0] // batch
        return t2[group.rows.start * per_row : group.rows.stop * per_row]
    return t2.view(batch, -1, t2.shape[-1]).index_select(0, c.index).view(-1, t2.shape[-1])


def _add_product(t2: Tensor, group: Group, c: Constants, batch: int, left: Tensor, right: Tensor) -> None:
    """``t2[token rows of group] += left @ right``, in place."""
    if c.index is None:
        _take(t2, group, c, batch).addmm_(left, right)
    else:
        t2.view(batch, -1, t2.shape[-1]).index_add_(0, c.index, (left @ right).view(len(c.index), -1, t2.shape[-1]))


def _stack(weights: Sequence[Tensor], group: Group, dtype: torch.dtype, dim: int) -> Tensor:
    parts = [_as(weights[a], dtype) for a in group.adapters]
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=dim)


def _gate_u(gate_w: Tensor, b_g: Tensor, c: Constants) -> Tensor:
    """``u`` (R,): the gate logit is ``h . u + b0`` for the raw ``h`` (scalings folded in)."""
    m = _as(gate_w, b_g.dtype).view(2, -1) @ b_g  # rows: w_S B, w_P B
    return torch.where(c.shared_columns, m[0], m[1]).mul_(c.scale)


def _delta_buffer(deltas, batch: int, rows: int, out: int, bias: Tensor | None, dtype: torch.dtype,
                  device: torch.device) -> Tensor | None:
    """``(rows, out)``: the groups' deltas ``c h B^T`` (and ``bias``) on their rows, zeros elsewhere; None
    without deltas."""
    if not deltas:
        return None
    group, c, hc, b_g = deltas[0]
    if len(deltas) == 1 and c.full:
        hc, b_t = _as(hc, dtype), _as(b_g, dtype).t()
        return torch.mm(hc, b_t) if bias is None else torch.addmm(_as(bias, dtype), hc, b_t)
    y2 = torch.zeros(rows, out, dtype=dtype, device=device)
    if bias is not None:
        y2 += _as(bias, dtype)
    for group, c, hc, b_g in deltas:
        _add_product(y2, group, c, batch, _as(hc, dtype), _as(b_g, dtype).t())
    return y2


def _dropped(x2: Tensor, call: _Call, positions: Tensor | None) -> Tensor:
    """``x`` with the dropped elements zeroed (a fresh tensor), or ``x`` itself without dropout."""
    if positions is None:
        return _as(x2, call.lora_dtype)
    dropped = x2.to(call.lora_dtype, copy=True)
    dropped.view(-1).index_fill_(0, positions, 0)
    return dropped


def _forward(call: _Call, x: Tensor, weight: Tensor | None, bias: Tensor | None, base_out: Tensor | None,
             gate_w: Tensor | None, gate_b: Tensor | None, a_weights: Sequence[Tensor],
             b_weights: Sequence[Tensor], in_place: bool):
    """``(y, outputs, saved, positions)``: ``y`` the projection (the frozen one alone with
    ``rank_only``), ``outputs`` each group's ``c h`` with ``rank_only``, ``saved`` per group the
    tensors its backward needs."""
    layout, batch = call.layout, call.layout.batch_size
    x2 = x.reshape(-1, x.shape[-1])
    positions = None if call.seed is None else drop_positions(x.shape, call.p, call.seed, layout.tied_halves, x.device)
    dropped = _dropped(x2, call, positions)
    outputs, saved, deltas = [], [], []
    for group, c in zip(layout.groups, call.constants):
        a_g = _stack(a_weights, group, call.lora_dtype, 0)
        h = _take(dropped, group, c, batch) @ a_g.t()  # (n, R)
        if call.rank_only:
            outputs.append(h.mul_(c.scale))
            saved.append(())
            continue
        b_g = _stack(b_weights, group, call.lora_dtype, 1)
        if group.gated:
            u = _gate_u(gate_w, b_g, c)
            g = torch.sigmoid(torch.addmv(_as(gate_b, h.dtype).expand(h.shape[0]), h, u))
            hc = h * torch.addcmul(c.coef_base, g[:, None], c.coef_slope)
            saved.append((h, g, u))
        else:
            hc = h.mul_(c.scale)
            saved.append((hc,))
        deltas.append((group, c, hc, b_g))
    del dropped
    if weight is None:
        y2 = base_out.reshape(-1, base_out.shape[-1])
        if deltas and not in_place:
            y2 = y2.clone()
    else:
        # In training the deltas come first and the frozen GEMM accumulates into them (addmm with
        # beta 1 reads the output tile by tile while it computes, instead of a second pass over y);
        # without autograd the deltas are added after the GEMM: each order measured faster in its
        # mode (benchmarks/RESULTS.md).
        xb, w = _as(x2, call.base_dtype), _as(weight, call.base_dtype)
        y2 = None if in_place else _delta_buffer(deltas, batch, x2.shape[0], w.shape[0], bias, call.base_dtype,
                                                 x.device)
        if y2 is None:
            y2 = torch.mm(xb, w.t()) if bias is None else torch.addmm(_as(bias, call.base_dtype), xb, w.t())
        else:
            y2.addmm_(xb, w.t())
            deltas = []
    for group, c, hc, b_g in deltas:
        _add_product(y2, group, c, batch, _as(hc, y2.dtype), _as(b_g, y2.dtype).t())
    return y2.view(*x.shape[:-1], y2.shape[-1]), outputs, saved, positions


def _backward(call: _Call, needs: tuple[bool, bool, bool], dy: Tensor | None, d_outputs: Sequence[Tensor | None],
              x: Tensor, weight: Tensor | None, gate_w: Tensor | None, a_weights, b_weights, saved, positions):
    """``(dx, d_gate_w, d_gate_b, [dA_a], [dB_a])``; ``needs``: (x, adapters, gate)."""
    needs_x, needs_adapters, needs_gate = needs
    layout, batch, dtype = call.layout, call.layout.batch_size, call.lora_dtype
    x2 = x.reshape(-1, x.shape[-1])
    dy2 = None if dy is None else dy.reshape(-1, dy.shape[-1])
    dropped = _dropped(x2, call, positions) if needs_adapters else None
    d_a: list[Tensor | None] = [None] * len(a_weights)
    d_b: list[Tensor | None] = [None] * len(b_weights)
    d_gw = d_gb = None
    single = len(layout.groups) == 1 and call.constants[0].full
    dx = None if single or not needs_x else x2.new_zeros(x2.shape, dtype=dtype)

    def accumulate(store: list, block: Tensor, a: int) -> None:
        store[a] = block if store[a] is None else store[a] + block

    for group, c, tensors, d_out in zip(layout.groups, call.constants, saved, d_outputs):
        a_g = _stack(a_weights, group, dtype, 0)
        if call.rank_only:
            dh = _as(d_out, dtype) * c.scale
        else:
            b_g = _stack(b_weights, group, dtype, 1)
            dy_g = _take(dy2, group, c, batch)
            dhc = _as(dy_g @ _as(b_g, dy_g.dtype), dtype)
            if group.gated:
                h, g, u = tensors
                coef = torch.addcmul(c.coef_base, g[:, None], c.coef_slope)
                d_b_g = _as(dy_g.t() @ _as(h * coef, dy_g.dtype), dtype)
                dz = torch.mv(dhc * h, c.coef_slope).mul_(g).mul_(1 - g)  # dL/dg g (1 - g)
                dh = (dhc * coef).addr_(dz, u)
                if needs_gate or needs_adapters:
                    d_kinds = c.kinds * torch.mv(h.t(), dz).mul_(c.scale)  # (2, R): dL/d(w_S B), dL/d(w_P B)
                    w = _as(gate_w, dtype).view(2, -1)
                    d_b_g.addmm_(w.t(), d_kinds)
                    gw = (d_kinds @ b_g.t()).view(1, -1)
                    d_gw = gw if d_gw is None else d_gw + gw
                    d_gb = dz.sum() if d_gb is None else d_gb + dz.sum()
            else:
                (hc,) = tensors
                d_b_g = _as(dy_g.t() @ _as(hc, dy_g.dtype), dtype)
                dh = dhc.mul_(c.scale)
            for a, lo, hi in c.blocks:
                accumulate(d_b, d_b_g[:, lo:hi], a)
        if needs_adapters:
            d_a_g = dh.t() @ _take(dropped, group, c, batch)
            for a, lo, hi in c.blocks:
                accumulate(d_a, d_a_g[lo:hi], a)
        if needs_x:
            if single:
                dx = dh @ a_g
            else:
                _add_product(dx, group, c, batch, dh, a_g)
    if needs_x:
        if positions is not None:
            dx.view(-1).index_fill_(0, positions, 0)
        if weight is not None:
            dx = _as(dx, call.base_dtype).addmm_(_as(dy2, call.base_dtype), _as(weight, call.base_dtype))
        dx = _as(dx.view(x.shape), x.dtype)
    return dx, d_gw, d_gb, d_a, d_b


def _no_autocast(call: _Call, device_type: str):
    return torch.autocast(device_type, enabled=False) if call.autocast else nullcontext()


class _FusedProjection(torch.autograd.Function):
    """Autograd of :func:`_forward`; inputs ``(call, x, W, b, base_out, gate_w, gate_b, *A, *B)``."""

    @staticmethod
    def forward(ctx, call: _Call, x, weight, bias, base_out, gate_w, gate_b, *adapters):
        k = len(adapters) // 2
        with _no_autocast(call, x.device.type):
            y, outputs, saved, positions = _forward(call, x, weight, bias, base_out, gate_w, gate_b, adapters[:k],
                                                    adapters[k:], in_place=False)
        # int32 where it fits: half the memory (they are int64 again for use, a K-element copy)
        if positions is not None and x.numel() < 2**31:
            positions = positions.to(torch.int32)
        ctx.call, ctx.positions, ctx.sizes = call, positions, [len(s) for s in saved]
        ctx.save_for_backward(x, weight, gate_w, *adapters, *(t for s in saved for t in s))
        if call.rank_only:
            return (y, *outputs) if weight is not None else tuple(outputs)
        return y

    @staticmethod
    def backward(ctx, *grads):
        call = ctx.call
        x, weight, gate_w, *rest = ctx.saved_tensors
        k = len(call.layout.names)
        adapters, flat, saved = rest[: 2 * k], rest[2 * k :], []
        for size in ctx.sizes:
            saved.append(flat[:size])
            flat = flat[size:]
        if call.rank_only:
            dy, d_outputs = (grads[0], grads[1:]) if weight is not None else (None, grads)
        else:
            dy, d_outputs = grads[0], [None] * len(saved)
        needs = ctx.needs_input_grad
        with _no_autocast(call, x.device.type):
            dx, d_gw, d_gb, d_a, d_b = _backward(call, (needs[1], any(needs[7:]), needs[5] or needs[6]), dy,
                                                 d_outputs, x, weight, gate_w, adapters[:k], adapters[k:], saved,
                                                 None if ctx.positions is None else ctx.positions.long())
        d_base = dy if needs[4] and not call.rank_only else None
        d_params = [None if g is None else _as(g, p.dtype) for g, p in zip([*d_a, *d_b], adapters)]
        d_gw = None if d_gw is None or not needs[5] else _as(d_gw, gate_w.dtype)
        d_gb = None if d_gb is None or not needs[6] else _as(d_gb.reshape(1), gate_w.dtype)
        return (None, dx, None, None, d_base, d_gw, d_gb, *d_params)


# ---------------------------------------------------------------------------------- entry point


def _weight(module: nn.Module, name: str = "weight") -> Tensor | None:
    return module._parameters.get(name)  # no nn.Module.__getattr__ (microseconds) on the hot path


@dataclass(frozen=True)
class Projection:
    """The modules of one PEFT LoRA layer the fused kernel reads, looked up once (``nn.Module``
    attribute access costs microseconds, and runs on every call); parameters are read from them at
    each call, so loading or replacing weights is always seen."""

    lora_A: nn.ModuleDict
    lora_B: nn.ModuleDict
    lora_dropout: nn.ModuleDict
    scaling: dict
    base: nn.Module
    dense: bool
    """The base layer is a plain ``nn.Linear`` (anything else, e.g. 4-bit, computes its own output)."""
    gate: nn.Linear | None
    """The scalar gate's ``Linear(2 out, 1)`` of gated fusion, if any."""

    @classmethod
    def of(cls, layer, gate: nn.Linear | None = None) -> Projection:
        base = layer.get_base_layer()
        return cls(layer.lora_A, layer.lora_B, layer.lora_dropout, layer.scaling, base, type(base) is nn.Linear, gate)

    def base_weight_trainable(self) -> bool:
        weight = _weight(self.base) if self.dense else None
        return weight is not None and weight.requires_grad


def routed_projection(proj: Projection, x: Tensor, layout: Layout, gated: bool = False, rank_only: bool = False):
    """The output of the LoRA layer ``proj`` for ``x`` under ``layout``; ``gated``: apply the scalar
    gate on the layout's gated groups.

    With ``rank_only``: ``(y, [c_g h_g])``, ``y`` the frozen projection alone and ``c_g h_g`` each
    group's rank-level activations ``(n_g T, R_g)``, scalings applied (the caller adds the deltas).
    Runs the autograd function when something needs a gradient, otherwise the same computation
    directly, in place.
    """
    names = layout.names
    a_weights = [_weight(proj.lora_A[n]) for n in names]
    b_weights = [_weight(proj.lora_B[n]) for n in names]
    dropout = proj.lora_dropout[names[0]]
    p = float(dropout.p) if isinstance(dropout, nn.Dropout) and dropout.training else 0.0
    device_type = x.device.type
    autocast = torch.is_autocast_enabled(device_type)
    compute = torch.get_autocast_dtype(device_type) if autocast else None
    lora_dtype = compute or a_weights[0].dtype
    ranks = tuple(a.shape[0] for a in a_weights)
    factors = tuple(proj.scaling[n] / (1 - p) for n in names)
    call = _Call(
        layout=layout,
        constants=constants_for(layout, ranks, factors, lora_dtype, x.device),
        p=p,
        seed=draw_seed() if p > 0 else None,
        rank_only=rank_only,
        base_dtype=(compute or x.dtype) if proj.dense else None,
        lora_dtype=lora_dtype,
        autocast=autocast,
    )
    weight, bias = (_weight(proj.base), _weight(proj.base, "bias")) if proj.dense else (None, None)
    base_out = None if proj.dense else proj.base(x)
    gate_w, gate_b = (_weight(proj.gate), _weight(proj.gate, "bias")) if gated else (None, None)
    tensors = (x, weight, bias, base_out, gate_w, gate_b, *a_weights, *b_weights)
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors):
        out = _FusedProjection.apply(call, *tensors)
        if not rank_only:
            return out
        return (out[0], list(out[1:])) if proj.dense else (base_out, list(out))
    with _no_autocast(call, device_type):
        y, outputs, _, _ = _forward(call, x, weight, bias, base_out, gate_w, gate_b, a_weights, b_weights,
                                    in_place=True)
    return (y, outputs) if rank_only else y


def parts_of(proj: Projection, x: Tensor, layout: Layout, hs: Sequence[Tensor]) -> list[tuple[Rows, Tensor, Tensor, bool]]:
    """``(rows, h_a, B_a, shared)`` of every adapter of every group, ``h_a`` shaped like ``x``'s rows
    (``(n, ..., r)``), from the rank-level outputs of :func:`routed_projection` with ``rank_only``."""
    parts = []
    for group, h in zip(layout.groups, hs):
        h = h.view(-1, *x.shape[1:-1], h.shape[-1])
        start = 0
        for a in group.adapters:
            weight = _weight(proj.lora_B[layout.names[a]])
            parts.append((group.rows, h[..., start : start + weight.shape[1]], weight, layout.shared[a]))
            start += weight.shape[1]
    return parts
