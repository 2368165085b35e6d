"""The six strategies of the study, each a function from the config to a :class:`StrategyPlan`.

A plan says which adapters exist, how each task is routed through them, how shared and private
are fused, whether level-2 tasks get cross-level attention, and the training stages. The trainer
reads the plan's stages; it never branches on a strategy's name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from mtpeft.adapters.model import Route
from mtpeft.config import StrategyConfig
from mtpeft.errors import ConfigError
from mtpeft.registry import Registry


@dataclass
class Stage:
    """A phase of training: which tasks are sampled, which components are frozen, its share of steps.

    Each stage has its own learning-rate schedule over its steps: a warm-up from 0, then the decay
    to 0 at its end (:mod:`mtpeft.training.schedule`), and its own task sampler."""

    name: str
    tasks: list[str]
    frozen: list[str] = field(default_factory=list)
    fraction: float = 1.0


@dataclass
class StrategyPlan:
    adapters: dict[str, int]
    routes: dict[str, Route]
    fusion: str = "sum"
    placement: str = "layer"
    fusion_options: dict | None = None
    level1_route: Route | None = None
    stages: list[Stage] = field(default_factory=list)
    load_in_4bit: bool = False


STRATEGIES: Registry[Callable[[StrategyConfig, dict[str, int]], StrategyPlan]] = Registry("strategy")


def _all_tasks(levels: dict[str, int]) -> list[Stage]:
    return [Stage("all", list(levels))]


@STRATEGIES.register("s1")
def single_task(cfg: StrategyConfig, levels: dict[str, int]) -> StrategyPlan:
    """S1: one LoRA per task (rank ``shared_rank``), no sharing. Run one task per run for the study;
    several tasks in one run train disjoint adapters that share only the optimiser step."""
    return StrategyPlan(
        adapters={f"task_{t}": cfg.shared_rank for t in levels},
        routes={t: Route(private=f"task_{t}") for t in levels},
        stages=_all_tasks(levels),
    )


@STRATEGIES.register("s2")
def shared_lora(cfg: StrategyConfig, levels: dict[str, int]) -> StrategyPlan:
    """S2: one LoRA shared by all tasks; only the heads are private."""
    return StrategyPlan(
        adapters={"shared": cfg.shared_rank},
        routes={t: Route(shared=("shared",)) for t in levels},
        stages=_all_tasks(levels),
    )


@STRATEGIES.register("s3a")
def shared_private(cfg: StrategyConfig, levels: dict[str, int]) -> StrategyPlan:
    """S3a: a shared LoRA plus a private LoRA per task, mixed by the configured fusion."""
    return StrategyPlan(
        adapters={"shared": cfg.shared_rank, **{f"private_{t}": cfg.private_rank for t in levels}},
        routes={t: Route(shared=("shared",), private=f"private_{t}") for t in levels},
        fusion=cfg.fusion,
        placement=cfg.placement,
        fusion_options=cfg.fusion_options,
        stages=_all_tasks(levels),
    )


@STRATEGIES.register("s3b")
def hierarchical(cfg: StrategyConfig, levels: dict[str, int]) -> StrategyPlan:
    """S3b: a shared LoRA plus one LoRA per level; level-2 heads cross-attend to level-1 features."""
    return StrategyPlan(
        adapters={"shared": cfg.shared_rank, "level1": cfg.private_rank, "level2": cfg.private_rank},
        routes={t: Route(shared=("shared",), private=f"level{k}") for t, k in levels.items()},
        fusion=cfg.fusion,
        placement=cfg.placement,
        fusion_options=cfg.fusion_options,
        level1_route=Route(shared=("shared",), private="level1"),
        stages=_all_tasks(levels),
    )


@STRATEGIES.register("s4")
def sequential(cfg: StrategyConfig, levels: dict[str, int]) -> StrategyPlan:
    """S4: train level-1 tasks on a level-1 LoRA; then level-2 tasks on the level-1 LoRA (frozen or
    not) plus a fresh level-2 LoRA whose B starts at zero, so stage 2 starts from the level-1 model.
    Stage 2 warms its learning rate up again (each stage has its own schedule)."""
    level1 = [t for t, k in levels.items() if k == 1]
    level2 = [t for t, k in levels.items() if k == 2]
    if not level1 or not level2:
        raise ConfigError(f"strategy s4 needs level-1 and level-2 tasks; got level 1: {level1}, level 2: {level2}")
    routes = {t: Route(shared=("level1",)) for t in level1}
    routes.update({t: Route(shared=("level1",), private="level2") for t in level2})
    stage1_frozen = ["adapter:level2"] + [f"head:{t}" for t in level2]
    stage2_frozen = [f"head:{t}" for t in level1] + (["adapter:level1"] if cfg.freeze_level1 else [])
    return StrategyPlan(
        adapters={"level1": cfg.shared_rank, "level2": cfg.private_rank},
        routes=routes,
        stages=[
            Stage("level1", level1, stage1_frozen, cfg.stage1_fraction),
            Stage("level2", level2, stage2_frozen, 1.0 - cfg.stage1_fraction),
        ],
    )


@STRATEGIES.register("s5")
def qlora(cfg: StrategyConfig, levels: dict[str, int]) -> StrategyPlan:
    """S5: the architecture named by ``strategy.architecture`` on a 4-bit NF4 backbone."""
    plan = STRATEGIES.get(cfg.architecture)(cfg, levels)
    plan.load_in_4bit = True
    return plan


def plan_strategy(cfg: StrategyConfig, levels: dict[str, int]) -> StrategyPlan:
    """The plan of ``cfg.name`` for tasks with the given levels."""
    return STRATEGIES.get(cfg.name)(cfg, levels)
