"""AdamW parameter groups and the learning-rate schedule (warm-up, then linear/cosine/constant).

Groups: adapters + fusion at ``lr``; heads at ``head_lr`` (default ``lr``); loss-strategy
parameters (uncertainty log-variances) at ``lr``. Weight decay applies to matrices only: biases,
norm weights, gates and log-variances (every parameter with fewer than 2 dimensions, or whose
name says bias/norm/log_var) are in no-decay groups, since decaying them pulls scales and
offsets to 0 rather than regularising a mapping. The schedule is ``transformers.get_scheduler``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
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
    optimizer: torch.optim.Optimizer, schedule: str, max_steps: int, warmup_ratio: float
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up from 0 over ``warmup_steps``, then ``schedule`` decay to 0 at ``max_steps``
    (``constant`` stays at the peak). Step it once per optimizer step."""
    if schedule not in SCHEDULES:
        raise ConfigError(f"unknown schedule {schedule!r}; valid choices: {', '.join(SCHEDULES)}")
    return get_scheduler(
        SCHEDULES[schedule],
        optimizer,
        num_warmup_steps=warmup_steps(max_steps, warmup_ratio),
        num_training_steps=max_steps,
    )


def build_optimization(
    training: Any,
    adapter_params: Mapping[str, nn.Parameter],
    head_params: Mapping[str, nn.Parameter],
    extra_params: Mapping[str, nn.Parameter] | None = None,
) -> tuple[torch.optim.AdamW, torch.optim.lr_scheduler.LambdaLR]:
    """Optimizer and scheduler from a :class:`mtpeft.config.TrainingConfig`."""
    groups = param_groups(
        adapter_params, head_params, extra_params or {},
        lr=training.lr, head_lr=training.head_lr, weight_decay=training.weight_decay,
    )  # fmt: skip
    optimizer = build_optimizer(groups, training.lr)
    return optimizer, build_scheduler(optimizer, training.schedule, training.max_steps, training.warmup_ratio)
