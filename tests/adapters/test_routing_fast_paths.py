"""The router's fast paths (rank-level scaling and gate, one matmul per row block, split inputs,
in-place accumulation without autograd; the fused kernel's autograd function) against a row-by-row
reference written from the definition: ``out_i = W x_i + fusion(S_i, P_i)`` on fused rows,
``+ S_i + P_i`` elsewhere. Every test runs on both kernels unless its name says which."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from peft.tuners.lora import LoraLayer

from mtpeft.adapters.lora_dropout import draw_seed, dropout_mask
from mtpeft.adapters.model import MultiAdapterBackbone, Route
from mtpeft.adapters.routing import RoutingPlan, fusion_key
from mtpeft.backbone import tiny_llama

ADAPTERS = {"shared": 4, "private_a": 3, "private_b": 2}
ROUTES = {
    "a": Route(shared=("shared",), private="private_a"),
    "b": Route(shared=("shared",), private="private_b"),
    "c": Route(shared=("shared",)),  # shared only: never fused
    "d": Route(private="private_a"),  # private only: never fused
}
ROW_TASKS = {
    "grouped": ["c", "b", "b", "a", "a", "d"],  # all slices: one matmul per row block; fused rows 1-4
    "interleaved": ["a", "b", "a", "c", "d", "b"],  # index rows: index_add
    "single": ["a"] * 6,  # every adapter on every row
}
FUSIONS = [("sum", "layer"), ("gated", "layer"), ("attention", "layer"), ("gated", "output")]

Dropout = Callable[[LoraLayer, torch.Tensor, RoutingPlan], torch.Tensor]


def _model(fusion: str, placement: str, lora_dropout: float = 0.0, kernel: str = "fused") -> MultiAdapterBackbone:
    torch.manual_seed(0)  # LoRA A is initialised from the global generator
    model = MultiAdapterBackbone(
        tiny_llama(0), ADAPTERS, ROUTES, fusion=fusion, placement=placement, lora_dropout=lora_dropout, kernel=kernel
    ).double()
    generator = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name or name.startswith(("layer_fusions", "output_fusion")):
                param.add_(torch.randn(param.shape, generator=generator, dtype=param.dtype) * 0.1)
    return model


def peft_dropout(layer: LoraLayer, x: torch.Tensor, plan: RoutingPlan) -> torch.Tensor:
    """The PEFT kernel's draw: the first adapter's ``nn.Dropout`` over the whole batch."""
    return layer.lora_dropout[next(iter({**plan.shared, **plan.private}))](x)


def fused_dropout(layer: LoraLayer, x: torch.Tensor, plan: RoutingPlan) -> torch.Tensor:
    """The fused kernel's draw: one seed from the default generator per projection, its mask."""
    p = layer.lora_dropout[next(iter({**plan.shared, **plan.private}))].p
    return x * dropout_mask(x.shape, p, draw_seed(), plan.tied_halves, x.dtype)


DROPOUTS: dict[str, Dropout] = {"peft": peft_dropout, "fused": fused_dropout}


def _rowwise_reference(model: MultiAdapterBackbone, dropout: Dropout | None = None):
    """Replace the router's kernels by hooks that apply the active plan one row at a time; with
    ``dropout``, every adapter reads one dropped-out copy of the input drawn by it."""
    model.router.remove()

    def rows_of(rows, batch_size):
        return set(range(batch_size)[rows]) if isinstance(rows, slice) else set(rows.tolist())

    def make(name):
        fusion = model.layer_fusions[fusion_key(name)] if model.layer_fusions is not None else None

        def hook(layer: LoraLayer, args, kwargs):
            plan = model.router.active_plan
            x = args[0]
            dropped = dropout(layer, x, plan) if dropout is not None else x
            out = []
            for i in range(x.shape[0]):
                xi, fused = x[i], plan.fuse_rows is not None and i in rows_of(plan.fuse_rows, plan.batch_size)
                deltas = {}
                for kind, groups in (("shared", plan.shared), ("private", plan.private)):
                    for adapter, rows in groups.items():
                        if i in rows_of(rows, plan.batch_size):
                            lora = layer.lora_B[adapter](layer.lora_A[adapter](dropped[i])) * layer.scaling[adapter]
                            deltas[kind] = deltas[kind] + lora if kind in deltas else lora
                delta = sum(deltas.values())
                if fused and fusion is not None and len(deltas) == 2:
                    delta = fusion(deltas["shared"], deltas["private"])
                out.append(layer.base_layer(xi) + delta)
            return torch.stack(out)

        return hook

    def base_only(layer, args, kwargs):  # PEFT's own adapters off: no dropout draws of its own
        return args, {**kwargs, "adapter_names": ["__base__"] * args[0].shape[0]}

    for name, module in model.inner_model.named_modules():
        if isinstance(module, LoraLayer):
            module.register_forward_pre_hook(base_only, with_kwargs=True)
            module.register_forward_hook(lambda m, a, k, o, h=make(name): h(m, a, k), with_kwargs=True)


def _forward_and_grads(model, input_ids, tasks):
    model.zero_grad(set_to_none=True)
    out = model(input_ids, tasks=tasks)
    weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(6), dtype=out.dtype)
    (out * weights).sum().backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return out.detach(), grads


def _assert_same(out, grads, expected, expected_grads, msg=""):
    torch.testing.assert_close(out, expected, atol=1e-10, rtol=1e-9, msg=msg)
    assert grads.keys() == expected_grads.keys()
    for name in grads:
        torch.testing.assert_close(grads[name], expected_grads[name], atol=1e-10, rtol=1e-9, msg=f"{msg} {name}")


@pytest.mark.parametrize("fusion,placement", FUSIONS)
@pytest.mark.parametrize("pattern", sorted(ROW_TASKS))
def test_routed_forward_and_gradients_match_the_rowwise_definition(fusion, placement, pattern, input_ids, kernel):
    tasks = ROW_TASKS[pattern]
    fast = _model(fusion, placement, kernel=kernel)
    reference = _model(fusion, placement, kernel=kernel)
    _rowwise_reference(reference)
    _assert_same(*_forward_and_grads(fast, input_ids, tasks), *_forward_and_grads(reference, input_ids, tasks))


@pytest.mark.parametrize("fusion,placement", FUSIONS)
@pytest.mark.parametrize("pattern", sorted(ROW_TASKS))
def test_forward_without_autograd_accumulates_in_place_to_the_same_output(fusion, placement, pattern, input_ids,
                                                                           kernel):
    model = _model(fusion, placement, kernel=kernel).eval()
    tasks = ROW_TASKS[pattern]
    with_grad = model(input_ids, tasks=tasks)
    with torch.no_grad():
        without = model(input_ids, tasks=tasks)
    with torch.inference_mode():
        inference = model(input_ids, tasks=tasks)
    torch.testing.assert_close(without, with_grad.detach(), atol=1e-10, rtol=1e-9)
    torch.testing.assert_close(inference, with_grad.detach(), atol=1e-10, rtol=1e-9)


def test_peft_kernel_draws_one_mask_per_projection_by_its_first_adapter(input_ids):
    """The PEFT kernel draws with the first adapter's (plan order: the shared one) ``nn.Dropout``,
    once per projection, over the whole batch."""
    fast = _model("gated", "layer", lora_dropout=0.3, kernel="peft").train()
    layer = next(m for m in fast.inner_model.modules() if isinstance(m, LoraLayer))
    calls = []
    for adapter in ADAPTERS:
        record = lambda module, args, output, name=adapter: calls.append((name, args[0].shape[0]))  # noqa: E731
        layer.lora_dropout[adapter].register_forward_hook(record)
    fast(input_ids, tasks=ROW_TASKS["grouped"])
    assert calls == [("shared", 6)]


def test_dropout_draws_one_mask_per_projection_shared_by_the_adapters_of_a_row(input_ids, kernel):
    """One mask per projection over the whole batch, read by every adapter of every row, fixed by
    the seed: the reference draws the same mask from the same seed (each kernel's own stream) and
    applies each adapter to its rows of the dropped input."""
    fast = _model("gated", "layer", lora_dropout=0.3, kernel=kernel).train()
    torch.manual_seed(0)
    first = fast(input_ids, tasks=ROW_TASKS["grouped"])
    torch.manual_seed(0)
    torch.testing.assert_close(fast(input_ids, tasks=ROW_TASKS["grouped"]), first, atol=0, rtol=0)
    torch.manual_seed(1)
    assert not torch.equal(fast(input_ids, tasks=ROW_TASKS["grouped"]), first)

    reference = _model("gated", "layer", lora_dropout=0.3, kernel=kernel).train()
    _rowwise_reference(reference, DROPOUTS[kernel])
    for pattern, tasks in ROW_TASKS.items():
        torch.manual_seed(3)
        out, grads = _forward_and_grads(fast, input_ids, tasks)
        torch.manual_seed(3)
        _assert_same(out, grads, *_forward_and_grads(reference, input_ids, tasks), msg=pattern)


def test_peft_kernel_output_placement_copies_of_an_example_share_their_dropout_mask(input_ids):
    """At ``output`` placement row i (shared pass) and row i + B (private pass) are the same example:
    one mask over B rows, applied to both copies, though their hidden states differ."""
    model = _model("gated", "output", lora_dropout=0.5, kernel="peft").train()
    layer = [m for m in model.inner_model.modules() if isinstance(m, LoraLayer)][-1]  # last layer: copies differ
    seen = {}
    for adapter in ("shared", "private_a"):
        def record(module, args, output, name=adapter):
            seen.setdefault(name, args[0].detach())

        layer.lora_A[adapter].register_forward_hook(record)
    model(input_ids, tasks=ROW_TASKS["single"])
    shared, private = seen["shared"], seen["private_a"]
    assert shared.shape == private.shape and not torch.equal(shared, private)
    dropped = shared == 0
    assert 0.3 < dropped.double().mean() < 0.7
    assert torch.equal(dropped, private == 0)


def test_fused_kernel_output_placement_copies_of_an_example_share_their_dropout_mask(input_ids):
    """The fused kernel's tied masks: ``[m; m]`` over the doubled batch, checked against the rowwise
    reference applying exactly that mask (an untied draw would give other outputs)."""
    mask = dropout_mask((4, 3, 5), 0.5, seed=7, tied_halves=True)
    assert torch.equal(mask[:2], mask[2:]) and 0 < (mask == 0).sum() < mask.numel()
    fast = _model("gated", "output", lora_dropout=0.5).train()
    reference = _model("gated", "output", lora_dropout=0.5).train()
    _rowwise_reference(reference, fused_dropout)
    for pattern in ("single", "interleaved"):
        torch.manual_seed(5)
        out, grads = _forward_and_grads(fast, input_ids, ROW_TASKS[pattern])
        torch.manual_seed(5)
        _assert_same(out, grads, *_forward_and_grads(reference, input_ids, ROW_TASKS[pattern]), msg=pattern)
