"""AdamW parameter groups and the learning-rate schedule (warm-up, then linear/cosine/constant).

Groups: adapters + fusion at ``lr``; heads at ``head_lr`` (default ``lr``); loss-strategy
parameters (uncertainty log-variances) at ``lr``. Weight decay applies to matrices only: biases,
norm weights, gates and log-variances (every parameter with fewer than 2 dimensions, or whose
name says bias/norm/log_var) are in no-decay groups, since decaying them pulls scales and
offsets to 0 rather than regularising a mapping. The schedule is ``transformers.get_scheduler``'s.

A strategy trained in stages (S4: level-1 tasks, then level-2 tasks on a fresh level-2 LoRA) gets
the schedule once per stage: each stage warms up over ``ceil(warmup_ratio * its steps)`` steps
from 0 and decays to 0 at its own end, so the new adapter of a later stage starts with a warm-up,
not at the mid-decay learning rate of one schedule spanning both stages. It is one ``LambdaLR``
whose factor is a function of the global step, so a checkpoint restores it exactly.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import nn
from transformers import get_scheduler

from mtpeft.errors import ConfigError

SCHEDULES = {"linear": "linear", "cosine": "cosine", "constant": "constant_with_warmup"}
"""Our schedule names -> ``transformers.SchedulerType`` (all with linear warm-up)."""

_NO_DECAY_MARKERS = ("bias", "norm", "log_var")


def decays(name: str, param: nn.Parameter) -> bool:
    """Whether weight decay applies: matrices yes; biases, norms, gates, log-variances no."""
    lowered = name.lower()
    return param.ndim >= 2 and not any(marker in lowered for marker in _NO_DECAY_MARKERS)


def param_groups(
    adapter_params: Mapping[str, nn.Parameter] | Iterable[tuple[str, nn.Parameter]],
    head_params: Mapping[str, nn.Parameter] | Iterable[tuple[str, nn.Parameter]],
    extra_params: Mapping[str, nn.Parameter] | Iterable[tuple[str, nn.Parameter]] = (),
    *,
    lr: float,
    head_lr: float | None = None,
    weight_decay: float = 0.0,
) -> list[dict[str, Any]]:
    """AdamW groups ``{"name", "params", "lr", "weight_decay"}``; empty groups are left out.

    ``adapter_params``: adapters and fusion (and cross-level attention); ``head_params``: task heads;
    ``extra_params``: loss-strategy parameters (never decayed). Frozen parameters are skipped; a
    parameter given twice raises :class:`ValueError`.
    """
    head_lr = lr if head_lr is None else head_lr
    seen: set[int] = set()
    groups: list[dict[str, Any]] = []

    def add(name: str, params: list[nn.Parameter], group_lr: float, decay: float) -> None:
        if params:
            groups.append({"name": name, "params": params, "lr": group_lr, "weight_decay": decay})

    for label, named, group_lr in (("adapters", adapter_params, lr), ("heads", head_params, head_lr)):
        decay, no_decay = [], []
        for name, param in _items(named):
            if not param.requires_grad:
                continue
            _claim(param, name, seen)
            (decay if decays(name, param) else no_decay).append(param)
        add(label, decay, group_lr, weight_decay)
        add(f"{label}_no_decay", no_decay, group_lr, 0.0)
    extra = []
    for name, param in _items(extra_params):
        if param.requires_grad:
            _claim(param, name, seen)
            extra.append(param)
    add("loss_strategy", extra, lr, 0.0)
    return groups


def _items(params: Mapping[str, nn.Parameter] | Iterable[tuple[str, nn.Parameter]]):
    return params.items() if isinstance(params, Mapping) else params


def _claim(param: nn.Parameter, name: str, seen: set[int]) -> None:
    if id(param) in seen:
        raise ValueError(f"parameter {name!r} is given in two parameter groups")
    seen.add(id(param))


def build_optimizer(groups: list[dict[str, Any]], lr: float, **adamw_options: Any) -> torch.optim.AdamW:
    """``torch.optim.AdamW`` over ``groups`` (each group's own lr and weight decay)."""
    if not groups:
        raise ConfigError("there are no trainable parameters to optimise")
    return torch.optim.AdamW(groups, lr=lr, **adamw_options)


def warmup_steps(max_steps: int, warmup_ratio: float) -> int:
    """``ceil(warmup_ratio * max_steps)`` optimizer steps of linear warm-up."""
    return math.ceil(warmup_ratio * max_steps)


def build_scheduler(
    optimizer: torch.optim.Optimizer,
    schedule: str,
    max_steps: int,
    warmup_ratio: float,
    stages: Sequence[int] | None = None,
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up from 0 over ``warmup_steps``, then ``schedule`` decay to 0 at ``max_steps``
    (``constant`` stays at the peak). Step it once per optimizer step.

    ``stages``: the optimizer steps of each training stage (summing to ``max_steps``); each stage
    then has that schedule over its own steps (see the module docstring). One stage (or ``None``)
    is the plain schedule.
    """
    if schedule not in SCHEDULES:
        raise ConfigError(f"unknown schedule {schedule!r}; valid choices: {', '.join(SCHEDULES)}")
    stages = list(stages) if stages is not None else [max_steps]
    if sum(stages) != max_steps or any(n < 0 for n in stages):
        raise ValueError(f"stage steps {stages} do not split max_steps={max_steps}")
    if len(stages) == 1:
        return get_scheduler(
            SCHEDULES[schedule], optimizer,
            num_warmup_steps=warmup_steps(max_steps, warmup_ratio), num_training_steps=max_steps,
        )  # fmt: skip
    factors = [_stage_factor(schedule, steps, warmup_ratio) for steps in stages]
    starts = [sum(stages[:k]) for k in range(len(stages))]

    def factor(step: int) -> float:  # a plain function: LambdaLR saves no state for it
        stage = max(bisect_right(starts, step) - 1, 0)
        return factors[stage](step - starts[stage])

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _stage_factor(schedule: str, steps: int, warmup_ratio: float) -> Callable[[int], float]:
    """transformers' learning-rate factor of ``schedule`` over ``steps`` steps (step -> factor)."""
    probe = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    scheduler = get_scheduler(
        SCHEDULES[schedule], probe, num_warmup_steps=warmup_steps(steps, warmup_ratio), num_training_steps=steps
    )
    return scheduler.lr_lambdas[0]


def build_optimization(
    training: Any,
    adapter_params: Mapping[str, nn.Parameter],
    head_params: Mapping[str, nn.Parameter],
    extra_params: Mapping[str, nn.Parameter] | None = None,
    stages: Sequence[int] | None = None,
) -> tuple[torch.optim.AdamW, torch.optim.lr_scheduler.LambdaLR]:
    """Optimizer and scheduler from a :class:`mtpeft.config.TrainingConfig` (``stages``: the
    steps of each training stage, each with its own warm-up and decay)."""
    groups = param_groups(
        adapter_params, head_params, extra_params or {},
        lr=training.lr, head_lr=training.head_lr, weight_decay=training.weight_decay,
    )  # fmt: skip
    optimizer = build_optimizer(groups, training.lr)
    return optimizer, build_scheduler(optimizer, training.schedule, training.max_steps, training.warmup_ratio, stages)
