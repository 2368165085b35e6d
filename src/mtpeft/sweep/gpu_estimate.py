"""How long a sweep would take on a GPU: a FLOP count from this sweep's measured data, stated.

Nothing here is measured on a GPU (this project's CI has none). The estimate multiplies what the
finished CPU sweep measured about the data (tokens per training example from ``train_log.jsonl``,
dev examples per evaluation from ``data_report.json`` and ``per_document/``, the logged share of
level-2 examples) by the GPU sweep config's budget (runs, steps, batch, evaluations) and by the
FLOPs of the model per token:

* training, per token and backbone pass: ``4 N`` (forward ``2 N``, backward to the activations
  ``2 N``; the frozen weights get no gradient, LoRA's own FLOPs are under 1% at these ranks);
* evaluation, per token and pass: ``2 N``;
* passes: 2 for S3a/S3b at ``output`` placement (a shared and a private pass), else 1; S3b runs a
  level-1 forward (no graph) for its level-2 examples: ``+ 2 N`` per level-2 token and pass;

with ``N`` the backbone's parameters without the input embedding (counted on the meta device),
and attention's own FLOPs (sequence length x hidden size per layer, small at these lengths) left
out. Time = FLOPs / (peak bf16 throughput x utilisation); the utilisation is an assumption
(:data:`ASSUMED_UTILISATION`: small batches of short sequences with per-example adapter routing
are far from peak). ``python benchmarks/step.py --model llama-3.2-3b-config`` on the GPU measures
the step time that replaces it.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mtpeft.evaluation.report.run_folder import RunGroup

GPU_NAME = "one NVIDIA H100 SXM (bf16 dense peak 989 TFLOP/s)"
GPU_PEAK_FLOPS = 989e12
ASSUMED_UTILISATION = 0.2


@dataclass
class DataMeasure:
    """What the CPU sweep measured about the data."""

    tokens_per_example: float
    dev_examples: dict[str, float]  # per task row trained: examples in one evaluation of dev
    level2_share: float  # of training examples (logged sampling shares)


@dataclass
class GpuEstimate:
    config: str
    backbone: str
    parameters: int  # without the input embedding
    runs: int
    train_tokens: float
    eval_tokens: float
    flops: float
    hours: float
    gpu: str
    utilisation: float
    measure: DataMeasure


def task_levels(tasks: list[dict]) -> dict[str, int]:
    """Each task config's level (1 or 2), from its task class."""
    from mtpeft.tasks.from_config import task_from_config

    return {t["id"]: task_from_config({"id": t["id"], **(t.get("options") or {})}).level for t in tasks}


def measure_data(groups: list[RunGroup]) -> DataMeasure | None:
    """Tokens per training example, dev examples per task and the level-2 share, from the runs' files."""
    tokens = examples = 0.0
    level2: list[float] = []
    dev: dict[str, float] = {}
    for group in groups:
        for run in group.runs:
            config = run.config
            batch = config.get("training", {}).get("batch_size", 1) * config.get("training", {}).get("grad_accum", 1)
            levels = task_levels(config.get("tasks", []))
            for record in run.train_log:
                if isinstance(record.get("tokens"), (int, float)):
                    tokens += record["tokens"]
                    examples += batch
                shares = record.get("shares") or {}
                if shares:
                    level2.append(sum(v for t, v in shares.items() if levels.get(t) == 2))
            report = run.path / "data_report.json"
            if report.is_file() and not dev:
                for task, entry in json.loads(report.read_text()).items():
                    stats = run.per_document_path(task)
                    if stats.is_file() and entry.get("documents"):
                        documents = sum(1 for line in stats.read_text().splitlines() if line.strip())
                        dev[task] = entry["examples"] / entry["documents"] * documents
    if not examples:
        return None
    return DataMeasure(tokens / examples, dev, sum(level2) / len(level2) if level2 else 0.0)


def backbone_parameters(name: str) -> int:
    """Parameters of a named backbone on the meta device, without the input embedding."""
    from mtpeft.backbone import meta_model

    model = meta_model(name)
    return sum(p.numel() for n, p in model.named_parameters() if "embed_tokens" not in n)


def estimate(gpu_config: str | Path, measure: DataMeasure, backbone: str = "llama-3.2-3b") -> GpuEstimate:
    """The FLOPs and hours of every run of ``gpu_config`` (a sweep config), see the module docstring."""
    from mtpeft.sweep.spec import load_sweep

    plan = load_sweep(gpu_config, [f"model.backbone={backbone}"])  # shapes only, for the ablation ranks
    n = backbone_parameters(backbone)
    train_tokens = eval_tokens = flops = 0.0
    for run in plan.runs:
        c = run.config
        passes = 2 if c.strategy.name in ("s3a", "s3b") and c.strategy.placement == "output" else 1
        extra = measure.level2_share if c.strategy.name == "s3b" else 0.0
        t = c.training
        tokens = t.max_steps * t.batch_size * t.grad_accum * measure.tokens_per_example
        evaluations = math.ceil(t.max_steps / t.eval_every) + (1 if c.evaluation.before_training else 0)
        levels = task_levels([tc.model_dump() for tc in c.tasks])
        dev = sum(measure.dev_examples.get(task, 0.0) for task in levels) * measure.tokens_per_example
        dev_level2 = sum(measure.dev_examples.get(task, 0.0) for task, k in levels.items() if k == 2)
        dev_extra = dev_level2 * measure.tokens_per_example if c.strategy.name == "s3b" else 0.0
        train_tokens += tokens
        eval_tokens += evaluations * dev
        flops += tokens * n * passes * (4 + 2 * extra) + evaluations * n * passes * 2 * (dev + dev_extra)
    hours = flops / (GPU_PEAK_FLOPS * ASSUMED_UTILISATION) / 3600
    return GpuEstimate(str(gpu_config), backbone, n, len(plan.runs), train_tokens, eval_tokens, flops, hours,
                       GPU_NAME, ASSUMED_UTILISATION, measure)


def estimate_text(e: GpuEstimate, command: str) -> str:
    """The results file's GPU section."""
    m = e.measure
    dev = ", ".join(f"{t} {v:.0f}" for t, v in sorted(m.dev_examples.items())) or "n/a"
    return "\n".join([
        f"Config: `{e.config}` ({e.runs} runs: the same tasks, splits, strategies and seeds as this sweep, on "
        f"Llama-3.2-3B in bf16 with the budget written in it). Command:", "",
        f"    {command}", "",
        f"Expected time: **about {e.hours:.1f} GPU-hours** on {e.gpu}, derived as follows (no GPU measurement):",
        f"- backbone parameters without the input embedding N = {e.parameters:,} (meta device);",
        f"- tokens per training example {m.tokens_per_example:.1f} (this sweep's `train_log.jsonl`: SmolLM2's "
        f"tokenizer, which Llama 3's larger vocabulary undercuts, and this sweep's max_length, which the GPU "
        f"config may raise), level-2 share of examples "
        f"{m.level2_share:.2f}; dev examples per evaluation: {dev};",
        f"- {e.train_tokens:,.0f} training tokens and {e.eval_tokens:,.0f} evaluation tokens over all runs;",
        "- FLOPs = training tokens x 4N x passes + evaluation tokens x 2N x passes (2 passes at output "
        "placement; S3b adds a level-1 forward for level-2 examples; each task's dev examples counted once "
        "per evaluation, the subtask-2 row's and the threshold choice's extra level-2 passes left out) "
        f"= {e.flops:.3g};",
        f"- time = FLOPs / (989 TFLOP/s x {e.utilisation:.0%} assumed utilisation). Measure the real step time "
        "with `python benchmarks/step.py --model llama-3.2-3b-config` on the GPU and multiply by the steps "
        "to replace the assumption.",
    ])


def estimate_record(e: GpuEstimate | None) -> dict[str, Any] | None:
    return asdict(e) if e is not None else None
