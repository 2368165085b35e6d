"""AdamW parameter groups and warm-up + decay schedules."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from mtpeft.config import TrainingConfig
from mtpeft.errors import ConfigError
from mtpeft.training.schedule import build_optimization, build_optimizer, build_scheduler, param_groups, warmup_steps


def _modules():
    adapter = nn.Sequential(nn.Linear(4, 3), nn.LayerNorm(3))
    head = nn.Linear(3, 2)
    log_var = nn.Parameter(torch.zeros(2))
    frozen = nn.Linear(2, 2).requires_grad_(False)
    return adapter, head, log_var, frozen


def test_groups_split_decay_and_learning_rates():
    adapter, head, log_var, frozen = _modules()
    groups = param_groups(
        {**dict(adapter.named_parameters()), **{f"frozen.{n}": p for n, p in frozen.named_parameters()}},
        dict(head.named_parameters()),
        {"log_variances": log_var},
        lr=1e-3, head_lr=5e-3, weight_decay=0.1,
    )  # fmt: skip
    by_name = {g["name"]: g for g in groups}
    assert set(by_name) == {"adapters", "adapters_no_decay", "heads", "heads_no_decay", "loss_strategy"}
    assert by_name["adapters"]["params"] == [adapter[0].weight]
    assert by_name["adapters_no_decay"]["params"] == [adapter[0].bias, adapter[1].weight, adapter[1].bias]
    assert by_name["heads"]["params"] == [head.weight] and by_name["heads"]["lr"] == 5e-3
    assert by_name["loss_strategy"] == {"name": "loss_strategy", "params": [log_var], "lr": 1e-3, "weight_decay": 0.0}
    assert all(g["weight_decay"] == (0.1 if g["name"] in ("adapters", "heads") else 0.0) for g in groups)
    n_trainable = sum(p.numel() for m in (adapter, head) for p in m.parameters()) + log_var.numel()
    assert sum(p.numel() for g in groups for p in g["params"]) == n_trainable  # frozen left out


def test_a_parameter_in_two_groups_is_refused():
    adapter, head, *_ = _modules()
    with pytest.raises(ValueError, match="two parameter groups"):
        param_groups(dict(adapter.named_parameters()), dict(adapter.named_parameters()), lr=1e-3)
    with pytest.raises(ConfigError, match="no trainable"):
        build_optimizer([], lr=1e-3)


def _lrs(schedule: str, max_steps: int = 20, warmup_ratio: float = 0.2, lr: float = 0.1) -> list[float]:
    param = nn.Parameter(torch.zeros(1))
    optimizer = build_optimizer([{"params": [param], "lr": lr}], lr=lr)
    scheduler = build_scheduler(optimizer, schedule, max_steps, warmup_ratio)
    lrs = []
    for _ in range(max_steps + 1):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


@pytest.mark.parametrize("schedule", ["linear", "cosine", "constant"])
def test_schedules(schedule):
    max_steps, lr = 20, 0.1
    warm = warmup_steps(max_steps, 0.2)
    assert warm == 4
    lrs = _lrs(schedule, max_steps, 0.2, lr)
    assert lrs[:warm + 1] == pytest.approx([lr * s / warm for s in range(warm + 1)])  # linear warm-up
    progress = [(s - warm) / (max_steps - warm) for s in range(warm, max_steps + 1)]
    expected = {
        "linear": [lr * (1 - p) for p in progress],
        "cosine": [lr * 0.5 * (1 + math.cos(math.pi * p)) for p in progress],
        "constant": [lr for _ in progress],
    }[schedule]
    assert lrs[warm:] == pytest.approx(expected, abs=1e-12)


def test_unknown_schedule_and_config_builder():
    param = nn.Parameter(torch.zeros(2, 2))
    with pytest.raises(ConfigError, match="linear, cosine, constant"):
        build_scheduler(build_optimizer([{"params": [param]}], lr=0.1), "exp", 10, 0.1)
    config = TrainingConfig(lr=1e-3, head_lr=1e-2, max_steps=10, schedule="cosine")
    optimizer, scheduler = build_optimization(config, {"w": param}, {"h": nn.Parameter(torch.zeros(2, 2))})
    assert [g["lr"] for g in optimizer.param_groups] == [0.0, 0.0]  # warm-up starts at 0
    assert scheduler.base_lrs == [1e-3, 1e-2]


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_each_stage_has_its_own_warm_up_and_decay(schedule):
    """S4: stage 2 (a fresh level-2 LoRA) starts with a warm-up from 0, not mid-decay."""
    param = nn.Parameter(torch.zeros(1))
    optimizer = build_optimizer([{"params": [param], "lr": 0.1}], lr=0.1)
    scheduler = build_scheduler(optimizer, schedule, 30, 0.2, stages=[10, 20])
    lrs = []
    for _ in range(30):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs[:10] == pytest.approx(_lrs(schedule, 10, 0.2, 0.1)[:10], abs=1e-12)
    assert lrs[10:] == pytest.approx(_lrs(schedule, 20, 0.2, 0.1)[:20], abs=1e-12)
    assert lrs[10] == 0.0 and max(lrs[10:]) == pytest.approx(0.1)  # warm-up again, to the peak
    with pytest.raises(ValueError, match="do not split"):
        build_scheduler(optimizer, schedule, 30, 0.2, stages=[10, 10])


def test_a_staged_schedule_resumes_exactly(tmp_path):
    from mtpeft.training.checkpoint import load_checkpoint, save_checkpoint

    def run(steps, checkpoint=None):
        param = nn.Parameter(torch.zeros(1))
        optimizer = build_optimizer([{"params": [param], "lr": 0.1}], lr=0.1)
        scheduler = build_scheduler(optimizer, "cosine", 12, 0.25, stages=[5, 7])
        if checkpoint is not None:  # as the trainer restores them
            optimizer.load_state_dict(checkpoint.optimizer_state())
            scheduler.load_state_dict(checkpoint.scheduler_state())
        lrs = []
        for _ in range(steps):
            lrs.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
        return lrs, optimizer, scheduler

    straight, *_ = run(12)
    first, optimizer, scheduler = run(4)
    save_checkpoint(tmp_path, 4, optimizer=optimizer.state_dict(), scheduler=scheduler.state_dict())  # plain values only
    rest, *_ = run(8, load_checkpoint(tmp_path))
    assert first + rest == straight
