"""Backbone sources: tiny, named configs on meta, local folders, the embedded model (slow)."""

from __future__ import annotations

import pytest
import torch

from mtpeft.backbone import (
    NAMED_CONFIGS,
    load_backbone,
    meta_model,
    named_config,
    tiny_llama,
)
from mtpeft.errors import ConfigError


def test_tiny_is_seeded_and_does_not_disturb_global_rng():
    state = torch.random.get_rng_state()
    a, b, c = tiny_llama(0), tiny_llama(0), tiny_llama(1)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.embed_tokens.weight, c.embed_tokens.weight)
    names = {n.rsplit(".", 1)[-1] for n, _ in a.named_modules()}
    assert {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"} <= names


@pytest.mark.parametrize(
    "name,expected",
    # Published totals of the base models without the LM head (tied in 1B/3B; untied 8B head excluded).
    [("llama-3.2-1b", 1_235_814_400), ("llama-3.2-3b", 3_212_749_824), ("llama-3.1-8b", 7_504_924_672)],
)
def test_named_configs_on_meta_have_the_real_sizes(name, expected):
    model = meta_model(name)
    assert all(p.device.type == "meta" for p in model.parameters())
    assert sum(p.numel() for p in model.parameters()) == expected


def test_named_config_3b_shapes():
    config = named_config("llama-3.2-3b")
    assert (config.hidden_size, config.intermediate_size, config.num_key_value_heads, config.head_dim) == (3072, 8192, 8, 128)
    assert set(NAMED_CONFIGS) == {"llama-3.2-1b", "llama-3.2-3b", "llama-3.1-8b"}


def test_local_folder_round_trip(tmp_path):
    tiny_llama(3).save_pretrained(tmp_path, safe_serialization=True)
    loaded = load_backbone(str(tmp_path), with_tokenizer=False)
    assert all(torch.equal(p, q) for p, q in zip(loaded.model.parameters(), tiny_llama(3).parameters()))
    assert not any(p.requires_grad for p in loaded.model.parameters())


def test_folder_without_weights_is_a_clear_error(tmp_path):
    tiny_llama(0).config.save_pretrained(tmp_path)
    with pytest.raises(ConfigError, match=r"has no \*\.safetensors weights.*config\.json"):
        load_backbone(str(tmp_path), with_tokenizer=False)


def test_unknown_model_name_lists_choices():
    with pytest.raises(ConfigError, match="valid choices: embedded, tiny, llama-3.1-8b"):
        load_backbone("llama-9b")


@pytest.mark.slow
def test_embedded_is_cached_and_not_dequantised_twice(tmp_path, monkeypatch):
    import transformers

    first = load_backbone("embedded", cache_dir=tmp_path)
    assert (tmp_path / "smollm2-135m-instruct" / "model.safetensors").is_file()
    assert first.hidden_size == 576 and first.tokenizer is not None

    original = transformers.AutoModel.from_pretrained

    def refuse_gguf(*args, **kwargs):
        assert "gguf_file" not in kwargs, "second load must read the safetensors cache, not the GGUF"
        return original(*args, **kwargs)

    monkeypatch.setattr("mtpeft.backbone.loading.AutoModel.from_pretrained", refuse_gguf)
    second = load_backbone("embedded", cache_dir=tmp_path)
    ids = torch.tensor([[1, 2, 3, 4]])
    torch.testing.assert_close(first.model(ids).last_hidden_state, second.model(ids).last_hidden_state)


def test_tiny_in_4bit_routes_through_bitsandbytes_layers():
    import bitsandbytes as bnb

    from mtpeft.adapters.model import MultiAdapterBackbone, Route

    backbone = load_backbone("tiny", load_in_4bit=True, with_tokenizer=False)
    assert isinstance(backbone.model.layers[0].self_attn.q_proj, bnb.nn.Linear4bit)
    model = MultiAdapterBackbone(backbone.model, {"shared": 4, "private_a": 2}, {"a": Route(("shared",), "private_a")}, fusion="gated")
    out = model(torch.randint(0, 100, (2, 5)), tasks=["a", "a"])
    out.pow(2).mean().backward()
    assert all(p.grad is not None for p in model.adapter_parameters("private_a").values())
