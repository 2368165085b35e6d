"""The public-data workload of the step benchmark: padded against packed batches.

Every other variant of ``step.py`` runs full ``B x T`` blocks, where padding never occurs. This
workload is what a run on the public SemEval files computes: 2021 T6 (both levels, the same
memes) and 2016 T3 subtask A (the 2017 T3 format), encoded with the tasks' default windows (512
tokens: nothing is cut), drawn as the trainer draws a step (``TaskSampler``, uniform over the
three tasks, mixed batches, ``--workload-batch`` examples a step, 24 by default: 8 per task on
average), with each task's own head. The variants run the SAME steps, each the trainer's step:
collate (and pack), forward, backward, AdamW; ``tokens`` counts real tokens only, and the JSON
records each variant's ``real_token_share``, real tokens over the positions the backbone computes.

* ``workload_padded``: today's path, every row padded to the step's longest example;
* ``workload_packed``: the trainer's default (``training.packing: auto``): packed rows that mix
  tasks, at most ``--packing-tokens`` tokens each;
* ``workload_task_rows``: packed, one task per row (the alternative that keeps row routing).

Without the shared data (``$MTPEFT_SHARED_DATA`` or ``../shared/data``) these variants are skipped
and the run says so. ``--workload-config CONFIG`` runs the steps of a run config instead (its
tasks, windows, training files, batch size and sampler, drawn as its trainer draws them), e.g.
``configs/demo.yaml``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from mtpeft.heads.base import create_task_head
from mtpeft.model.multitask import MultiTaskModel
from mtpeft.model.packing import Packing
from mtpeft.tasks.base import Task
from mtpeft.tasks.features import Features
from mtpeft.tasks.from_config import task_from_config
from mtpeft.testing import ENV_VAR, shared_data_dir
from mtpeft.training.sampling import TaskSampler
from mtpeft.training.weighting import build_loss_strategy

FILES = {
    "semeval2021t6_level1": "semeval2021t6/training_set_task2.txt",
    "semeval2021t6_level2": "semeval2021t6/training_set_task2.txt",
    "semeval2017t3": "semeval2017t3/SemEval2016-Task3-CQA-QL-train-part2-subtaskA.xml",
}
"""Task id -> training file under the shared data folder."""


@dataclass
class Workload:
    tasks: dict[str, Task]
    steps: list[dict[str, list[Features]]]
    """Each step's examples, task -> features, as the trainer draws them."""

    @property
    def levels(self) -> dict[str, int]:
        return {t: task.level for t, task in self.tasks.items()}


def load_workload(tokenizer, batch_size: int, steps: int, seed: int = 0) -> Workload | str:
    """The workload's steps, or why it cannot be built (no shared data)."""
    base = shared_data_dir()
    missing = [path for path in FILES.values() if base is None or not (base / path).is_file()]
    if missing:
        where = base if base is not None else f"${ENV_VAR} / ../shared/data"
        return f"workload variants skipped: the public data is not at {where} (missing {', '.join(sorted(set(missing)))})"
    tasks, features = {}, {}
    for task_id, path in FILES.items():
        tasks[task_id] = task_from_config({"id": task_id})
        documents = tasks[task_id].read(base / path).documents
        features[task_id] = tasks[task_id].encode(documents, tokenizer).features
    sampler = TaskSampler({t: len(f) for t, f in features.items()}, batch_size, seed, "uniform", batch_mode="mixed")
    drawn = [sampler.next_batch() for _ in range(steps)]
    return Workload(tasks, [{t: [features[t][i] for i in ids] for t, ids in d.items()} for d in drawn])


def config_workload(path: str, tokenizer, steps: int) -> Workload:
    """The first ``steps`` steps the trainer of the run config at ``path`` would take (its first stage)."""
    from mtpeft.config import load_config
    from mtpeft.model.build import build_task
    from mtpeft.training.data import load_task_data

    config = load_config(path)
    tasks = {tc.id: build_task(tc) for tc in config.tasks}
    data = load_task_data(config, tasks, tokenizer)
    sampler = TaskSampler.from_config({t: len(d.train) for t, d in data.items()}, config.training.batch_size,
                                      config.seed, config.training.sampling)
    drawn = [sampler.next_batch() for _ in range(steps)]
    return Workload(tasks, [{t: [data[t].train[i] for i in ids] for t, ids in d.items()} for d in drawn])


def with_task_heads(model: MultiTaskModel, tasks: dict[str, Task], device: torch.device) -> MultiTaskModel:
    """``model`` with each task's own head (as ``mtpeft.model.build`` makes it) in place of the
    benchmark's common token head: the heads decide what a step collates and computes."""
    hidden = int(model.backbone.config.hidden_size)
    model.heads = nn.ModuleDict(
        {t: create_task_head(task.head_kind, hidden, len(task.labels), **task.head_options()) for t, task in tasks.items()}
    ).to(device)
    return model


def real_token_share(model: MultiTaskModel, workload: Workload, packing: Packing | None) -> float:
    """Real tokens / positions the backbone computes, over the workload's steps."""
    batches = [model.collate(step, packing) for step in workload.steps]
    return sum(b.num_tokens for b in batches) / sum(b.num_positions for b in batches)


def workload_step(
    model: MultiTaskModel, workload: Workload, packing: Packing | None, phases: dict[str, float]
) -> Callable[[], int]:
    """The trainer's steps over the workload (collate included): returns the REAL tokens."""
    shared = model.shared_parameters()
    shared_ids = {id(p) for p in shared}
    others = [p for p in model.trainable_parameters() if id(p) not in shared_ids]
    optimizer = torch.optim.AdamW(model.trainable_parameters())
    strategy = build_loss_strategy("equal", list(workload.tasks), seed=0)

    def step() -> int:
        model.train()
        tokens, collate = 0, 0.0
        for examples in workload.steps:
            optimizer.zero_grad(set_to_none=True)
            t0 = time.perf_counter()
            batch = model.collate(examples, packing)
            collate += time.perf_counter() - t0
            strategy.backward(model(batch).losses, shared, others)
            strategy.finish(shared)
            optimizer.step()
            tokens += batch.num_tokens
        phases.update(collate=collate)
        return tokens

    return step
