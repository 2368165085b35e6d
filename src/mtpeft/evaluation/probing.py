"""Linear probes on frozen representations: what does each adapter's representation encode?

For a trained run, every probed task's examples are passed through the backbone under several
routes, each giving a representation:

* ``shared``: the shared adapter(s) alone;
* ``private:<t>``: task ``t``'s private adapter alone;
* ``fused:<t>``: task ``t``'s full route (shared + private, fused as trained).

A linear classifier (multinomial logistic regression, trained with L-BFGS on the probe-train
split, scored on the probe-dev split) predicts the probed task's labels from each representation.
Labels per head kind: token tasks, each labelled token's tag (token state); ranking, the relevance
level (last-token state, as the ranking head pools); single-span typing, each span's technique (mean
of its token states). Span and pair-relation tasks have no per-unit label of this kind and are not
probed (the table says so). The majority-class accuracy is given as the floor.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from mtpeft.adapters.model import Route
from mtpeft.model.multitask import MultiTaskModel
from mtpeft.tasks.base import Task
from mtpeft.tasks.features import IGNORE_INDEX, Features

PROBED_KINDS = ("token", "ranking", "relation")


@dataclass
class ProbeResult:
    accuracy: dict[str, dict[str, float]] = field(default_factory=dict)  # representation -> task -> accuracy
    majority: dict[str, float] = field(default_factory=dict)
    examples: dict[str, tuple[int, int]] = field(default_factory=dict)  # task -> (train units, dev units)
    not_probed: dict[str, str] = field(default_factory=dict)


def probe_routes(model: MultiTaskModel) -> dict[str, Route]:
    """The representations to probe: shared alone, each private alone, each task's fused route."""
    backbone = model.backbone
    routes: dict[str, Route] = {}
    shared = model.shared_adapter_names()
    if shared:
        routes["shared"] = Route(shared=tuple(shared))
    for task, route in backbone.routes.items():
        if route.private:
            routes[f"private:{task}"] = Route(private=route.private)
        if route.shared and route.private:
            routes[f"fused:{task}"] = route
    return routes


def _units(task: Task, features: Sequence[Features], hidden: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Representation vectors ``(N, H)`` and labels ``(N,)`` of one batch for the probed task."""
    xs, ys = [], []
    for b, f in enumerate(features):
        if task.head_kind == "token" and f.token_labels is not None:
            labels = torch.tensor(f.token_labels)
            keep = labels != IGNORE_INDEX
            xs.append(hidden[b, : len(labels)][keep])
            ys.append(labels[keep])
        elif task.head_kind == "ranking" and f.rank_label is not None:
            last = int(mask[b].sum()) - 1
            xs.append(hidden[b, last][None])
            ys.append(torch.tensor([f.rank_label]))
        elif task.head_kind == "relation" and f.entity_label_sets is not None and f.entities:
            # span typing: one unit per (extent, gold label); an extent with several labels is
            # several units with one vector, which no probe gets all right (the floor counts alike)
            units = [(rng, label) for rng, labels in zip(f.entities, f.entity_label_sets) for label in labels]
            if units:
                xs.append(torch.stack([hidden[b, s : e + 1].mean(0) for (s, e), _ in units]))
                ys.append(torch.tensor([label for _, label in units]))
    if not xs:
        return torch.empty(0, hidden.shape[-1]), torch.empty(0, dtype=torch.long)
    return torch.cat(xs), torch.cat(ys)


@torch.no_grad()
def representations(
    model: MultiTaskModel, task: Task, features: Sequence[Features], route: Route, batch_size: int = 16
) -> tuple[Tensor, Tensor]:
    """Frozen representations and labels of ``features`` under ``route``."""
    model.eval()
    head = type(model.heads[task.id])
    xs, ys = [], []
    for start in range(0, len(features), batch_size):
        chunk = list(features[start : start + batch_size])
        batch = head.collate(chunk, model.pad_token_id)
        device = next(p.device for p in model.parameters())
        ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)
        hidden = model.backbone(ids, mask, routes=[route] * len(chunk)).float().cpu()
        x, y = _units(task, chunk, hidden, mask.cpu())
        xs.append(x)
        ys.append(y)
    return torch.cat(xs), torch.cat(ys)


def fit_linear_probe(x: Tensor, y: Tensor, num_classes: int, l2: float = 1e-3, seed: int = 0) -> nn.Linear:
    """Multinomial logistic regression on standardised features, by full-batch L-BFGS."""
    generator = torch.Generator().manual_seed(seed)
    probe = nn.Linear(x.shape[1], num_classes)
    with torch.no_grad():
        probe.weight.normal_(0, 0.01, generator=generator)
        probe.bias.zero_()
    optimizer = torch.optim.LBFGS(probe.parameters(), max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(probe(x), y) + l2 * probe.weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return probe


def run_probes(
    model: MultiTaskModel,
    tasks: dict[str, Task],
    train_features: dict[str, Sequence[Features]],
    dev_features: dict[str, Sequence[Features]],
    batch_size: int = 16,
) -> ProbeResult:
    """Probe accuracy on dev for every representation x probed task."""
    result = ProbeResult()
    routes = probe_routes(model)
    for task_id, task in tasks.items():
        if task.head_kind not in PROBED_KINDS or (task.head_kind == "relation" and not _is_typing(train_features[task_id])):
            result.not_probed[task_id] = f"{task.head_kind} head: no per-unit label to probe"
            continue
        num_classes = len(task.labels) + (1 if task.head_kind == "relation" else 0)
        for name, route in routes.items():
            x_train, y_train = representations(model, task, train_features[task_id], route, batch_size)
            x_dev, y_dev = representations(model, task, dev_features[task_id], route, batch_size)
            if len(y_train) == 0 or len(y_dev) == 0:
                result.not_probed[task_id] = "no labelled units in the probe splits"
                break
            mean, std = x_train.mean(0), x_train.std(0).clamp_min(1e-6)
            probe = fit_linear_probe((x_train - mean) / std, y_train, num_classes)
            with torch.no_grad():
                predicted = probe((x_dev - mean) / std).argmax(-1)
            result.accuracy.setdefault(name, {})[task_id] = float((predicted == y_dev).float().mean())
            result.examples[task_id] = (len(y_train), len(y_dev))
            most_common = Counter(y_train.tolist()).most_common(1)[0][0]
            result.majority[task_id] = float((y_dev == most_common).float().mean())
    return result


def _is_typing(features: Sequence[Features]) -> bool:
    return any(f.entity_label_sets is not None for f in features)


def write_probing(result: ProbeResult, path: str | Path) -> None:
    """``probing.json`` (``{representation: {task: accuracy}}``, the majority floor as one more row)
    and ``probing_details.json`` beside it (unit counts, tasks not probed and why)."""
    path = Path(path)
    table = {**result.accuracy, "majority class (floor)": result.majority}
    path.write_text(json.dumps(table, indent=2, sort_keys=True))
    details = {"examples": {t: {"train": n, "dev": m} for t, (n, m) in result.examples.items()}, "not_probed": result.not_probed}
    path.with_name("probing_details.json").write_text(json.dumps(details, indent=2, sort_keys=True))
