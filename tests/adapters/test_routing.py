"""Per-row routing: mixed batches equal per-task sub-batches; gradients reach only what they should.

Every test runs on both kernels (the ``kernel`` fixture of ``conftest.py``)."""

from __future__ import annotations

import pytest
import torch

from tests.adapters.conftest import TASKS, build

VARIANTS = [("sum", "layer"), ("gated", "layer"), ("attention", "layer"), ("gated", "output"), ("attention", "output")]
MIXED = ["a", "b", "a", "c", "b", "a"]  # deliberately not grouped by task


def _perturb_fusions(model) -> None:
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for param in model.fusion_parameters().values():
            param.add_(torch.randn(param.shape, generator=generator) * 0.1)


@pytest.mark.parametrize("fusion,placement", VARIANTS)
def test_zero_initialised_b_leaves_outputs_unchanged(fusion, placement, input_ids, kernel):
    if (fusion, placement) == ("sum", "output"):
        pytest.skip("sum at output placement adds two copies of the representation by definition")
    model = build(fusion, placement, randomize=False, kernel=kernel)
    base = model.inner_model
    with model.peft_model.disable_adapter():
        expected = base(input_ids=input_ids).last_hidden_state
    torch.testing.assert_close(model(input_ids, tasks=MIXED), expected)


@pytest.mark.parametrize("fusion,placement", VARIANTS)
def test_mixed_batch_equals_per_task_sub_batches(fusion, placement, input_ids, kernel):
    # float64: a routing error shows at full size, while float32 summation-order noise
    # (about 1e-7 relative, on gradients of magnitude ~100) does not blur the 1e-5 criterion.
    model = build(fusion, placement, kernel=kernel).double()
    _perturb_fusions(model)
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}

    mixed_out = model(input_ids, tasks=MIXED)
    weights = torch.randn(mixed_out.shape, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    (mixed_out * weights).sum().backward()
    mixed_grads = {n: p.grad.clone() for n, p in params.items() if p.grad is not None}
    model.zero_grad(set_to_none=True)

    sub_out = torch.empty_like(mixed_out)
    for task in TASKS:
        rows = torch.tensor([i for i, t in enumerate(MIXED) if t == task])
        out = model(input_ids[rows], tasks=[task] * len(rows))
        sub_out[rows] = out.detach()
        (out * weights[rows]).sum().backward()  # gradients accumulate over the sub-batches
    sub_grads = {n: p.grad for n, p in params.items() if p.grad is not None}

    torch.testing.assert_close(mixed_out.detach(), sub_out, atol=1e-5, rtol=1e-5)
    assert mixed_grads.keys() == sub_grads.keys()
    for name in mixed_grads:
        torch.testing.assert_close(mixed_grads[name], sub_grads[name], atol=1e-5, rtol=1e-5, msg=name)


@pytest.mark.parametrize("fusion,placement", VARIANTS)
def test_only_adapters_and_fusion_get_gradients(fusion, placement, input_ids, kernel):
    model = build(fusion, placement, kernel=kernel)
    model(input_ids, tasks=MIXED).pow(2).mean().backward()
    for name, param in model.named_parameters():
        if "lora_" in name or name.startswith(("layer_fusions", "output_fusion")):
            assert param.requires_grad, name
        else:
            assert not param.requires_grad and param.grad is None, name
    assert all(p.grad is not None for p in model.adapter_parameters("shared").values())


@pytest.mark.parametrize("placement", ["layer", "output"])
def test_other_private_adapters_get_exactly_zero_gradient(placement, input_ids, kernel):
    model = build("gated", placement, kernel=kernel)
    model(input_ids, tasks=["a"] * len(input_ids)).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.adapter_parameters("private_a").values())
    for task in ("b", "c"):
        for name, param in model.adapter_parameters(f"private_{task}").items():
            assert param.grad is None or torch.count_nonzero(param.grad) == 0, name


def test_adamw_step_on_task_a_leaves_task_b_bit_identical(input_ids, kernel):
    model = build("gated", "layer", kernel=kernel)
    before = {n: p.detach().clone() for n, p in model.adapter_parameters("private_b").items()}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2, weight_decay=0.1)
    for _ in range(3):
        optimizer.zero_grad(set_to_none=True)
        model(input_ids, tasks=["a"] * len(input_ids)).pow(2).mean().backward()
        optimizer.step()
    for name, param in model.adapter_parameters("private_b").items():
        assert torch.equal(param, before[name]), name
    changed = model.adapter_parameters("private_a")
    assert any(not torch.equal(p, before_p) for p, before_p in zip(changed.values(), before.values()))


def test_routing_without_plan_is_plain_peft(input_ids, kernel):
    """Outside a routed forward, the PEFT model behaves as PEFT: all active adapters summed."""
    model = build("sum", "layer", kernel=kernel)
    routed = model(input_ids, tasks=["a"] * len(input_ids))
    model.peft_model.base_model.set_adapter(["shared", "private_a"])
    plain = model.inner_model(input_ids=input_ids).last_hidden_state
    torch.testing.assert_close(routed, plain, atol=1e-5, rtol=1e-5)


def test_layer_gated_with_identical_adapters_reduces_to_plain_lora(input_ids, kernel):
    """With the private adapter a copy of the shared one, any gate gives plain single-adapter LoRA."""
    from mtpeft.adapters.model import MultiAdapterBackbone, Route
    from mtpeft.backbone import tiny_llama

    model = MultiAdapterBackbone(
        tiny_llama(0), {"shared": 8, "private_a": 8}, {"a": Route(("shared",), "private_a")},
        fusion="gated", placement="layer", lora_dropout=0.0, kernel=kernel,
    )
    shared, private = model.adapter_parameters("shared"), model.adapter_parameters("private_a")
    generator = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for (name, p), q in zip(sorted(shared.items()), [private[n.replace(".shared.", ".private_a.")] for n in sorted(shared)]):
            p.copy_(torch.randn(p.shape, generator=generator) * 0.05)
            q.copy_(p)
        for p in model.fusion_parameters().values():
            p.copy_(torch.randn(p.shape, generator=generator))
    fused = model(input_ids, tasks=["a"] * len(input_ids))
    model.peft_model.base_model.set_adapter("shared")
    plain = model.inner_model(input_ids=input_ids).last_hidden_state
    torch.testing.assert_close(fused, plain, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("fusion,placement", [("gated", "layer"), ("gated", "output")])
def test_mixed_batch_outputs_match_in_float32(fusion, placement, input_ids, kernel):
    model = build(fusion, placement, kernel=kernel)
    mixed = model(input_ids, tasks=MIXED)
    for task in TASKS:
        rows = torch.tensor([i for i, t in enumerate(MIXED) if t == task])
        torch.testing.assert_close(mixed[rows], model(input_ids[rows], tasks=[task] * len(rows)), atol=1e-5, rtol=1e-5)
