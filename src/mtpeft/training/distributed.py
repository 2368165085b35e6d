"""Data parallelism over processes, as started by ``accelerate launch`` (or torchrun).

accelerate's :class:`~accelerate.PartialState` reads the launcher's environment and initialises
``torch.distributed`` (gloo on CPU, NCCL on GPUs). Every process draws the SAME global batch from
an identically seeded sampler and keeps its shard (every ``world``-th example of the global
batch), so the global batch is the one a single process would see. Each loss term is divided by
its unit count over ALL processes (:meth:`Processes.sum_by_key`, see
:mod:`mtpeft.training.step_losses`) and the losses are multiplied by ``world``, so that the
gradients averaged over processes after the backward pass (what DDP does) are those of one
process on the global batch, whatever the units (tokens, spans, pairs, examples). Doing it
explicitly keeps the per-row adapter routing and the gradient strategies (whose per-task
gradients ``torch.autograd.grad`` computes outside DDP's hooks) correct. FSDP/DeepSpeed
configurations of accelerate are not used by this loop.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
from torch import nn

K = TypeVar("K")


@dataclass(frozen=True)
class Processes:
    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, indices: Sequence[int]) -> list[int]:
        """This process's part of one task's examples of the global batch."""
        return list(indices[self.rank :: self.world])

    def barrier(self) -> None:
        if self.world > 1:
            torch.distributed.barrier()

    def broadcast(self, value: Any) -> Any:
        """The main process's ``value`` on every process."""
        if self.world == 1:
            return value
        box = [value]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]

    def sum_by_key(self, values: Mapping[K, float], keys: Sequence[K] | None = None) -> dict[K, float]:
        """Per-key sums of ``values`` over processes (a key a process lacks counts 0 there).

        ``keys``: the keys to reduce, the same list on every process; without it the processes
        first agree on the sorted union of their keys (one small ``all_gather_object``). Sums are
        float64, exact for counts below 2**53. A collective: every process must call it.
        """
        if keys is None and self.world > 1:
            gathered: list[list[K] | None] = [None] * self.world
            torch.distributed.all_gather_object(gathered, sorted(values))
            keys = sorted({key for part in gathered for key in part or []})
        elif keys is None:
            keys = sorted(values)
        if self.world == 1:
            return {key: float(values.get(key, 0.0)) for key in keys}
        flat = torch.tensor([float(values.get(key, 0.0)) for key in keys], dtype=torch.float64, device=self.device)
        torch.distributed.all_reduce(flat)
        return dict(zip(keys, flat.tolist()))


def current_processes(cpu: bool | None = None) -> Processes:
    """Rank, world size and device of this process (a single process when not launched)."""
    from accelerate import PartialState

    state = PartialState(cpu=bool(cpu) if cpu is not None else not torch.cuda.is_available())
    return Processes(rank=state.process_index, world=state.num_processes, device=state.device)


def average_gradients(params: Sequence[nn.Parameter], processes: Processes) -> None:
    """Average ``.grad`` over processes in one flat all-reduce (a parameter no process gave a gradient
    keeps ``None``, so AdamW skips it as on one process)."""
    if processes.world == 1:
        return
    dist = torch.distributed
    if not params:
        return
    # collectives run on the parameters' device (NCCL accepts only GPU tensors)
    has = torch.tensor([float(p.grad is not None) for p in params], device=params[0].device)
    dist.all_reduce(has, op=dist.ReduceOp.MAX)
    reduced = [p for p, h in zip(params, has.tolist()) if h]
    if not reduced:
        return
    flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1).float() for p in reduced])
    dist.all_reduce(flat)
    flat /= processes.world
    offset = 0
    for p in reduced:
        p.grad = flat[offset : offset + p.numel()].view_as(p).to(p.dtype).clone()
        offset += p.numel()
