"""Two CPU processes (gloo) give the same gradients as one process on the same global batch."""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from mtpeft.training.weighting import build_loss_strategy
from tests.training.toy import ToyMultiTask, toy_batches

TASKS = ["a", "b", "c"]


def _gradients(strategy_name: str, batches, keep: bool = True) -> tuple[list[torch.Tensor], dict]:
    model = ToyMultiTask(TASKS)
    strategy = build_loss_strategy(strategy_name, TASKS, seed=3)
    strategy.backward(model.losses(batches), model.shared_parameters(), model.other_parameters(), keep_per_task=keep)
    result = strategy.finish(model.shared_parameters())
    grads = [p.grad if p.grad is not None else None for p in model.shared_parameters() + model.other_parameters()]
    return grads, result.per_task_gradients


def _worker(rank: int, world: int, init_file: str, out_file: str, strategy_name: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        full = toy_batches(TASKS, n=8)
        # each process holds half of every task's examples; task "c" only on rank 1 (a mixed batch)
        local = {t: (x[rank * 4 : (rank + 1) * 4], y[rank * 4 : (rank + 1) * 4]) for t, (x, y) in full.items()}
        if rank == 0:
            del local["c"]
        grads, per_task = _gradients(strategy_name, local)
        if rank == 0:
            torch.save({"grads": grads, "per_task": per_task}, out_file)
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("strategy_name", ["pcgrad"])
def test_two_processes_match_one(tmp_path, strategy_name):
    mp.spawn(
        _worker,
        args=(2, str(tmp_path / "init"), str(tmp_path / "out.pt"), strategy_name),
        nprocs=2,
        join=True,
    )
    got = torch.load(tmp_path / "out.pt", weights_only=True)
    full = toy_batches(TASKS, n=8)
    # One process, same global batch: c's examples are only rank 1's half, so its loss is the mean
    # over those 4, and ranks average -> c's gradient is half of that (as DDP would give).
    single = {t: v for t, v in full.items() if t != "c"}
    model = ToyMultiTask(TASKS)
    c_half = (full["c"][0][4:], full["c"][1][4:])
    losses = model.losses(single)
    losses["c"] = 0.5 * model.losses({"c": c_half})["c"]
    strategy = build_loss_strategy(strategy_name, TASKS, seed=3)
    strategy.backward(losses, model.shared_parameters(), model.other_parameters())
    expected = strategy.finish(model.shared_parameters())
    params = model.shared_parameters() + model.other_parameters()
    for p, g in zip(params, got["grads"]):
        assert torch.allclose(p.grad, g, atol=1e-6)
    assert list(got["per_task"]) == TASKS
    for t in TASKS:
        assert torch.allclose(got["per_task"][t], expected.per_task_gradients[t], atol=1e-6)
