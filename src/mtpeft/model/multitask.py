"""The model researchers train: one routed backbone, one head per task, one forward for a mixed batch.

A batch may hold examples of several tasks. They are sent through the backbone ONCE, each task's
examples and its own token length are then handed to its head. How they reach the backbone is the
batch's layout, chosen at :meth:`MultiTaskModel.collate`: packed rows without padding (each example
attending only to itself, :mod:`mtpeft.model.packing`), forwards grouped by length where packing
cannot apply, or, without a layout, rows grouped by task (contiguous blocks, so the adapter router
works on views) and padded to one length. Every layout gives the heads the same states.

In the hierarchical strategy (S3b) the level-2 heads see :class:`CrossLevelAttention` of their
hidden states over level-1 features of the same input (the backbone routed through the level-1
adapter). With ``detach_l1_for_l2`` the level-1 pass runs without a graph: level-2 losses cannot
reach level-1 parameters, and the pass costs no activation memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from mtpeft.adapters.model import MultiAdapterBackbone, Route
from mtpeft.adapters.params import ParameterCounts, count_parameters
from mtpeft.errors import ConfigError
from mtpeft.heads.base import Batch, HeadOutput, TaskHead
from mtpeft.model.packing import GroupedLayout, PackedLayout, Packing
from mtpeft.tasks.features import Features, WindowPrediction


class CrossLevelAttention(nn.Module):
    """Multi-head attention of level-2 token states (queries) over level-1 states (keys/values).

    ``out = LayerNorm(level2 + Attention(level2, level1, level1))``; padding keys are masked.
    """

    def __init__(self, hidden_size: int, num_heads: int = 4, dropout: float = 0.0) -> None:
        super().__init__()
        if hidden_size % num_heads:
            raise ConfigError(f"cross-level attention: hidden size {hidden_size} is not divisible by {num_heads} heads")
        self.attention = nn.MultiheadAttention(hidden_size, num_heads, dropout=dropout, batch_first=True)
        self.norm = nn.LayerNorm(hidden_size)

    def forward(self, level2: Tensor, level1: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """``level2``, ``level1``: ``(B, T, H)``; ``attention_mask``: ``(B, T)``, 1 on real tokens."""
        padding = None if attention_mask is None else attention_mask == 0
        attended, _ = self.attention(level2, level1, level1, key_padding_mask=padding, need_weights=False)
        return self.norm(level2 + attended)


@dataclass
class MultiTaskBatch:
    """Per-task collated sub-batches of one step, in row order ``tasks``."""

    tasks: list[str]
    batches: dict[str, Batch]
    features: dict[str, list[Features]]
    layout: PackedLayout | GroupedLayout | None = None
    """How the examples reach the backbone; ``None``: padded rows grouped by task."""
    level1_layout: PackedLayout | GroupedLayout | None = None
    """S3b: the layout of the level-2 tasks' examples for their level-1 pass."""

    @property
    def num_examples(self) -> int:
        return sum(len(self.features[t]) for t in self.tasks)

    @property
    def num_tokens(self) -> int:
        """Real (non-padding) tokens."""
        return int(sum(self.batches[t]["attention_mask"].sum() for t in self.tasks))

    @property
    def num_positions(self) -> int:
        """Positions the backbone computes in its main pass (real tokens plus padding)."""
        if self.layout is not None:
            return self.layout.positions
        return sum(self.batches[t]["input_ids"].shape[0] for t in self.tasks) * max(
            self.batches[t]["input_ids"].shape[1] for t in self.tasks
        )


@dataclass
class MultiTaskOutput:
    losses: dict[str, Tensor] = field(default_factory=dict)
    outputs: dict[str, HeadOutput] = field(default_factory=dict)


class MultiTaskModel(nn.Module):
    """Routed backbone + task heads (+ cross-level attention for S3b).

    Args:
        backbone: the adapters and their routes (one route per task id).
        heads: task id -> head.
        levels: task id -> 1 or 2.
        pad_token_id: padding id used when sub-batches of different lengths share a forward.
        cross_level: attention giving level-2 heads level-1 features (S3b), or ``None``.
        level1_route: the route that produces level-1 features (S3b).
        detach_l1_for_l2: run the level-1 pass for level-2 examples without a graph.
    """

    def __init__(
        self,
        backbone: MultiAdapterBackbone,
        heads: dict[str, TaskHead],
        levels: dict[str, int],
        pad_token_id: int,
        cross_level: CrossLevelAttention | None = None,
        level1_route: Route | None = None,
        detach_l1_for_l2: bool = True,
    ) -> None:
        super().__init__()
        missing = sorted(set(heads) - set(backbone.routes))
        if missing:
            raise ConfigError(f"tasks {missing} have heads but no adapter route")
        if (cross_level is None) != (level1_route is None):
            raise ConfigError("cross-level attention needs a level-1 route, and the reverse")
        self.backbone = backbone
        self.heads = nn.ModuleDict(heads)
        self.levels = dict(levels)
        self.pad_token_id = pad_token_id
        self.cross_level = cross_level
        self.level1_route = level1_route
        self.detach_l1_for_l2 = detach_l1_for_l2
        self.prediction_packing: Packing | bool | str = "auto"
        """How prediction lays out its batches when not told (``evaluation.packing``; the trainer
        sets it from the run's config): see :func:`mtpeft.evaluation.evaluate.predict_features`."""

    # ------------------------------------------------------------------ batching
    def collate(self, features_by_task: dict[str, Sequence[Features]], packing: Packing | None = None) -> MultiTaskBatch:
        """Collate each task's features with its head; empty tasks are left out.

        ``packing`` (see :func:`mtpeft.model.packing.resolve_packing`) lays the examples out for
        the backbone: ``packed`` rows, ``grouped`` forwards; ``None`` or ``padded``: padded rows.
        """
        tasks = [t for t, f in features_by_task.items() if len(f)]
        unknown = [t for t in tasks if t not in self.heads]
        if unknown:
            raise ConfigError(f"no head for tasks {unknown}; model tasks: {sorted(self.heads)}")
        batch = MultiTaskBatch(
            tasks=tasks,
            batches={t: type(self.heads[t]).collate(list(features_by_task[t]), self.pad_token_id) for t in tasks},
            features={t: list(features_by_task[t]) for t in tasks},
        )
        if packing is not None and packing.mode != "padded" and tasks:
            batch.layout = self._layout(batch, tasks, packing)
            level2 = self._level2_tasks(batch)
            if level2:
                batch.level1_layout = self._layout(batch, level2, packing)
        return batch

    def _layout(self, batch: MultiTaskBatch, tasks: list[str], packing: Packing) -> PackedLayout | GroupedLayout:
        inputs = [(batch.batches[t]["input_ids"], batch.batches[t]["attention_mask"]) for t in tasks]
        if packing.mode == "packed":
            return PackedLayout.build(inputs, packing.budget, self.pad_token_id, packing.mix_tasks)
        return GroupedLayout.build(inputs)

    def _level2_tasks(self, batch: MultiTaskBatch) -> list[str]:
        """Tasks of ``batch`` whose heads see cross-level attention (S3b)."""
        return [t for t in batch.tasks if self.levels.get(t) == 2] if self.cross_level is not None else []

    def _joint_inputs(self, batch: MultiTaskBatch) -> tuple[Tensor, Tensor, list[slice]]:
        width = max(batch.batches[t]["input_ids"].shape[1] for t in batch.tasks)
        ids, masks, rows, start = [], [], [], 0
        for task in batch.tasks:
            sub = batch.batches[task]
            pad = width - sub["input_ids"].shape[1]
            ids.append(nn.functional.pad(sub["input_ids"], (0, pad), value=self.pad_token_id))
            masks.append(nn.functional.pad(sub["attention_mask"], (0, pad), value=0))
            rows.append(slice(start, start + sub["input_ids"].shape[0]))
            start += sub["input_ids"].shape[0]
        return torch.cat(ids), torch.cat(masks), rows

    def _device(self) -> torch.device:
        return next(p.device for p in self.parameters() if p.requires_grad or p.device.type != "meta")

    # ------------------------------------------------------------------ forward
    def hidden_states(self, batch: MultiTaskBatch) -> dict[str, Tensor]:
        """Per-task hidden states ``(B_t, T_t, H)`` as the heads see them (after cross-level attention).

        Values on padding positions depend on the layout (zeros when packed); heads never read them.
        """
        if batch.layout is None:
            return self._padded_hidden_states(batch)
        device = self._device()
        per_task = dict(zip(batch.tasks, batch.layout.run(self.backbone, self.backbone.routes_for(batch.tasks), device)))
        level2 = self._level2_tasks(batch)
        if level2:
            # The level-1 pass of the level-2 examples, laid out on their own; cross-level attention
            # per task over each example's own level-1 states (padding keys masked), as unpacked.
            with torch.no_grad() if self.detach_l1_for_l2 else nullcontext():
                level1 = batch.level1_layout.run(self.backbone, [self.level1_route] * len(level2), device)
            for task, states in zip(level2, level1):
                per_task[task] = self.cross_level(per_task[task], states, batch.batches[task]["attention_mask"].to(device))
        return per_task

    def _padded_hidden_states(self, batch: MultiTaskBatch) -> dict[str, Tensor]:
        """The padded path: every row padded to the batch's widest example, one backbone pass."""
        device = self._device()
        input_ids, attention_mask, rows = self._joint_inputs(batch)
        input_ids, attention_mask = input_ids.to(device), attention_mask.to(device)
        tasks_per_row = [t for t, r in zip(batch.tasks, rows) for _ in range(r.stop - r.start)]
        hidden = self.backbone(input_ids, attention_mask, tasks=tasks_per_row)  # (B, T, H)
        # split, not one slice per task: its backward is one concatenation, not zero-padded copies
        per_task = dict(zip(batch.tasks, hidden.split([r.stop - r.start for r in rows])))

        level2 = [t for t in batch.tasks if self.levels.get(t) == 2]
        if self.cross_level is not None and level2:
            index = torch.cat([torch.arange(r.start, r.stop) for t, r in zip(batch.tasks, rows) if t in level2])
            routes = [self.level1_route] * len(index)
            ids2, mask2 = input_ids[index.to(device)], attention_mask[index.to(device)]
            if self.detach_l1_for_l2:
                with torch.no_grad():
                    level1 = self.backbone(ids2, mask2, routes=routes)
            else:
                level1 = self.backbone(ids2, mask2, routes=routes)
            enriched = self.cross_level(hidden[index.to(device)], level1, mask2)
            start = 0
            for task in level2:
                n = per_task[task].shape[0]
                per_task[task] = enriched[start : start + n]
                start += n

        width = input_ids.shape[1]
        return {
            t: per_task[t] if (n := batch.batches[t]["input_ids"].shape[1]) == width else per_task[t][:, :n]
            for t in batch.tasks
        }

    def forward(self, batch: MultiTaskBatch) -> MultiTaskOutput:
        """Per-task losses (tasks whose batch has targets) and head outputs."""
        device = self._device()
        out = MultiTaskOutput()
        for task, hidden in self.hidden_states(batch).items():
            sub = {k: v.to(device) for k, v in batch.batches[task].items()}
            result = self.heads[task](hidden, sub)
            out.outputs[task] = result
            if result.loss is not None:
                out.losses[task] = result.loss
        return out

    @torch.no_grad()
    def predict(self, batch: MultiTaskBatch) -> dict[str, list[WindowPrediction]]:
        """Decoded predictions per task (call in eval mode)."""
        device = self._device()
        output = self.forward(batch)
        return {
            t: self.heads[t].decode(output.outputs[t], {k: v.to(device) for k, v in batch.batches[t].items()}, batch.features[t])
            for t in batch.tasks
        }

    # ------------------------------------------------------------------ components
    def components(self) -> dict[str, list[nn.Parameter]]:
        """Trainable components by name: ``adapter:<name>``, ``fusion``, ``head:<task>``, ``cross_level``."""
        parts = {f"adapter:{name}": list(self.backbone.adapter_parameters(name).values()) for name in self.backbone.adapter_ranks}
        fusion = list(self.backbone.fusion_parameters().values())
        if fusion:
            parts["fusion"] = fusion
        parts.update({f"head:{t}": list(h.parameters()) for t, h in self.heads.items()})
        if self.cross_level is not None:
            parts["cross_level"] = list(self.cross_level.parameters())
        return parts

    def set_trainable(self, component: str, trainable: bool) -> None:
        """Freeze (``False``) or unfreeze a component by name (see :meth:`components`)."""
        parts = self.components()
        if component not in parts:
            raise ConfigError(f"unknown component {component!r}; valid choices: {', '.join(parts)}")
        for param in parts[component]:
            param.requires_grad_(trainable)

    def shared_adapter_names(self) -> list[str]:
        """Adapters that serve more than one task (where task gradients can conflict)."""
        uses: dict[str, int] = {}
        for task in self.heads:
            for name in self.backbone.routes[task].adapters():
                uses[name] = uses.get(name, 0) + 1
        return [n for n, k in uses.items() if k > 1]

    def shared_parameters(self) -> list[nn.Parameter]:
        """Trainable parameters used by several tasks: shared adapters, fusion, cross-level attention."""
        parts = self.components()
        names = [f"adapter:{a}" for a in self.shared_adapter_names()] + ["fusion", "cross_level"]
        return [p for n in names for p in parts.get(n, []) if p.requires_grad]

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    def parameter_counts(self) -> ParameterCounts:
        other = {"cross_level": self.cross_level} if self.cross_level is not None else None
        return count_parameters(self.backbone, dict(self.heads.items()), other)
