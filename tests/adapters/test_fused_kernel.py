"""The fused kernel against the PEFT kernel, in float64, with the same LoRA dropout masks.

The PEFT kernel's dropout modules are replaced by ``nn.Dropout`` subclasses that draw the fused
kernel's masks (one seed from the default generator per projection, as the fused kernel draws), so
both kernels see identical masks and must give identical outputs and gradients: every placement and
fusion, slice and index rows, one PCGrad step, a non-``nn.Linear`` base layer (the 4-bit path), and
bf16 autocast. Also: the function's gradients by ``gradcheck``, what it saves for the backward, and
the kernel's bad input.
"""

from __future__ import annotations

import logging

import pytest
import torch
from peft import LoraConfig, get_peft_model
from peft.tuners.lora import LoraLayer
from torch import nn

from mtpeft.adapters import fused
from mtpeft.adapters.fused_layout import constants_for, layout_for
from mtpeft.adapters.lora_dropout import draw_seed, dropout_mask, dropout_positions, drop_positions
from mtpeft.adapters.model import MultiAdapterBackbone, Route
from mtpeft.adapters.routing import AdapterRouter, RoutingPlan
from mtpeft.backbone import tiny_llama
from mtpeft.config import config_from_dict
from mtpeft.errors import ConfigError
from mtpeft.training.weighting import build_loss_strategy

ADAPTERS = {"shared": 4, "private_a": 3, "private_b": 2}
ROUTES = {
    "a": Route(shared=("shared",), private="private_a"),
    "b": Route(shared=("shared",), private="private_b"),
    "c": Route(shared=("shared",)),
    "d": Route(private="private_a"),
}
ROWS = {
    "slices": ["c", "b", "b", "a", "a", "d"],
    "index": ["a", "b", "a", "c", "d", "b"],
    "single": ["a"] * 6,
}
PLACEMENTS = [("sum", "layer"), ("gated", "layer"), ("attention", "layer"), ("gated", "output"),
              ("attention", "output")]
P = 0.3


class FusedStreamDropout(nn.Dropout):
    """``nn.Dropout`` drawing the fused kernel's mask: one seed per call, its positions."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        return x * dropout_mask(x.shape, self.p, draw_seed(), dtype=x.dtype)


def _model(fusion: str, placement: str, kernel: str, p: float = P) -> MultiAdapterBackbone:
    torch.manual_seed(0)
    model = MultiAdapterBackbone(tiny_llama(0), ADAPTERS, ROUTES, fusion=fusion, placement=placement, lora_dropout=p,
                                 kernel=kernel).double()
    generator = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name or name.startswith(("layer_fusions", "output_fusion")):
                param.add_(torch.randn(param.shape, generator=generator, dtype=param.dtype) * 0.1)
    if kernel == "peft":
        for layer in model.inner_model.modules():
            if isinstance(layer, LoraLayer):
                for name in list(layer.lora_dropout):
                    layer.lora_dropout[name] = FusedStreamDropout(p)
    return model.train()


def _run(model, input_ids, tasks, seed=3):
    model.zero_grad(set_to_none=True)
    torch.manual_seed(seed)
    out = model(input_ids, tasks=tasks)
    weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(6), dtype=out.dtype)
    (out * weights).sum().backward()
    return out.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def _assert_same(got, expected):
    (out, grads), (out_ref, grads_ref) = got, expected
    torch.testing.assert_close(out, out_ref, atol=1e-10, rtol=1e-9)
    assert grads.keys() == grads_ref.keys()
    for name in grads:
        torch.testing.assert_close(grads[name], grads_ref[name], atol=1e-10, rtol=1e-9, msg=name)


@pytest.mark.parametrize("fusion,placement", PLACEMENTS)
@pytest.mark.parametrize("rows", sorted(ROWS))
def test_fused_equals_peft_kernel_with_the_same_dropout_masks(fusion, placement, rows, input_ids):
    fast, reference = _model(fusion, placement, "fused"), _model(fusion, placement, "peft")
    _assert_same(_run(fast, input_ids, ROWS[rows]), _run(reference, input_ids, ROWS[rows]))


def test_one_pcgrad_step_is_the_same_on_both_kernels(input_ids):
    tasks = ROWS["slices"]
    params = {}
    for kernel in ("fused", "peft"):
        model = _model("gated", "layer", kernel)
        shared = [*model.adapter_parameters("shared").values(), *model.fusion_parameters().values()]
        others = [p for name in ("private_a", "private_b") for p in model.adapter_parameters(name).values()]
        optimizer = torch.optim.AdamW([*shared, *others], lr=1e-2)
        strategy = build_loss_strategy("pcgrad", sorted(set(tasks)), seed=0)
        torch.manual_seed(3)
        out = model(input_ids, tasks=tasks)
        weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(6), dtype=out.dtype)
        losses = {t: (out[[i for i, r in enumerate(tasks) if r == t]] * weights[[i for i, r in enumerate(tasks)
                                                                                  if r == t]]).sum()
                  for t in sorted(set(tasks))}
        strategy.backward(losses, shared, others)
        strategy.finish(shared)
        optimizer.step()
        params[kernel] = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    for name, value in params["fused"].items():
        torch.testing.assert_close(value, params["peft"][name], atol=1e-10, rtol=1e-9, msg=name)


class OpaqueLinear(nn.Linear):
    """A base layer that is not a plain ``nn.Linear`` (as bitsandbytes' 4-bit layers): the fused
    kernel calls it for the frozen output instead of reading its weight."""


@pytest.mark.parametrize("fusion", ["gated", "attention"])
def test_a_base_layer_the_kernel_cannot_read_is_called_and_stays_exact(fusion, input_ids):
    fast, reference = _model(fusion, "layer", "fused"), _model(fusion, "layer", "peft")
    for model in (fast, reference):
        for layer in model.inner_model.modules():
            if isinstance(layer, LoraLayer):
                layer.base_layer.__class__ = OpaqueLinear
    _assert_same(_run(fast, input_ids, ROWS["index"]), _run(reference, input_ids, ROWS["index"]))


def test_bf16_autocast_agrees_with_the_peft_kernel(input_ids):
    results = {}
    for kernel in ("fused", "peft"):
        model = _model("gated", "layer", kernel, p=0.0).float()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(input_ids, tasks=ROWS["slices"])
        out.float().pow(2).mean().backward()
        results[kernel] = out.float().detach(), {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    (out, grads), (out_ref, grads_ref) = results["fused"], results["peft"]
    torch.testing.assert_close(out, out_ref, atol=3e-2, rtol=3e-2)
    assert grads.keys() == grads_ref.keys()
    for name in grads:
        assert grads[name].dtype == torch.float32
        cosine = torch.nn.functional.cosine_similarity(grads[name].flatten(), grads_ref[name].flatten(), dim=0)
        assert cosine > 0.99, name


def test_the_autograd_function_passes_gradcheck():
    """Gradients of x, A, B and the gate by finite differences, with dropout (the seed fixed per call),
    a gated group, a shared-only slice and an index-row group."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 4)).double()
    model = get_peft_model(net, LoraConfig(r=2, target_modules=["0"], lora_dropout=0.4), adapter_name="s")
    model.add_adapter("p", LoraConfig(r=3, target_modules=["0"], lora_dropout=0.4))
    layer = model.base_model.model[0]
    layer.double().train()
    plan = RoutingPlan(4, shared={"s": slice(0, 4)}, private={"p": torch.tensor([0, 2])}, fuse_rows=torch.tensor([0]))
    layout = layout_for(plan, {"s", "p"}, gated=True)
    assert [g.gated for g in layout.groups] == [True, False, False]
    ranks, factors = (2, 3), tuple(layer.scaling[n] / 0.6 for n in ("s", "p"))
    call = fused._Call(layout, constants_for(layout, ranks, factors, torch.float64, torch.device("cpu")), 0.4,
                       seed=11, rank_only=False, base_dtype=torch.float64, lora_dtype=torch.float64, autocast=False)
    weight = layer.base_layer.weight.detach()
    inputs = [torch.randn(4, 3, 5, dtype=torch.float64), torch.randn(1, 8, dtype=torch.float64),
              torch.randn(1, dtype=torch.float64), torch.randn(2, 5, dtype=torch.float64),
              torch.randn(3, 5, dtype=torch.float64), torch.randn(4, 2, dtype=torch.float64),
              torch.randn(4, 3, dtype=torch.float64)]
    inputs = [t.requires_grad_() for t in inputs]

    def function(x, gate_w, gate_b, a_s, a_p, b_s, b_p):
        return fused._FusedProjection.apply(call, x, weight, None, None, gate_w, gate_b, a_s, a_p, b_s, b_p)

    assert torch.autograd.gradcheck(function, inputs)


def test_only_inputs_weights_and_rank_level_tensors_are_saved(input_ids):
    """Each fused node keeps the projection input by reference, parameters, rank-level tensors and
    the int32 drop positions: no masked copy of the input, no (rows, out) delta."""
    model = _model("gated", "layer", "fused")
    inputs = []
    for layer in model.inner_model.modules():
        if isinstance(layer, LoraLayer):
            layer.register_forward_pre_hook(lambda m, args: inputs.append(args[0]))
    out = model(input_ids, tasks=ROWS["slices"])
    params = {p.data_ptr() for p in model.parameters()}
    input_storages = {t.untyped_storage().data_ptr() for t in inputs}
    nodes, stack, seen = [], [out.grad_fn], set()
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        if type(node).__name__ == "_FusedProjectionBackward":
            nodes.append(node)
        stack.extend(next_node for next_node, _ in node.next_functions)
    assert len(nodes) == sum(isinstance(m, LoraLayer) for m in model.inner_model.modules())
    total_rank = sum(ADAPTERS.values())
    for node in nodes:
        for tensor in node.saved_tensors:
            if tensor is None or tensor.data_ptr() in params:
                continue
            if tensor.untyped_storage().data_ptr() in input_storages:
                continue  # the projection's input itself, shared with the other readers
            # rank level: h (tokens, R), gates g (tokens,), u (R,)
            assert tensor.dim() <= 2 and tensor.numel() <= input_ids.numel() * total_rank, tuple(tensor.shape)
            assert tensor.dim() == 1 or tensor.shape[-1] <= total_rank, tuple(tensor.shape)
        assert node.positions.dtype == torch.int32
        assert 0 < node.positions.numel() < 0.6 * input_ids.numel() * model.config.intermediate_size


def test_drop_positions_have_the_bernoulli_law_and_do_not_depend_on_the_chunk():
    numel, p = 400_000, 0.05
    positions = dropout_positions(numel, p, seed=3)
    assert bool((positions[1:] > positions[:-1]).all()) and 0 <= int(positions[0]) and int(positions[-1]) < numel
    assert abs(len(positions) - numel * p) < 5 * (numel * p * (1 - p)) ** 0.5
    assert torch.equal(positions, dropout_positions(numel, p, seed=3, chunk=97))  # several rounds
    hits = torch.zeros(50)
    for seed in range(4000):  # every element is dropped with probability p
        hits[dropout_positions(50, 0.2, seed)] += 1
    assert (hits / 4000 - 0.2).abs().max() < 5 * (0.2 * 0.8 / 4000) ** 0.5
    tied = drop_positions((4, 3, 5), 0.5, seed=1, tied_halves=True)
    first, second = tied[tied < 30], tied[tied >= 30] - 30
    assert torch.equal(first, second)


# ------------------------------------------------------------------------------------ bad input


def test_unknown_kernel_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="unknown adapters.kernel 'triton'; valid choices: peft, fused"):
        MultiAdapterBackbone(tiny_llama(0), {"shared": 4}, {"a": Route(("shared",))}, kernel="triton")
    with pytest.raises(ConfigError, match=r"adapters\.kernel.*'peft' or 'fused'"):
        config_from_dict({"tasks": [{"id": "a"}], "adapters": {"kernel": "triton"}})
    assert config_from_dict({"tasks": [{"id": "a"}]}).adapters.kernel == "fused"


@pytest.mark.parametrize("option,feature", [({"use_dora": True}, "DoRA"), ({"lora_bias": True}, "lora_bias")])
@pytest.mark.parametrize("kernel", ["fused", "peft"])
def test_lora_variants_routing_cannot_apply_are_one_error_naming_adapter_and_feature(option, feature, kernel):
    model = get_peft_model(tiny_llama(0), LoraConfig(r=2, target_modules=["q_proj"], **option), adapter_name="mine")
    with pytest.raises(ConfigError, match=f"adapter 'mine' on .*q_proj: {feature}"):
        AdapterRouter(model.base_model.model, kernel=kernel)


def test_a_dropout_module_the_fused_kernel_cannot_draw_falls_back_to_the_peft_kernel_in_the_log(caplog, input_ids):
    model = get_peft_model(tiny_llama(0), LoraConfig(r=2, target_modules=["q_proj", "v_proj"], lora_dropout=0.1),
                           adapter_name="mine")
    inner = model.base_model.model
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.05, generator=torch.Generator().manual_seed(len(name)))
    q_proj = inner.layers[0].self_attn.q_proj
    q_proj.lora_dropout["mine"] = nn.AlphaDropout(0.1)
    with caplog.at_level(logging.WARNING, logger="mtpeft.adapters.routing"):
        router = AdapterRouter(inner, kernel="fused")
    assert router.peft_kernel_layers == ["layers.0.self_attn.q_proj"]
    assert "AlphaDropout, not nn.Dropout" in caplog.text and "uses the PEFT kernel" in caplog.text
    model.eval()
    plain = inner(input_ids=input_ids).last_hidden_state
    with router.route(RoutingPlan(len(input_ids), shared={"mine": slice(0, len(input_ids))})):
        routed = inner(input_ids=input_ids).last_hidden_state
    torch.testing.assert_close(routed, plain)


def test_a_4bit_backbone_gives_the_same_routed_outputs_and_gradients_on_both_kernels(input_ids):
    pytest.importorskip("bitsandbytes")
    from mtpeft.backbone import load_backbone

    results = {}
    for kernel in ("fused", "peft"):
        torch.manual_seed(0)
        backbone = load_backbone("tiny", load_in_4bit=True, with_tokenizer=False)
        model = MultiAdapterBackbone(backbone.model, ADAPTERS, ROUTES, fusion="gated", lora_dropout=P, kernel=kernel)
        for layer in model.inner_model.modules():
            if isinstance(layer, LoraLayer) and kernel == "peft":
                for name in list(layer.lora_dropout):
                    layer.lora_dropout[name] = FusedStreamDropout(P)
        with torch.no_grad():
            for name, param in model.named_parameters():
                if "lora_B" in name or name.startswith("layer_fusions"):
                    param.add_(torch.randn(param.shape, generator=torch.Generator().manual_seed(len(name))) * 0.1)
        results[kernel] = _run(model.train(), input_ids, ROWS["slices"])
    (out, grads), (out_ref, grads_ref) = results["fused"], results["peft"]
    torch.testing.assert_close(out, out_ref, atol=1e-5, rtol=1e-5)
    assert grads.keys() == grads_ref.keys()
    for name in grads:
        torch.testing.assert_close(grads[name], grads_ref[name], atol=1e-5, rtol=1e-4, msg=name)


def test_adapters_with_different_dropout_on_one_projection_take_the_peft_kernel(caplog):
    model = get_peft_model(tiny_llama(0), LoraConfig(r=2, target_modules=["q_proj"], lora_dropout=0.1),
                           adapter_name="one")
    model.add_adapter("two", LoraConfig(r=2, target_modules=["q_proj"], lora_dropout=0.0))
    with caplog.at_level(logging.WARNING, logger="mtpeft.adapters.routing"):
        router = AdapterRouter(model.base_model.model, kernel="fused")
    assert len(router.peft_kernel_layers) == len(router.layer_names) == 2
    assert "different LoRA dropout probabilities [0.0, 0.1]" in caplog.text
