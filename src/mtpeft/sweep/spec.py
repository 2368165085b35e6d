"""Sweep configs: a base run config plus a ``sweep:`` section, expanded into one config per run.

Schema (the rest of the file is a :class:`mtpeft.config.RunConfig`, the base of every run)::

    output_dir: runs/strategies   # the sweep's folder; run NAME lands in <output_dir>/NAME
    sweep:
      seeds: 3                    # N: seeds 0..N-1; or a list [0, 1, 2]; --seeds N replaces it
      strategies:                 # an axis: entries of a name and dotted overrides
        - s2                      # shorthand for {name: s2, set: {strategy.name: s2}}
        - {name: s3a-attention, set: {strategy.name: s3a, strategy.fusion: attention}}
      ablations:                  # an axis: A1-A4 at equal trainable budget
        variants: [A1, A2, A3, A4]
        target_rank: 16           # A1's rank when A2-A4 can match it (see calculate_ablation_ranks)
      combine: product            # or union: every entry of every axis on its own
      results: {file: results/x.md, gpu_config: configs/x-llama.yaml}   # the committed results file
      slurm: {}                   # submitit SlurmExecutor parameters (--submitit-slurm)

Runs are the product of the axes given (strategies x ablations), times the seeds; with
``combine: union`` they are the entries of all axes one after the other (strategies, then
ablations), each alone, times the seeds. A run is named ``<entry>[-<entry>]-seed<k>``. Two axes
may not set the same key to different values: the product would not be what it says; in a union
two entries may not give the same configuration (it would be trained twice under two names).
Ablation ranks are solved when the sweep is expanded, from the base
config's backbone (its architecture on the meta device, no weights read), task count, target
modules and fusion, so they always match the model that is trained.
"""

from __future__ import annotations

import copy
import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from mtpeft.config import RunConfig, apply_overrides, config_from_dict
from mtpeft.errors import ConfigError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+=-]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AxisEntry(_Strict):
    name: str
    """Folder-safe name of the entry (letters, digits, ``._+=-``)."""
    set: dict[str, Any] = Field(default_factory=dict)
    """Dotted overrides applied to the base config, e.g. ``{strategy.name: s3a}``."""

    @field_validator("name")
    @classmethod
    def _folder_safe(cls, name: str) -> str:
        if not _NAME.match(name):
            raise ValueError(f"{name!r} is not folder-safe: use letters, digits and ._+=- only")
        return name


class AblationAxis(_Strict):
    variants: list[Literal["A1", "A2", "A3", "A4"]] = Field(default_factory=lambda: ["A1", "A2", "A3", "A4"])
    target_rank: int = Field(16, ge=1)
    private_ratio: float = Field(0.5, gt=0.0)
    """Preferred private/shared rank ratio of A3 and A4."""
    tolerance: float = Field(0.05, ge=0.0)
    fusion: str = "gated"
    """Fusion of A4 (A3 is the same adapters summed)."""
    placement: Literal["layer", "output"] = "output"


class ResultsFileOptions(_Strict):
    file: str
    """The committed results file (Markdown; the JSON beside it), see mtpeft.sweep.results_file."""
    gpu_config: str | None = None
    """A sweep config for Llama-3.2-3B: the results file says what to run on a GPU and how long it takes."""


class SweepSection(_Strict):
    seeds: int | list[int] = 3
    strategies: list[str | AxisEntry] | None = None
    ablations: AblationAxis | None = None
    combine: Literal["product", "union"] = "product"
    """``product``: every combination of one entry per axis; ``union``: each entry of each axis alone."""
    results: ResultsFileOptions | None = None
    """Also write the committed results file (``mtpeft sweep`` runs it after the table)."""
    slurm: dict[str, Any] = Field(default_factory=dict)

    @field_validator("seeds")
    @classmethod
    def _valid_seeds(cls, seeds: int | list[int]) -> int | list[int]:
        if isinstance(seeds, int) and seeds < 1:
            raise ValueError("seeds must be >= 1")
        if isinstance(seeds, list) and (not seeds or len(set(seeds)) != len(seeds)):
            raise ValueError("seeds must be a non-empty list of distinct integers")
        return seeds


@dataclass(frozen=True)
class SweepRun:
    """One run of a sweep: its folder name, configuration label (without seed) and resolved config."""

    name: str
    label: str
    seed: int
    overrides: dict[str, Any]
    config: RunConfig

    @property
    def path(self) -> Path:
        return Path(self.config.output_dir)


@dataclass
class SweepPlan:
    """The expanded sweep: where it writes, its runs, and the solved ablation ranks (if any)."""

    source: str
    data: dict  # the sweep config as read, overrides applied
    output_dir: Path
    section: SweepSection
    runs: list[SweepRun]
    ablation_explanation: str | None = None
    ablation_ranks: dict[str, dict[str, int]] = field(default_factory=dict)


def seed_list(seeds: int | list[int]) -> list[int]:
    """``N`` -> ``[0, ..., N-1]``; a list is kept as given."""
    return list(range(seeds)) if isinstance(seeds, int) else list(seeds)


def _strategy_entries(section: SweepSection) -> list[AxisEntry]:
    entries = []
    for item in section.strategies or []:
        entries.append(AxisEntry(name=item, set={"strategy.name": item}) if isinstance(item, str) else item)
    return entries


def architecture_on_meta(backbone: str):
    """The backbone's architecture on the meta device (no weights read), for rank solving."""
    import torch
    from transformers import AutoConfig, LlamaConfig, LlamaModel

    from mtpeft.backbone import EMBEDDED, NAMED_CONFIGS, TINY, embedded_model_dir, meta_model, tiny_llama_config

    if backbone in NAMED_CONFIGS:
        return meta_model(backbone)
    if backbone == TINY:
        config = tiny_llama_config()
    elif backbone == EMBEDDED:
        config = AutoConfig.from_pretrained(embedded_model_dir(), local_files_only=True)
    elif (Path(backbone) / "config.json").is_file():
        config = AutoConfig.from_pretrained(backbone, local_files_only=True, trust_remote_code=False)
    else:
        raise ConfigError(f"model.backbone {backbone!r}: cannot solve ablation ranks without its architecture "
                          f"(a known name or a folder with config.json)")
    if not isinstance(config, LlamaConfig):
        config = LlamaConfig(**config.to_dict())
    with torch.device("meta"):
        return LlamaModel(config)


def ablation_entries(axis: AblationAxis, base: RunConfig) -> tuple[list[AxisEntry], str, dict[str, dict[str, int]]]:
    """A1-A4 as axis entries with ranks solved for ``base`` (its backbone, task count, targets).

    A1 is S2 (shared only), A2 is S1 (one private LoRA per task, rank ``shared_rank``), A3 is S3a
    with ``sum`` fusion and A4 S3a with the axis's fusion, both at the axis's placement (as the
    solver counts them), so A3 and A4 differ only in the fusion.
    """
    from mtpeft.adapters.params import calculate_ablation_ranks

    plan = calculate_ablation_ranks(
        architecture_on_meta(base.model.backbone), len(base.tasks), target_rank=axis.target_rank,
        private_ratio=axis.private_ratio, tolerance=axis.tolerance, fusion=axis.fusion, placement=axis.placement,
        target_modules=base.strategy.target_modules, fusion_options=base.strategy.fusion_options,
    )
    v = plan.variants
    sets = {
        "A1": {"strategy.name": "s2", "strategy.shared_rank": v["A1"].shared_rank},
        "A2": {"strategy.name": "s1", "strategy.shared_rank": v["A2"].private_rank},
        "A3": {"strategy.name": "s3a", "strategy.shared_rank": v["A3"].shared_rank,
               "strategy.private_rank": v["A3"].private_rank, "strategy.fusion": "sum",
               "strategy.placement": axis.placement},
        "A4": {"strategy.name": "s3a", "strategy.shared_rank": v["A4"].shared_rank,
               "strategy.private_rank": v["A4"].private_rank, "strategy.fusion": axis.fusion,
               "strategy.placement": axis.placement},
    }
    ranks = {name: {"shared_rank": v[name].shared_rank, "private_rank": v[name].private_rank,
                    "trainable_adapters_and_fusion": v[name].trainable} for name in axis.variants}
    return [AxisEntry(name=name, set=sets[name]) for name in axis.variants], plan.explanation, ranks


def set_dotted(data: dict, values: dict[str, Any]) -> dict:
    """A deep copy of ``data`` with each dotted key (``a.b.c``; list items by index) set to its value."""
    data = copy.deepcopy(data)
    for key, value in values.items():
        node: Any = data
        parts = key.split(".")
        for part in parts[:-1]:
            node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
            if not isinstance(node, (dict, list)):
                raise ConfigError(f"sweep override {key}: {part!r} is not a mapping or list")
        if isinstance(node, list):
            node[int(parts[-1])] = copy.deepcopy(value)
        else:
            node[parts[-1]] = copy.deepcopy(value)
    return data


def _combine(entries: tuple[AxisEntry, ...]) -> dict[str, Any]:
    combined: dict[str, Any] = {}
    owner: dict[str, str] = {}
    for entry in entries:
        for key, value in entry.set.items():
            if key in combined and combined[key] != value:
                raise ConfigError(f"sweep: entries {owner[key]!r} and {entry.name!r} both set {key} "
                                  f"({combined[key]!r} vs {value!r}); use one axis for it")
            combined[key], owner[key] = value, entry.name
    for key in ("seed", "output_dir"):
        if key in combined:
            raise ConfigError(f"sweep entry {owner[key]!r} sets {key}; the sweep sets it for every run")
    return combined


def _refuse_same_configuration(runs: list[SweepRun], source: str) -> None:
    """In a union, two labels whose runs have the same config would train it twice under two names."""
    seen: dict[str, str] = {}
    for run in runs:
        key = run.config.model_dump_json(exclude={"output_dir"})
        if key in seen and seen[key] != run.label:
            raise ConfigError(f"{source}: sweep entries {seen[key]!r} and {run.label!r} give the same configuration; "
                              f"keep one of them")
        seen.setdefault(key, run.label)


def _read_yaml(path: Path) -> dict:
    if not path.is_file():
        raise ConfigError(f"sweep config {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: invalid YAML: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def parse_section(data: dict, source: str) -> SweepSection:
    """Validate the ``sweep:`` mapping; errors name the field."""
    try:
        return SweepSection.model_validate(data.get("sweep") or {})
    except ValidationError as error:
        fields = "; ".join(f"{source}: field 'sweep.{'.'.join(map(str, e['loc']))}': {e['msg']}" for e in error.errors())
        raise ConfigError(fields) from None


def expand_sweep(data: dict, source: str = "<sweep>", seeds: int | None = None) -> SweepPlan:
    """Expand a sweep config (already parsed, overrides applied) into its runs, each config validated."""
    section = parse_section(data, source)
    if seeds is not None:
        if seeds < 1:
            raise ConfigError("--seeds must be >= 1")
        section.seeds = seeds
    base_data = {k: v for k, v in data.items() if k != "sweep"}
    base = config_from_dict(base_data, source)
    output_dir = Path(base.output_dir)
    axes: list[list[AxisEntry]] = []
    explanation, ranks = None, {}
    if section.strategies:
        axes.append(_strategy_entries(section))
    if section.ablations is not None:
        entries, explanation, ranks = ablation_entries(section.ablations, base)
        axes.append(entries)
    if not axes:
        axes.append([AxisEntry(name=base.strategy.name)])  # no axis: the base config, over seeds
    runs, names = [], set()
    combos = itertools.product(*axes) if section.combine == "product" else ((e,) for axis in axes for e in axis)
    for entries in combos:
        label = "-".join(e.name for e in entries)
        overrides = _combine(entries)
        for seed in seed_list(section.seeds):
            name = f"{label}-seed{seed}"
            if name in names:
                raise ConfigError(f"{source}: two sweep entries give the run name {name!r}; rename one")
            names.add(name)
            resolved = set_dotted(base_data, {**overrides, "seed": seed, "output_dir": str(output_dir / name)})
            runs.append(SweepRun(name, label, seed, overrides, config_from_dict(resolved, f"{source} (run {name})")))
    if section.combine == "union":
        _refuse_same_configuration(runs, source)
    return SweepPlan(source, copy.deepcopy(data), output_dir, section, runs, explanation, ranks)


def load_sweep(path: str | Path, overrides: list[str] | None = None, seeds: int | None = None) -> SweepPlan:
    """Read a sweep config, apply dotted overrides (to base and ``sweep.*`` alike) and expand it."""
    path = Path(path)
    data = apply_overrides(_read_yaml(path), overrides or [])
    return expand_sweep(data, str(path), seeds)
