"""Per-task gradients on the SHARED trainable parameters only.

Gradient surgery (PCGrad, UPGrad, ...) and conflict monitoring need one gradient per task, but
only on the parameters the tasks share (the shared adapter and the fusion): the backbone is
frozen, and private adapters and heads receive their own task's gradient only. Each per-task
gradient is kept as one flat vector of ``sum(p.numel() for p in shared_params)`` elements, so
the memory kept per task scales with the adapter, never with the model.

We loop ``torch.autograd.grad`` over tasks (one backward each, the graph retained until the
last) rather than torchjd's vmapped Jacobian: vmap over a whole LLM backward multiplies
activation-gradient memory by the number of tasks and does not support every op; torchjd's
``mtl_backward`` assumes a shared trunk followed by task heads, but here private adapters sit
inside the trunk.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn


def shared_size(params: Sequence[nn.Parameter]) -> int:
    """Number of scalars in ``params``: the length of each flat per-task gradient."""
    return sum(p.numel() for p in params)


def task_gradients(
    losses: Mapping[str, Tensor],
    shared_params: Sequence[nn.Parameter],
    other_params: Sequence[nn.Parameter] = (),
    *,
    scale: float = 1.0,
    retain_graph: bool = False,
) -> dict[str, Tensor]:
    """Flat gradients of ``scale * loss_t`` w.r.t. ``shared_params``, one ``(n_shared,)`` vector per task.

    The gradients of every loss w.r.t. ``other_params`` are ADDED to their ``.grad`` in the same
    backward passes (so non-shared parameters get the plain sum of task gradients at no extra
    pass). Parameters a loss does not reach get zeros. The graph is freed after the last task
    unless ``retain_graph``.
    """
    shared_params = list(shared_params)
    other_params = list(other_params)
    inputs = shared_params + other_params
    result: dict[str, Tensor] = {}
    names = list(losses)
    for i, task in enumerate(names):
        keep = retain_graph or i < len(names) - 1
        grads = torch.autograd.grad(scale * losses[task], inputs, retain_graph=keep, allow_unused=True)
        result[task] = flatten(grads[: len(shared_params)], shared_params)
        accumulate_grads(other_params, grads[len(shared_params) :])
    return result


def flatten(grads: Sequence[Tensor | None], params: Sequence[nn.Parameter]) -> Tensor:
    """Concatenate ``grads`` (``None`` = zeros of the matching parameter) into one flat vector."""
    if not params:
        return torch.zeros(0)
    parts = [
        (g if g is not None else torch.zeros_like(p)).reshape(-1) for g, p in zip(grads, params, strict=True)
    ]
    return torch.cat(parts)


def accumulate_grads(params: Sequence[nn.Parameter], grads: Sequence[Tensor | None]) -> None:
    """``p.grad += g`` (or ``p.grad = g``) for each pair; ``None`` gradients are skipped."""
    for p, g in zip(params, grads, strict=True):
        if g is None:
            continue
        if p.grad is None:
            p.grad = g.detach().to(p.dtype).clone()
        else:
            p.grad.add_(g.to(p.grad.dtype))


def add_flat_to_grads(params: Sequence[nn.Parameter], vector: Tensor) -> None:
    """Split a flat ``(n,)`` vector over ``params`` and add it to their ``.grad``."""
    if vector.numel() != shared_size(params):
        raise ValueError(f"vector of {vector.numel()} elements for parameters of {shared_size(params)}")
    offset = 0
    grads = []
    for p in params:
        grads.append(vector[offset : offset + p.numel()].view_as(p))
        offset += p.numel()
    accumulate_grads(params, grads)


def world_size() -> int:
    """Number of processes of the default torch.distributed group (1 when not distributed)."""
    import torch.distributed as dist

    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def average_rows_over_processes(
    rows: Tensor, present: Sequence[bool], other_params: Sequence[nn.Parameter] = ()
) -> list[bool]:
    """Average, in place, the ``(T, n)`` per-task gradient rows and ``other_params``' ``.grad``
    over all processes; returns which tasks any process saw.

    Processes may have seen different tasks this step (mixed batches): absent tasks are zero rows.
    A parameter that no process gave a gradient keeps ``grad = None`` (as on one process, so that
    AdamW skips it). Every process must call this at the same step with the same parameters.
    """
    import torch.distributed as dist

    world = world_size()
    seen = torch.tensor([float(p) for p in present], device=rows.device)
    has_grad = torch.tensor([float(p.grad is not None) for p in other_params], device=rows.device)
    dist.all_reduce(seen, op=dist.ReduceOp.MAX)
    dist.all_reduce(has_grad, op=dist.ReduceOp.MAX)
    dist.all_reduce(rows)
    rows /= world
    # The other parameters' gradients travel as one flat buffer (one collective, not one per tensor).
    reduced = [p for p, has in zip(other_params, has_grad.tolist()) if has]
    if reduced:
        flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1).float() for p in reduced])
        dist.all_reduce(flat)
        flat /= world
        offset = 0
        for p in reduced:
            p.grad = flat[offset : offset + p.numel()].view_as(p).to(p.dtype).clone()
            offset += p.numel()
    return [bool(v) for v in seen.tolist()]
