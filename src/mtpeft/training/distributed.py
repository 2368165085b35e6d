"""Data parallelism over processes, as started by ``accelerate launch`` (or torchrun).

accelerate's :class:`~accelerate.PartialState` reads the launcher's environment and initialises
``torch.distributed`` (gloo on CPU, NCCL on GPUs). Every process draws the SAME global batch from
an identically seeded sampler and keeps its shard (every ``world``-th example of each task), so
the global batch is the one a single process would see. Gradients are averaged over processes
after the backward pass, which is what DDP does; doing it explicitly keeps the per-row adapter
routing and the gradient strategies (whose per-task gradients ``torch.autograd.grad`` computes
outside DDP's hooks) correct. FSDP/DeepSpeed configurations of accelerate are not used by this loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn


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
