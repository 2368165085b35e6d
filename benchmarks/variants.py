"""The measured variants of the step benchmark: backbones, the PEFT peer, mtpeft's strategies.

Every training variant ends in the SAME loss: one :class:`~mtpeft.heads.token.TokenHead`
(a linear classifier, cross-entropy over every token, fixed random labels), so that differences
between rows come from the adapter machinery, not from heads. Every training step is
``zero_grad, forward, backward, AdamW step`` over the variant's trainable parameters (no
clipping or scheduler, which cost the same everywhere). mtpeft's variants go through
:class:`~mtpeft.model.multitask.MultiTaskModel` and a loss strategy exactly as the trainer does.

The fp32 variants share one copy of the frozen weights (``deepcopy`` with the parameters in the
memo), so the benchmark holds one backbone in memory plus the 4-bit one.
"""

from __future__ import annotations

import copy
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from peft import LoraConfig, get_peft_model
from torch import Tensor, nn

from mtpeft.adapters.model import MultiAdapterBackbone
from mtpeft.backbone import NAMED_CONFIGS, load_backbone, named_config
from mtpeft.config import StrategyConfig
from mtpeft.evaluation.evaluate import predict_features
from mtpeft.heads.token import TokenHead
from mtpeft.model.multitask import CrossLevelAttention, MultiTaskBatch, MultiTaskModel
from mtpeft.model.strategies import plan_strategy
from mtpeft.tasks.base import TASKS
from mtpeft.tasks.features import Features
from mtpeft.tasks.from_config import task_from_config
from mtpeft.training.weighting import LossStrategy, build_loss_strategy

HEAD_LABELS = 8
"""Classes of the benchmark's token head (any small number: the head is the same in every row)."""
CONFIG_SUFFIX = "-config"


def model_choices() -> list[str]:
    """``embedded``, ``tiny`` and ``<named config>-config`` (random weights of a published shape)."""
    return ["embedded", "tiny", *(f"{name}{CONFIG_SUFFIX}" for name in NAMED_CONFIGS)]


def task_levels() -> dict[str, int]:
    """Every registered task id -> its level (from the task classes, not restated here)."""
    return {t: task_from_config({"id": t}).level for t in TASKS.names()}


# ------------------------------------------------------------------------------------ backbones


def load_base(name: str, device: torch.device, dtype: torch.dtype, layers: int | None, seed: int = 0) -> nn.Module:
    """The frozen backbone (``LlamaModel``); ``layers`` keeps only the first layers (smoke tests)."""
    torch.manual_seed(seed)
    if name.endswith(CONFIG_SUFFIX):
        config = named_config(name[: -len(CONFIG_SUFFIX)])
        if layers is not None:
            config.num_hidden_layers = layers
        from transformers import LlamaModel

        with torch.device(device):
            model = LlamaModel._from_config(config, dtype=dtype)  # random weights, published shapes
    else:
        model = load_backbone(name, dtype=dtype, with_tokenizer=False, seed=seed).model
        if layers is not None:
            model.layers = model.layers[:layers]
            model.config.num_hidden_layers = layers
        model = model.to(device)
    return model.requires_grad_(False)


def load_base_4bit(
    name: str, base: nn.Module, device: torch.device, dtype: torch.dtype, layers: int | None
) -> nn.Module:
    """The same backbone in 4-bit NF4, by the path ``mtpeft`` itself takes (a safetensors folder)."""
    if name in ("embedded", "tiny") and layers is None:
        model = load_backbone(name, dtype=dtype, load_in_4bit=True, with_tokenizer=False).model
    else:
        with tempfile.TemporaryDirectory(prefix="mtpeft-bench-") as tmp:
            base.save_pretrained(tmp, safe_serialization=True)
            model = load_backbone(tmp, dtype=dtype, load_in_4bit=True, with_tokenizer=False).model
    return model.to(device).requires_grad_(False)


def sharing_copy(model: nn.Module) -> nn.Module:
    """A structural copy of ``model`` whose parameters and buffers ARE the original's (no memory)."""
    memo = {id(t): t for t in [*model.parameters(), *model.buffers()]}
    return copy.deepcopy(model, memo)


def frozen_weight_bytes(model: nn.Module) -> int:
    """Bytes of parameters, buffers and 4-bit quantisation state (absmax, code books), each storage once."""
    seen: set[tuple[int, int]] = set()
    total = 0

    def add(t: Tensor) -> None:
        nonlocal total
        key = (t.untyped_storage().data_ptr(), t.untyped_storage().nbytes())
        if key not in seen:
            seen.add(key)
            total += key[1]

    for tensor in [*model.parameters(), *model.buffers()]:
        add(tensor)
        state = getattr(tensor, "quant_state", None)
        if state is not None:
            for value in state.as_dict().values():
                if isinstance(value, Tensor):
                    add(value)
    return total


def float32_weight_bytes(model: nn.Module) -> int:
    """Bytes the same parameters and buffers take in float32 (the reference of the 4-bit saving)."""
    unique = {t.untyped_storage().data_ptr(): t for t in [*model.parameters(), *model.buffers()]}
    return sum(t.numel() * 4 if t.is_floating_point() else t.nbytes for t in unique.values())


# -------------------------------------------------------------------------------------- inputs


@dataclass
class Inputs:
    """One batch of ``B x T`` random tokens with random token labels, as Features and tensors."""

    input_ids: Tensor  # (B, T)
    attention_mask: Tensor  # (B, T)
    labels: Tensor  # (B, T)
    features: list[Features]

    @property
    def tokens(self) -> int:
        return int(self.attention_mask.sum())


def make_inputs(tasks: Sequence[str], batch: int, seq: int, vocab: int, device: torch.device, seed: int = 0) -> Inputs:
    """Row ``i`` belongs to ``tasks[i % len(tasks)]`` (one task given: a single-task batch)."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab, (batch, seq), generator=generator)
    labels = torch.randint(0, HEAD_LABELS, (batch, seq), generator=generator)
    features = [
        Features(
            task=tasks[i % len(tasks)],
            doc_id=f"bench-{i}",
            input_ids=ids[i].tolist(),
            token_offsets=[(0, 0)] * seq,
            token_labels=labels[i].tolist(),
        )
        for i in range(batch)
    ]
    return Inputs(ids.to(device), torch.ones_like(ids).to(device), labels.to(device), features)


def head_batch(inputs: Inputs) -> dict[str, Tensor]:
    return {"input_ids": inputs.input_ids, "attention_mask": inputs.attention_mask, "labels": inputs.labels}


def by_task(features: Sequence[Features]) -> dict[str, list[Features]]:
    grouped: dict[str, list[Features]] = {}
    for f in features:
        grouped.setdefault(f.task, []).append(f)
    return grouped


# ----------------------------------------------------------------------------- training steps


def floor_step(base: nn.Module, head: TokenHead, inputs: Inputs) -> Callable[[], int]:
    """Frozen backbone forward + backward to ``inputs_embeds`` (which require grad); no adapters."""
    optimizer = torch.optim.AdamW(head.parameters())
    batch = head_batch(inputs)

    def step() -> int:
        base.train()
        optimizer.zero_grad(set_to_none=True)
        embeds = base.get_input_embeddings()(inputs.input_ids).detach().requires_grad_(True)
        hidden = base(inputs_embeds=embeds, attention_mask=inputs.attention_mask).last_hidden_state
        head(hidden, batch).loss.backward()
        optimizer.step()
        return inputs.tokens

    return step


def peft_model(base: nn.Module, ranks: dict[str, int], cfg: StrategyConfig) -> nn.Module:
    """Plain PEFT: one LoRA per entry of ``ranks`` on the same projections, all active (summed)."""
    model = None
    for name, rank in ranks.items():
        config = LoraConfig(
            r=rank,
            lora_alpha=cfg.lora_alpha if cfg.lora_alpha is not None else 2 * rank,  # mtpeft's default scaling
            lora_dropout=cfg.lora_dropout,
            target_modules=list(cfg.target_modules),
            bias="none",
        )
        if model is None:
            model = get_peft_model(base, config, adapter_name=name)
        else:
            model.add_adapter(name, config)
    model.base_model.set_adapter(list(ranks))
    return model


def peft_peer_step(model: nn.Module, head: TokenHead, inputs: Inputs) -> Callable[[], int]:
    """What a user would write with plain PEFT: forward, the same head and loss, backward, AdamW."""
    params = [p for p in model.parameters() if p.requires_grad] + list(head.parameters())
    optimizer = torch.optim.AdamW(params)
    batch = head_batch(inputs)

    def step() -> int:
        model.train()
        optimizer.zero_grad(set_to_none=True)
        hidden = model(input_ids=inputs.input_ids, attention_mask=inputs.attention_mask).last_hidden_state
        head(hidden, batch).loss.backward()
        optimizer.step()
        return inputs.tokens

    return step


def build_multitask(
    base: nn.Module, cfg: StrategyConfig, levels: dict[str, int], device: torch.device, kernel: str = "fused"
) -> MultiTaskModel:
    """``mtpeft.model.build.build_model`` with a token head for every task (the benchmark's common loss);
    ``kernel``: ``adapters.kernel``."""
    plan = plan_strategy(cfg, levels)
    routed = MultiAdapterBackbone(
        base,
        plan.adapters,
        plan.routes,
        target_modules=cfg.target_modules,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        fusion=plan.fusion,
        placement=plan.placement,
        fusion_options=plan.fusion_options,
        kernel=kernel,
    )
    hidden = int(base.config.hidden_size)
    heads = {t: TokenHead(hidden, HEAD_LABELS) for t in levels}
    cross = CrossLevelAttention(hidden, cfg.cross_level_heads) if plan.level1_route is not None else None
    model = MultiTaskModel(routed, heads, levels, 0, cross, plan.level1_route, cfg.detach_l1_for_l2)
    for module in (model.heads, model.cross_level):
        if module is not None:
            module.to(device)
    return model


@dataclass
class StepRecord:
    """What the last step of a loss strategy left, for the per-task gradient memory check."""

    per_task_bytes: dict[str, int]


def mtpeft_step(
    model: MultiTaskModel,
    batches: Sequence[MultiTaskBatch],
    strategy: LossStrategy,
    phases: dict[str, float],
    record: StepRecord | None = None,
) -> Callable[[], int]:
    """The trainer's step over ``batches`` (several: a loop over per-task sub-batches, one backward each)."""
    shared = model.shared_parameters()
    shared_ids = {id(p) for p in shared}
    others = [p for p in model.trainable_parameters() if id(p) not in shared_ids]
    optimizer = torch.optim.AdamW(model.trainable_parameters())
    tokens = sum(b.num_tokens for b in batches)

    def step() -> int:
        model.train()
        optimizer.zero_grad(set_to_none=True)
        forward = backward = 0.0
        for batch in batches:
            t0 = time.perf_counter()
            losses = model(batch).losses
            t1 = time.perf_counter()
            strategy.backward(losses, shared, others)
            forward, backward = forward + t1 - t0, backward + time.perf_counter() - t1
        gradients = strategy.finish(shared)
        optimizer.step()
        phases.update(forward=forward, backward=backward)
        if record is not None and gradients.per_task_gradients:
            record.per_task_bytes = {t: g.numel() * g.element_size() for t, g in gradients.per_task_gradients.items()}
        return tokens

    return step


def strategy_for(name: str, tasks: Sequence[str]) -> LossStrategy:
    return build_loss_strategy(name, list(tasks), seed=0)


# ---------------------------------------------------------------------------------- evaluation


def predict_step(model: MultiTaskModel, inputs: Inputs, batch_size: int) -> Callable[[], int]:
    """``mtpeft``'s prediction path (collate, routed forward, head, decode) over single-task windows."""
    task = inputs.features[0].task

    def step() -> int:
        predict_features(model, task, inputs.features, batch_size=batch_size, packing=False)  # the bare forward's batches
        return inputs.tokens

    return step


def bare_forward_step(base: nn.Module, inputs: Inputs, batch_size: int) -> Callable[[], int]:
    """A forward of ``base`` (the frozen backbone, or a PEFT model) over the same tokens and
    batches, without gradients."""

    def step() -> int:
        base.eval()
        with torch.no_grad():
            for start in range(0, inputs.input_ids.shape[0], batch_size):
                rows = slice(start, start + batch_size)
                base(input_ids=inputs.input_ids[rows], attention_mask=inputs.attention_mask[rows])
        return inputs.tokens

    return step


def tensor_bytes(params: Sequence[Tensor]) -> int:
    return sum(p.numel() * p.element_size() for p in params)


def first_level1_task(levels: dict[str, int]) -> str:
    return next(t for t, level in levels.items() if level == 1)


def gradient_memory(record: StepRecord, shared: Sequence[Tensor]) -> dict[str, int]:
    """Bytes of each kept per-task gradient against the bytes of the shared trainable parameters."""
    return {"per_task_bytes": dict(record.per_task_bytes), "shared_parameter_bytes": tensor_bytes(shared)}

