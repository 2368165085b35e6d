"""Typed run configuration: YAML files plus dotted ``key=value`` overrides.

Every field is documented here; :func:`load_config` validates a file and names the offending
field on error. The resolved config is saved into each run's folder (``config.yaml``).
"""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mtpeft.errors import ConfigError

DEFAULT_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


_ENV_REFERENCE = re.compile(r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))")


def expand_env(value: str | None) -> str | None:
    """Expand ``$NAME``, ``${NAME}`` and ``${NAME:-default}`` in a config path (as a POSIX shell does).

    A variable that is unset (or empty) with no default is an error naming it: a path silently
    left as ``$MTPEFT_SHARED_DATA/...`` would only fail later, far from its cause. A ``$`` not
    followed by a name is kept as it is.
    """
    if value is None or "$" not in value:
        return value

    def replace(match: re.Match) -> str:
        name = match.group("braced") or match.group("bare")
        found = os.environ.get(name)
        if found:
            return found
        if match.group("default") is not None:
            return expand_env(match.group("default")) or ""
        raise ValueError(f"environment variable {name} is not set (in {value!r}); set it, "
                         f"or give a default as ${{{name}:-DEFAULT}}")

    return _ENV_REFERENCE.sub(replace, value)


class ModelConfig(_Strict):
    backbone: str = "embedded"
    """``embedded`` (SmolLM2-135M), ``tiny`` (random, tests), a named config or a local folder."""
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    load_in_4bit: bool = False
    """NF4 through bitsandbytes (set by strategy s5)."""
    cache_dir: str | None = None
    """Where the embedded model's safetensors copy is cached (default ``$MTPEFT_CACHE`` or ~/.cache/mtpeft)."""

    @field_validator("backbone", "cache_dir")
    @classmethod
    def _expand_paths(cls, path: str | None) -> str | None:
        return expand_env(path)


class StrategyConfig(_Strict):
    name: Literal["s1", "s2", "s3a", "s3b", "s4", "s5"] = "s3a"
    shared_rank: int = Field(16, ge=1)
    private_rank: int = Field(8, ge=1)
    """Rank of each private adapter (s3a), of each level adapter (s3b, s4)."""
    lora_alpha: float | None = None
    """``None``: 2 x rank for each adapter."""
    lora_dropout: float = Field(0.05, ge=0.0, lt=1.0)
    target_modules: list[str] = Field(default_factory=lambda: list(DEFAULT_TARGETS))
    fusion: str = "gated"
    """Fusion of shared and private (s3a, s3b, s5): gated | attention | sum."""
    placement: Literal["layer", "output"] = "layer"
    fusion_options: dict[str, Any] | None = None
    cross_level_heads: int = Field(4, ge=1)
    """s3b: heads of the level-2 -> level-1 cross attention."""
    detach_l1_for_l2: bool = True
    """s3b: level-2 losses do not reach level-1 parameters (the level-1 pass runs without a graph)."""
    freeze_level1: bool = True
    """s4: freeze the level-1 adapter while training level-2 tasks."""
    stage1_fraction: float = Field(0.5, gt=0.0, lt=1.0)
    """s4: fraction of max_steps spent on level-1 tasks."""
    architecture: Literal["s2", "s3a", "s3b"] = "s3a"
    """s5: the architecture run on the 4-bit backbone."""


class AdaptersConfig(_Strict):
    kernel: Literal["peft", "fused"] = "fused"
    """How routed LoRA projections are computed: ``fused`` (one autograd function per projection
    computes the frozen projection, the adapters, LoRA dropout and the gate) or ``peft`` (PEFT's own
    modules behind hooks, the reference). The same weights and files either way; the LoRA dropout
    masks come from different random streams (mtpeft.adapters.routing)."""


class SplitConfig(_Strict):
    """A reproducible document-level split of a task's ``train`` file into train and dev."""

    dev_fraction: float = Field(gt=0.0, lt=1.0)
    """Fraction of the documents (or groups) held out as dev, in (0, 1); rounded, at least one."""
    seed: int = 0
    """Which documents: a different seed gives a different split; the same seed, the same one everywhere."""
    group_pattern: str | None = None
    """Regular expression searched in each document id; documents with the same first group (or
    match) stay on one side, e.g. ``^(ID\\d+)_`` for THYME patients. None: each document alone."""

    @field_validator("group_pattern")
    @classmethod
    def _compiles(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as err:
                raise ValueError(f"not a regular expression: {err}") from None
        return pattern


class TaskConfig(_Strict):
    id: str
    """A registered task id (``semeval2014t7`` ...) or a name for a generic task."""
    train: str | None = None
    dev: str | None = None
    test: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    """Task constructor arguments (max_length, stride, window, ...); for generic tasks also format and head."""
    head_options: dict[str, Any] = Field(default_factory=dict)
    lenient: bool = False
    """Skip (and count) malformed records instead of stopping."""
    limit: int | None = None
    """Use at most this many documents per split (quick runs)."""
    split: SplitConfig | None = None
    """Hold out part of ``train``'s documents as the dev set (``dev`` must then be unset); see mtpeft.tasks.split."""

    @field_validator("train", "dev", "test")
    @classmethod
    def _expand_paths(cls, path: str | None) -> str | None:
        return expand_env(path)

    @model_validator(mode="after")
    def _split_needs_train_only(self) -> TaskConfig:
        if self.split is not None and self.train is None:
            raise ValueError("'split' holds out documents of 'train', which is not set")
        if self.split is not None and self.dev is not None:
            raise ValueError("'split' makes the dev set from 'train'; remove 'dev' (or 'split')")
        return self


class SamplingConfig(_Strict):
    strategy: str = "temperature"
    """proportional | temperature | uniform."""
    temperature: float = Field(2.0, gt=0.0)
    batch_mode: Literal["per_task", "mixed"] = "mixed"


class LossConfig(_Strict):
    strategy: str = "equal"
    """equal | uncertainty | pcgrad | any torchjd aggregator registered (upgrad, cagrad, ...)."""
    options: dict[str, Any] = Field(default_factory=dict)
    normalisation: Literal["step", "micro_batch"] = "step"
    """``step``: each loss term is divided by its unit count over the whole optimiser step (all
    micro-batches and processes) and each task weighted by its share of the step's examples, so
    accumulation equals one large batch; ``micro_batch``: the earlier per-micro-batch task means,
    summed over tasks (see mtpeft.training.step_losses)."""


class EarlyStoppingConfig(_Strict):
    metric: str | None = None
    """``task:metric`` or ``mean`` (mean of each task's headline metric); None disables."""
    patience: int = Field(3, ge=1)


class TrainingConfig(_Strict):
    max_steps: int = Field(100, ge=1)
    batch_size: int = Field(8, ge=1)
    grad_accum: int = Field(1, ge=1)
    lr: float = Field(2e-4, gt=0.0)
    head_lr: float | None = None
    weight_decay: float = Field(0.0, ge=0.0)
    warmup_ratio: float = Field(0.1, ge=0.0, lt=1.0)
    schedule: Literal["linear", "cosine", "constant"] = "linear"
    max_grad_norm: float | None = 1.0
    bf16: Literal["auto", "on", "off"] = "auto"
    """bf16 autocast: auto = on where the device supports it (CUDA with bf16), off on CPU."""
    sampling: SamplingConfig = Field(default_factory=SamplingConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    conflict_every: int = Field(10, ge=0)
    """Measure gradient conflicts on the shared adapter every N steps (0: never)."""
    log_every: int = Field(5, ge=1)
    eval_every: int = Field(50, ge=1)
    checkpoint_every: int = Field(50, ge=1)
    keep_last: int | None = Field(3, ge=1)
    """Keep only the newest N step checkpoints (the best and last are always kept); None keeps all."""
    early_stopping: EarlyStoppingConfig = Field(default_factory=EarlyStoppingConfig)
    max_nonfinite_in_row: int = Field(5, ge=1)
    """Stop with an error after this many consecutive NaN/inf losses (each skips its step)."""
    tensorboard: bool = True
    mlflow: bool = False
    packing: bool | Literal["auto"] = "auto"
    """Padding-free batches (mtpeft.model.packing): a step's examples share rows of at most
    ``packing_tokens`` tokens, each attending only to itself; exact. ``auto``: packed where the
    backbone's attention honours it (checked once), else forwards grouped by length (said once);
    ``true``: packed, or an error; ``false``: every row padded to the step's longest example."""
    packing_tokens: int = Field(256, ge=1)
    """Tokens per packed row; an example longer than this gets a row of its own (never truncated).
    On a CPU, attention over a longer row costs more than the padding it saves; raise it on a GPU."""


class EvaluationConfig(_Strict):
    ece_bins: int = Field(10, ge=1)
    batch_size: int = Field(16, ge=1)
    packing: bool | Literal["auto"] = "auto"
    """Padding-free prediction batches, as ``training.packing`` (``false``: padded batches)."""
    packing_tokens: int = Field(256, ge=1)
    """Tokens per packed row in prediction, as ``training.packing_tokens``."""
    before_training: bool = False
    """Also evaluate the untrained model on dev (step 0), reported next to the final metrics."""
    report: bool = False
    """After training, write ``report.html`` and ``report.md`` into the run folder (``mtpeft report``)."""


class RunConfig(_Strict):
    seed: int = 0
    output_dir: str = "runs/run"
    model: ModelConfig = Field(default_factory=ModelConfig)
    strategy: StrategyConfig = Field(default_factory=StrategyConfig)
    adapters: AdaptersConfig = Field(default_factory=AdaptersConfig)
    tasks: list[TaskConfig]
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)

    @field_validator("tasks")
    @classmethod
    def _unique_tasks(cls, tasks: list[TaskConfig]) -> list[TaskConfig]:
        if not tasks:
            raise ValueError("at least one task is required")
        ids = [t.id for t in tasks]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"duplicate task ids: {duplicates}")
        return tasks

    def task_ids(self) -> list[str]:
        return [t.id for t in self.tasks]


def _parse_value(text: str) -> Any:
    return yaml.safe_load(text) if text != "" else ""


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply ``a.b.c=value`` overrides (values parsed as YAML) to a nested dict; list items by index."""
    data = copy.deepcopy(data)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key=value")
        key, value = item.split("=", 1)
        parts = key.split(".")
        node: Any = data
        for i, part in enumerate(parts[:-1]):
            if isinstance(node, list):
                node = node[int(part)]
            else:
                node = node.setdefault(part, {})
        last = parts[-1]
        if isinstance(node, list):
            node[int(last)] = _parse_value(value)
        else:
            node[last] = _parse_value(value)
    return data


def _format_validation_error(source: str, error: ValidationError) -> str:
    lines = []
    for e in error.errors():
        field = ".".join(str(p) for p in e["loc"])
        lines.append(f"{source}: field {field!r}: {e['msg']}")
    return "; ".join(lines)


def config_from_dict(data: dict, source: str = "<config>") -> RunConfig:
    try:
        return RunConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError(_format_validation_error(source, error)) from None


def load_config(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    """Load and validate a YAML config, applying dotted overrides; errors name the field."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: invalid YAML: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    data = apply_overrides(data, overrides or [])
    # Relative data paths stay relative to the working directory, as on any command line;
    # the configs shipped in configs/ use paths relative to the repository root.
    return config_from_dict(data, str(path))


def dump_config(config: RunConfig, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
