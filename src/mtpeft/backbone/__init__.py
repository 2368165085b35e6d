"""Frozen Llama-family backbones: embedded SmolLM2, local folders, named configs, tiny random."""

from mtpeft.backbone.loading import (
    EMBEDDED,
    NAMED_CONFIGS,
    TINY,
    Backbone,
    embedded_model_dir,
    load_backbone,
    load_tokenizer,
    meta_model,
    named_config,
    tiny_llama,
    tiny_llama_config,
    valid_backbone_names,
)

__all__ = [
    "EMBEDDED",
    "NAMED_CONFIGS",
    "TINY",
    "Backbone",
    "embedded_model_dir",
    "load_backbone",
    "load_tokenizer",
    "meta_model",
    "named_config",
    "tiny_llama",
    "tiny_llama_config",
    "valid_backbone_names",
]
