"""``mtpeft params`` (the A1-A4 parity table) and ``mtpeft inspect`` (build adapters on a real model).

torch, PEFT and bitsandbytes are imported inside the commands, so ``mtpeft --help`` stays fast.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer

from mtpeft.cli.main import app
from mtpeft.errors import ConfigError
from mtpeft.tasks.ids import STUDY_TASKS

CUI_CLASSES_HELP = (
    "classes of the CUI classifier of 2014 T7 and 2015 T14 (CUI-less, <other>, the training CUIs seen "
    "cui_min_count times; `mtpeft data stats TASK DEV --train TRAIN` prints it): counted in their heads"
)


def study_heads(hidden_size: int, cui_classes: int) -> dict[str, object]:
    """The heads of the six study tasks at ``hidden_size`` (default task options), on the meta
    device; the disorder tasks' CUI classifiers with ``cui_classes`` classes."""
    import torch

    import mtpeft.heads  # noqa: F401  (registers the head kinds)
    from mtpeft.heads.base import create_task_head
    from mtpeft.tasks.registry import get_task

    heads = {}
    with torch.device("meta"):
        for task_id in STUDY_TASKS:
            task = get_task(task_id)
            options = task.head_options()
            if "cui_classes" in options:
                options["cui_classes"] = cui_classes
            heads[task_id] = create_task_head(task.head_kind, hidden_size, len(task.labels), **options)
    return heads


def head_rows(heads: dict[str, object]) -> list[tuple[str, int, int]]:
    """``(task, head parameters, of which the CUI classifier)`` per head."""
    rows = []
    for task, head in heads.items():
        normaliser = getattr(head, "normaliser", None)
        cui = sum(p.numel() for p in normaliser.parameters()) if normaliser is not None else 0
        rows.append((task, sum(p.numel() for p in head.parameters()), cui))
    return rows


def architecture_on_meta(model: str):
    """The architecture of ``model`` (name or folder) on the meta device, weights never read."""
    import torch
    from transformers import AutoConfig, LlamaConfig, LlamaModel

    from mtpeft.backbone import EMBEDDED, NAMED_CONFIGS, TINY, embedded_model_dir, meta_model, tiny_llama_config

    if model in NAMED_CONFIGS:
        return meta_model(model)
    if model == TINY:
        config = tiny_llama_config()
    elif model == EMBEDDED:
        config = AutoConfig.from_pretrained(embedded_model_dir(), local_files_only=True)
    elif Path(model).is_dir() and (Path(model) / "config.json").is_file():
        config = AutoConfig.from_pretrained(model, local_files_only=True, trust_remote_code=False)
    else:
        raise ConfigError(
            f"unknown model {model!r}; valid choices: {', '.join([EMBEDDED, TINY, *NAMED_CONFIGS])}, "
            "or a local folder with config.json"
        )
    if not isinstance(config, LlamaConfig):
        config = LlamaConfig(**config.to_dict())
    with torch.device("meta"):
        return LlamaModel(config)


@app.command()
def params(
    model: str = typer.Option("llama-3.2-3b", help="embedded, tiny, llama-3.2-1b, llama-3.2-3b, llama-3.1-8b or a local folder"),
    tasks: int = typer.Option(5, min=1, help="number of tasks (private adapters)"),
    rank: int = typer.Option(16, min=1, help="target rank of A1 (shared only)"),
    tolerance: float = typer.Option(0.05, min=0.0, help="largest relative budget difference allowed"),
    fusion: str = typer.Option("gated", help="fusion of A4"),
    placement: str = typer.Option("output", help="fusion placement of A4: layer or output"),
    cui_classes: int = typer.Option(2, min=2, help=CUI_CLASSES_HELP),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Solve integer ranks for A1-A4 at equal trainable budgets and print the exact table; then the
    study tasks' heads, which are outside the adapter budget (the same in every variant)."""
    from mtpeft.adapters.model import DEFAULT_TARGET_MODULES
    from mtpeft.adapters.params import (
        VARIANT_DESCRIPTIONS,
        build_ablation_variant,
        calculate_ablation_ranks,
        count_parameters,
        verify_parameter_parity,
    )

    arch = architecture_on_meta(model)
    plan = calculate_ablation_ranks(arch, tasks, target_rank=rank, tolerance=tolerance, fusion=fusion, placement=placement)
    names = [f"task{i}" for i in range(tasks)]
    rows = []
    for variant in plan.variants.values():
        # Exact count: instantiate the variant on the meta device and sum numel().
        built = build_ablation_variant(architecture_on_meta(model), variant, names, fusion=fusion, placement=placement)
        counts = count_parameters(built)
        rows.append((variant, counts.trainable, counts.backbone))
    exact = {v.name: trainable for v, trainable, _ in rows}
    verify_parameter_parity(exact, tolerance)
    heads = head_rows(study_heads(arch.config.hidden_size, cui_classes))
    if as_json:
        typer.echo(json.dumps({
            "model": model,
            "tasks": tasks,
            "per_rank_lora_parameters": plan.per_rank,
            "fusion_parameters": plan.fusion_params,
            "backbone_parameters": rows[0][2],
            "explanation": plan.explanation,
            "variants": {
                v.name: {"shared_rank": v.shared_rank, "private_rank": v.private_rank, "trainable": t,
                         "ratio_to_A1": t / exact["A1"], "fraction_of_backbone": t / b}
                for v, t, b in rows
            },
            "heads": {
                "note": "outside the adapter budget: the same in every variant",
                "cui_classes": cui_classes,
                "per_task": {task: {"parameters": n, "cui_classifier": cui} for task, n, cui in heads},
            },
        }, indent=2))
        return
    typer.echo(f"model {model}: backbone {rows[0][2]:,} parameters (frozen); {tasks} tasks; "
               f"targets {', '.join(DEFAULT_TARGET_MODULES)}")
    header = f"{'variant':<8}{'what':<36}{'shared r':>9}{'private r':>10}{'trainable':>14}{'/ A1':>8}{'/ backbone':>12}"
    typer.echo(header)
    typer.echo("-" * len(header))
    for v, trainable, backbone in rows:
        typer.echo(
            f"{v.name:<8}{VARIANT_DESCRIPTIONS[v.name]:<36}{v.shared_rank or '-':>9}{v.private_rank or '-':>10}"
            f"{trainable:>14,}{trainable / exact['A1']:>8.3f}{trainable / backbone:>12.4%}"
        )
    typer.echo(f"solver: {plan.explanation}")
    typer.echo(f"parity: all variants within {tolerance:.0%} of A1 (heads excluded: identical in every variant, below)")
    _echo_heads(heads, cui_classes)


def _echo_heads(heads: list[tuple[str, int, int]], cui_classes: int) -> None:
    typer.echo(f"heads, outside the adapter budget (the same in every variant); CUI classifier with {cui_classes} classes")
    typer.echo(f"{'task':<24}{'head parameters':>16}{'of which CUI classifier':>25}")
    for task, n, cui in heads:
        typer.echo(f"{task:<24}{n:>16,}{f'{cui:,}' if cui else '-':>25}")


@app.command()
def inspect(
    model: str = typer.Option("embedded", help="embedded, tiny or a local folder"),
    shared_rank: int = typer.Option(16, min=1),
    private_rank: int = typer.Option(8, min=1),
    fusion: str = typer.Option("gated"),
    placement: str = typer.Option("layer"),
    cui_classes: int = typer.Option(2, min=2, help=CUI_CLASSES_HELP),
) -> None:
    """Load a backbone, attach shared + private adapters for the six study tasks, run one mixed batch."""
    import torch

    from mtpeft.adapters.model import MultiAdapterBackbone, Route
    from mtpeft.adapters.params import count_parameters
    from mtpeft.backbone import load_backbone

    start = time.perf_counter()
    backbone = load_backbone(model)
    loaded = time.perf_counter() - start
    adapters = {"shared": shared_rank, **{f"private_{t}": private_rank for t in STUDY_TASKS}}
    routes = {t: Route(shared=("shared",), private=f"private_{t}") for t in STUDY_TASKS}
    mab = MultiAdapterBackbone(backbone.model, adapters, routes, fusion=fusion, placement=placement)
    heads = study_heads(backbone.hidden_size, cui_classes)
    counts = count_parameters(mab, heads)
    typer.echo(f"backbone {model} from {backbone.source} ({loaded:.1f} s); fusion {fusion} at {placement} placement")
    typer.echo(f"{'component':<40}{'parameters':>14}")
    for name, n in counts.rows():
        typer.echo(f"{name:<40}{n:>14,}")
    typer.echo(f"{'trainable, all tasks':<40}{counts.trainable:>14,}  ({counts.trainable / counts.backbone:.2%} of backbone)")
    typer.echo(f"{'trainable, active for one task':<40}{counts.active_for(STUDY_TASKS[0]):>14,}  ({STUDY_TASKS[0]}, its head included)")
    _echo_heads(head_rows(heads), cui_classes)
    if backbone.tokenizer is not None:
        texts = [f"Example for {t}: the patient denies chest pain." for t in STUDY_TASKS]
        batch = backbone.tokenizer(texts, return_tensors="pt", padding=True)
        with torch.no_grad():
            mab(batch["input_ids"], batch["attention_mask"], tasks=list(STUDY_TASKS))  # warm-up: first call ~10 s
        start = time.perf_counter()
        with torch.no_grad():
            hidden = mab(batch["input_ids"], batch["attention_mask"], tasks=list(STUDY_TASKS))
        typer.echo(
            f"one mixed batch of {len(STUDY_TASKS)} tasks x {batch['input_ids'].shape[1]} tokens -> hidden "
            f"{tuple(hidden.shape)} in {time.perf_counter() - start:.2f} s"
        )
