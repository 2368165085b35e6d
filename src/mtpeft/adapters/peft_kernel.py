"""The ``peft`` routing kernel: PEFT's own LoRA modules behind the router's hooks.

``adapters.kernel: peft``: a forward pre-hook on every PEFT ``LoraLayer`` passes
``adapter_names=["__base__"] * B`` (PEFT's own placeholder for "no adapter", so PEFT returns the
frozen projection only) and a forward hook adds, for each adapter, ``B_a A_a dropout(x[rows_a]) *
scaling_a`` to the rows it serves, reading the weights from PEFT's ``lora_A``/``lora_B`` dicts and
drawing dropout with PEFT's ``lora_dropout`` modules. Kept as the reference of the ``fused`` kernel
(``adapters/fused.py``) and for LoRA layers that kernel does not cover. How it keeps its cost close
to one LoRA of the summed rank (``benchmarks/``):

* LoRA dropout draws one mask per projection over the whole batch, shared by the adapters of an
  example (as one LoRA of their summed rank would; PEFT draws one per adapter; at ``output``
  placement the two copies of an example share it too), so the adapters that read the same rows
  share ONE matmul with their concatenated ``A``: the input is read once;
* the scaling multiplies the rank-``r`` activations ``h = A dropout(x) * scaling``, not the
  ``(rows, out)`` delta (for mtpeft's default ``alpha = 2 r`` the result is bit-identical);
* where row blocks are slices, every block's adapters are applied as ONE matmul of their
  concatenated ``h`` with their concatenated ``B``;
* the scalar gate of :class:`~mtpeft.adapters.fusion.GatedFusion` is linear in (shared, private),
  so at layer placement it is evaluated at rank level, ``z = sum_a (w_a B_a) . h_a + b``, and
  ``g S + (1 - g) P = sum_shared B_a (g h_a) + sum_private B_a ((1 - g) h_a)``: no ``(rows, out)``
  tensor besides the projection's own output. Other fusions get the dense deltas ``S`` and ``P``;
* the deltas are added to the projection's output by ``addmm`` (in place without autograd).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from peft.tuners.lora import LoraLayer
from torch import Tensor, nn

from mtpeft.adapters.fusion import GatedFusion
from mtpeft.adapters.plan import Rows, RoutingPlan
from mtpeft.adapters.plan import as_index as _as_index
from mtpeft.adapters.plan import covers_all as _covers_all


@dataclass
class Part:
    """One adapter's contribution to one projection: ``B h`` on ``rows``."""

    rows: Rows
    h: Tensor  # (len(rows), ..., r): A dropout(x[rows]) * scaling
    weight: Tensor  # (out, r): LoRA B
    shared: bool


def _row_inputs(x: Tensor, rows: Sequence[Rows], batch_size: int) -> list[Tensor]:
    """``x[r]`` for each ``r``. Partial slices come from ONE ``split`` of ``x``, whose backward is one
    concatenation; indexing each slice instead would scatter each gradient into a zero tensor of
    ``x``'s full size."""
    partial = [r for r in rows if isinstance(r, slice) and not _covers_all(r, batch_size)]
    chunks: dict[tuple[int, int], Tensor] = {}
    if partial:
        cuts = sorted({0, batch_size, *(r.start for r in partial), *(r.stop for r in partial)})
        pieces = x.split([hi - lo for lo, hi in zip(cuts, cuts[1:])])
        chunks = {(lo, hi): piece for lo, hi, piece in zip(cuts, cuts[1:], pieces)}
    out = []
    for r in rows:
        if _covers_all(r, batch_size):
            out.append(x)
        elif isinstance(r, slice) and (r.start, r.stop) in chunks:
            out.append(chunks[(r.start, r.stop)])
        else:  # index rows, or a slice spanning several chunks
            out.append(x[r])
    return out


def _without_dropout(module: nn.Module) -> bool:
    if isinstance(module, nn.Identity):
        return True
    return isinstance(module, nn.Dropout) and (module.p == 0 or not module.training)


def _tied_dropout(module: nn.Dropout, x: Tensor) -> Tensor:
    """``module`` on ``x`` with one mask for both halves of the batch: ``x * [m; m]``."""
    half = x.shape[0] // 2
    mask = module(x.new_ones((half, *x.shape[1:])))  # 0 or 1 / (1 - p)
    return (x.view(2, half, *x.shape[1:]) * mask).view(x.shape)


def _dropped_inputs(layer: LoraLayer, x: Tensor, names: Sequence[str], tied_halves: bool = False) -> list[Tensor]:
    """The projection input each adapter reads, cast to its ``A``'s dtype: ``x`` itself where its
    dropout is inactive; otherwise ``x`` through ONE mask per projection, dtype and probability,
    drawn over the whole batch by the first adapter (plan order) with that probability; with
    ``tied_halves``, over the first half of the batch and applied to both halves.

    So the shared and private LoRA of an example read the same dropped-out input, exactly as one
    LoRA of their summed rank would (the plain PEFT peer of ``benchmarks/``), and, on the same
    rows, share one ``A`` matmul. Dropout modules other than ``nn.Dropout`` draw for their adapter
    alone.
    """
    cast: dict[torch.dtype, Tensor] = {}
    drawn: dict[tuple, Tensor] = {}
    out = []
    for name in names:
        dtype, module = layer.lora_A[name].weight.dtype, layer.lora_dropout[name]
        if dtype not in cast:
            cast[dtype] = x.to(dtype)
        if _without_dropout(module):
            out.append(cast[dtype])
        elif not isinstance(module, nn.Dropout):
            out.append(module(cast[dtype]))
        else:
            key = (dtype, module.p)
            if key not in drawn:
                drawn[key] = _tied_dropout(module, cast[dtype]) if tied_halves else module(cast[dtype])
            out.append(drawn[key])
    return out


def _parts(layer: LoraLayer, x: Tensor, plan: RoutingPlan) -> list[Part]:
    """Rank-level activations of every adapter of ``plan`` present in ``layer``: shared ones, then
    private ones, in plan order.

    Adapters that read the same rows of the same (dropped-out) input share ONE matmul with their
    concatenated ``A``: the input is read once.
    """
    groups = [(name, rows, shared) for shared, kind in ((True, plan.shared), (False, plan.private))
              for name, rows in kind.items() if name in layer.lora_A]
    sources = _dropped_inputs(layer, x, [name for name, _, _ in groups], plan.tied_halves)
    inputs: list[Tensor | None] = [None] * len(groups)
    by_source: dict[int, list[int]] = {}
    for i, source in enumerate(sources):
        by_source.setdefault(id(source), []).append(i)
    for members in by_source.values():
        row_inputs = _row_inputs(sources[members[0]], [groups[i][1] for i in members], plan.batch_size)
        for i, x_rows in zip(members, row_inputs):
            inputs[i] = x_rows
    hs: list[Tensor | None] = [None] * len(groups)
    same_input: dict[int, list[int]] = {}
    for i, x_rows in enumerate(inputs):
        same_input.setdefault(id(x_rows), []).append(i)
    for members in same_input.values():
        if len(members) < 2:
            continue
        weights = [layer.lora_A[groups[i][0]].weight for i in members]
        joint = F.linear(inputs[members[0]], torch.cat(weights))  # (rows, ..., sum r)
        for i, h in zip(members, joint.split([w.shape[0] for w in weights], dim=-1)):
            hs[i] = h * layer.scaling[groups[i][0]]
    parts = []
    for (name, rows, shared), x_rows, h in zip(groups, inputs, hs):
        lora_a, lora_b = layer.lora_A[name], layer.lora_B[name]
        if lora_b.bias is not None:
            raise NotImplementedError(f"adapter {name!r}: routing supports LoRA without lora_bias")
        if h is None:
            h = lora_a(x_rows) * layer.scaling[name]
        parts.append(Part(rows, h, lora_b.weight, shared))
    return parts


def _blocks(rows: Sequence[slice], batch_size: int) -> list[tuple[int, int, list[int]]]:
    """Maximal row blocks ``(lo, hi, indices of the slices covering the block)`` tiling the batch."""
    cuts = sorted({0, batch_size, *(r.start for r in rows), *(r.stop for r in rows)})
    return [
        (lo, hi, [i for i, r in enumerate(rows) if r.start <= lo and hi <= r.stop]) for lo, hi in zip(cuts, cuts[1:])
    ]


def _block_rows(value: Tensor, rows: slice, lo: int, hi: int) -> Tensor:
    return value if (rows.start, rows.stop) == (lo, hi) else value[lo - rows.start : hi - rows.start]


def _scatter_sum(values: Sequence[Tensor], rows: Sequence[Rows], batch_size: int) -> Tensor:
    """Full-batch ``(batch_size, ...)`` sum of ``values[i]`` placed on ``rows[i]`` (zeros elsewhere)."""
    if len(values) == 1 and _covers_all(rows[0], batch_size):
        return values[0]
    if all(isinstance(r, slice) for r in rows):
        pieces = []
        for lo, hi, covering in _blocks(rows, batch_size):
            block = [_block_rows(values[i], rows[i], lo, hi) for i in covering]
            piece = block[0] if block else values[0].new_zeros((hi - lo, *values[0].shape[1:]))
            for other in block[1:]:
                piece = piece + other
            pieces.append(piece)
        return pieces[0] if len(pieces) == 1 else torch.cat(pieces)
    total: Tensor | None = None
    for value, r in zip(values, rows):
        if _covers_all(r, batch_size):
            total = value if total is None else total + value
            continue
        if total is None:
            total = value.new_zeros((batch_size, *value.shape[1:]))
        total = total.index_add(0, _as_index(r, value.device), value)
    return total


def _add_deltas(output: Tensor, parts: Sequence[Part], batch_size: int) -> Tensor:
    """``output + sum_parts B h`` on each part's rows; one matmul per row block where rows are slices.

    Where the rows are slices and the dtypes agree, each block's ``B h`` is added to the
    projection's output by ``addmm``: in place without autograd, otherwise out of place per block
    (no ``(rows, out)`` delta is materialised and added separately).
    """
    if not all(isinstance(p.rows, slice) for p in parts):
        deltas = [F.linear(p.h, p.weight) for p in parts]
        return output + _scatter_sum(deltas, [p.rows for p in parts], batch_size).to(output.dtype)
    tiles = []  # every row block of the batch: (lo, hi, h, B), h and B None where no adapter applies
    for lo, hi, covering in _blocks([p.rows for p in parts], batch_size):
        if not covering:
            tiles.append((lo, hi, None, None))
            continue
        hs = [_block_rows(parts[i].h, parts[i].rows, lo, hi) for i in covering]
        h = hs[0] if len(hs) == 1 else torch.cat(hs, dim=-1)  # (rows, ..., sum r)
        weight = parts[covering[0]].weight if len(hs) == 1 else torch.cat([parts[i].weight for i in covering], 1)
        tiles.append((lo, hi, h, weight))
    covered = [tile for tile in tiles if tile[2] is not None]
    out_features = output.shape[-1]
    if not output.is_contiguous() or any(h.dtype != output.dtype for _, _, h, _ in covered):
        pieces = [F.linear(h, w).to(output.dtype) for _, _, h, w in covered]
        return output + _scatter_sum(pieces, [slice(lo, hi) for lo, hi, _, _ in covered], batch_size)
    if not torch.is_grad_enabled():  # evaluation: accumulate into the output in place
        for lo, hi, h, weight in covered:
            output[lo:hi].view(-1, out_features).addmm_(h.reshape(-1, h.shape[-1]), weight.t())
        return output
    # With autograd, out of place: an in-place update of a row block would make the backward
    # clone the whole (rows, out) gradient once per block (CopySlices), and once per task under
    # gradient surgery. The output is cut by ONE split (its backward is one concatenation; slicing
    # each block would scatter each block's gradient into a zero tensor of the full size); rows
    # no adapter covers pass through; one concatenation at most.
    pieces = [
        chunk if h is None
        else torch.addmm(chunk.reshape(-1, out_features), h.reshape(-1, h.shape[-1]), weight.t()).view(chunk.shape)
        for chunk, (_, _, h, weight) in zip(output.split([hi - lo for lo, hi, _, _ in tiles]), tiles)
    ]
    return pieces[0] if len(pieces) == 1 else torch.cat(pieces)


def is_scalar_gate(fusion: nn.Module) -> bool:
    return isinstance(fusion, GatedFusion) and fusion.gate_rank == 0


def _fuse_rows_mask(plan: RoutingPlan, device: torch.device) -> Tensor | None:
    """``(B, 1, ..., 1)``-broadcastable bool mask of the fused rows; None when all rows are fused."""
    if _covers_all(plan.fuse_rows, plan.batch_size):
        return None
    mask = torch.zeros(plan.batch_size, dtype=torch.bool, device=device)
    mask[_as_index(plan.fuse_rows, device)] = True
    return mask


def _gate_at_rank_level(fusion: GatedFusion, parts: list[Part], plan: RoutingPlan) -> list[Part]:
    """Parts whose ``h`` carry the gate: ``g h`` (shared) and ``(1 - g) h`` (private) on fused rows."""
    out_features = parts[0].weight.shape[0]
    weight = fusion.gate.weight  # (1, 2 out): [w_S, w_P] over cat([S, P])
    halves = weight[:, :out_features], weight[:, out_features:]
    logits = [F.linear(p.h, (halves[0] if p.shared else halves[1]).to(p.h.dtype) @ p.weight) for p in parts]
    z = _scatter_sum(logits, [p.rows for p in parts], plan.batch_size) + fusion.gate.bias.to(parts[0].h.dtype)
    g = torch.sigmoid(z)  # (B, ..., 1)
    coefficient_shared, coefficient_private = g, 1 - g
    mask = _fuse_rows_mask(plan, g.device)
    if mask is not None:  # rows outside fuse_rows: plain S + P
        mask = mask.view(-1, *([1] * (g.dim() - 1)))
        coefficient_shared = torch.where(mask, g, torch.ones_like(g))
        coefficient_private = torch.where(mask, coefficient_private, torch.ones_like(g))
    return [
        Part(p.rows, p.h * (coefficient_shared if p.shared else coefficient_private)[p.rows], p.weight, p.shared)
        for p in parts
    ]


def fuse_dense(fusion: nn.Module, parts: list[Part], plan: RoutingPlan) -> Tensor:
    """``fusion(S, P)`` on the fused rows, ``S + P`` elsewhere, from the dense deltas."""
    dense = {}
    for kind in (True, False):
        chosen = [p for p in parts if p.shared is kind]
        dense[kind] = _scatter_sum([F.linear(p.h, p.weight) for p in chosen], [p.rows for p in chosen], plan.batch_size)
    shared, private = dense[True], dense[False]
    if _covers_all(plan.fuse_rows, plan.batch_size):
        return fusion(shared, private)
    index = _as_index(plan.fuse_rows, shared.device)
    fused = fusion(shared.index_select(0, index), private.index_select(0, index))
    return (shared + private).index_copy(0, index, fused)


def routed_output(layer: LoraLayer, x: Tensor, output: Tensor, plan: RoutingPlan, fusion: nn.Module | None) -> Tensor:
    """The frozen projection's ``output`` plus the plan's adapters (and fusion) on their rows."""
    parts = _parts(layer, x, plan)
    if not parts:
        return output
    kinds = {p.shared for p in parts}
    if fusion is not None and plan.fuse_rows is not None and len(kinds) == 2:
        if not is_scalar_gate(fusion):
            return output + fuse_dense(fusion, parts, plan).to(output.dtype)
        parts = _gate_at_rank_level(fusion, parts, plan)
    return _add_deltas(output, parts, plan.batch_size)
