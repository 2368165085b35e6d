"""Build the tasks and the multi-task model of a run config."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from mtpeft.adapters.model import MultiAdapterBackbone
from mtpeft.backbone import Backbone, load_backbone
from mtpeft.config import RunConfig, TaskConfig
from mtpeft.errors import ConfigError
from mtpeft.heads.base import create_task_head
from mtpeft.model.multitask import CrossLevelAttention, MultiTaskModel
from mtpeft.model.strategies import StrategyPlan, plan_strategy
from mtpeft.tasks.base import Task
from mtpeft.tasks.document import Document
from mtpeft.tasks.split import split_part
from mtpeft.tasks.from_config import task_from_config

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def build_task(config: TaskConfig) -> Task:
    """The task of one ``tasks:`` entry (a registered id, or ``options.format: generic``).

    A task with a ``fit`` method (the disorder tasks: CUI classes and training lexicon) learns it
    from the entry's TRAINING documents (:func:`training_documents`, the ones training reads), so
    a model rebuilt from the config has the same heads, and dev/test never reach it.
    """
    task = task_from_config({"id": config.id, **config.options})
    fit = getattr(task, "fit", None)
    if fit is not None and config.train is not None:
        if not Path(config.train).exists():
            raise ConfigError(
                f"task {config.id!r}: train {config.train!r} does not exist; the task learns what its head "
                "predicts (the CUI classes and training lexicon) from its training data, also when a trained "
                "model is loaded: run from the folder the paths are relative to, or fix the path"
            )
        fit(training_documents(config, task))
    return task


def training_documents(config: TaskConfig, task: Task) -> list[Document]:
    """The documents training reads for one ``tasks:`` entry: those of ``train`` (only its train
    part under ``split``: the held-out part is the dev set), at most ``limit``."""
    documents = task.read(config.train, lenient=config.lenient).documents
    if config.split is not None:
        documents, _ = split_part(documents, config.split, "train")
    return documents[: config.limit] if config.limit else documents


@dataclass
class BuiltModel:
    model: MultiTaskModel
    plan: StrategyPlan
    backbone: Backbone
    tasks: dict[str, Task]


def build_model(config: RunConfig, backbone: Backbone | None = None) -> BuiltModel:
    """Tasks, backbone (loaded unless given), adapters, heads and hierarchy for ``config``.

    The seed is set before anything random is created, so the same config builds the same model.
    """
    tasks = {tc.id: build_task(tc) for tc in config.tasks}
    levels = {t: task.level for t, task in tasks.items()}
    plan = plan_strategy(config.strategy, levels)
    if backbone is None:
        backbone = load_backbone(
            config.model.backbone,
            cache_dir=config.model.cache_dir,
            dtype=_DTYPES[config.model.dtype],
            load_in_4bit=plan.load_in_4bit or config.model.load_in_4bit,
            seed=config.seed,
        )
    if backbone.tokenizer is None:
        raise ValueError(f"backbone {backbone.name!r} has no tokenizer; a trainable model needs one")

    torch.manual_seed(config.seed)
    routed = MultiAdapterBackbone(
        backbone.model,
        plan.adapters,
        plan.routes,
        target_modules=config.strategy.target_modules,
        lora_alpha=config.strategy.lora_alpha,
        lora_dropout=config.strategy.lora_dropout,
        fusion=plan.fusion,
        placement=plan.placement,
        fusion_options=plan.fusion_options,
        kernel=config.adapters.kernel,
    )
    hidden = backbone.hidden_size
    heads = {}
    for tc in config.tasks:
        task = tasks[tc.id]
        shared = task.head_options()
        clashes = {k: v for k, v in tc.head_options.items() if k in shared and shared[k] != v}
        if clashes:
            raise ConfigError(
                f"task {tc.id!r}: head_options {clashes} differ from the encoder's {shared}; "
                f"set {', '.join(clashes)} under the task's options so encoder and head agree"
            )
        options = {**shared, **tc.head_options}
        heads[tc.id] = create_task_head(task.head_kind, hidden, len(task.labels), **options)
    cross_level = (
        CrossLevelAttention(hidden, config.strategy.cross_level_heads) if plan.level1_route is not None else None
    )
    model = MultiTaskModel(
        routed,
        heads,
        levels,
        pad_token_id=backbone.tokenizer.pad_token_id,
        cross_level=cross_level,
        level1_route=plan.level1_route,
        detach_l1_for_l2=config.strategy.detach_l1_for_l2,
    )
    return BuiltModel(model=model, plan=plan, backbone=backbone, tasks=tasks)
