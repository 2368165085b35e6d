"""Adapters save in PEFT's own format and reload with plain ``peft`` giving identical outputs."""

from __future__ import annotations

import torch
from peft import PeftModel

from mtpeft.backbone import tiny_llama
from tests.adapters.conftest import build


def test_shared_plus_private_reload_with_plain_peft(tmp_path, input_ids):
    model = build("sum", "layer")
    expected = model(input_ids, tasks=["b"] * len(input_ids))
    model.save_adapters(tmp_path)

    plain = PeftModel.from_pretrained(tiny_llama(0), tmp_path / "shared", adapter_name="shared")
    plain.load_adapter(tmp_path / "private_b", adapter_name="private_b")
    plain.base_model.set_adapter(["shared", "private_b"])
    got = plain.base_model.model(input_ids=input_ids).last_hidden_state
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_output_placement_shared_pass_reloads_with_plain_peft(tmp_path, input_ids):
    """At output placement the shared-only representation is exactly PEFT with the shared adapter."""
    model = build("gated", "output")
    b = len(input_ids)
    captured = {}
    handle = model.inner_model.register_forward_hook(lambda m, a, k, out: captured.update(h=out.last_hidden_state), with_kwargs=True)
    model(input_ids, tasks=["a"] * b)
    handle.remove()
    model.save_adapters(tmp_path)
    plain = PeftModel.from_pretrained(tiny_llama(0), tmp_path / "shared", adapter_name="shared")
    torch.testing.assert_close(plain.base_model.model(input_ids=input_ids).last_hidden_state, captured["h"][:b], atol=1e-5, rtol=1e-5)
    plain = PeftModel.from_pretrained(tiny_llama(0), tmp_path / "private_a", adapter_name="private_a")
    torch.testing.assert_close(plain.base_model.model(input_ids=input_ids).last_hidden_state, captured["h"][b:], atol=1e-5, rtol=1e-5)


def test_fused_model_round_trips_through_save_adapters(tmp_path, input_ids):
    model = build("attention", "layer")
    with torch.no_grad():
        for p in model.fusion_parameters().values():
            p.add_(0.1)
    expected = model(input_ids, tasks=["a", "b", "c", "a", "b", "c"])
    model.save_adapters(tmp_path)
    fresh = build("attention", "layer", randomize=False)
    fresh.load_adapters(tmp_path)
    torch.testing.assert_close(fresh(input_ids, tasks=["a", "b", "c", "a", "b", "c"]), expected)
    assert (tmp_path / "mtpeft_adapters.json").is_file()
    assert (tmp_path / "fusion.safetensors").is_file()
