"""The issue's targets, each a ratio computed from one run's measurements (never a stored number)."""

from __future__ import annotations

from measure import Timings

LIMITS = {
    "s3a_layer": 1.10,
    "s3a_output": 2.10,
    "mixed": 1.00,
    "pcgrad": 1.10,
    "predict": 0.90,
    "s5_memory": 0.35,
}


def _ratio(timings: Timings, name: str, numerator: str, denominator: str, op: str, limit: float, factor: float = 1.0,
           invert: bool = False) -> dict:
    if numerator not in timings.seconds or denominator not in timings.seconds:
        return {"name": name, "value": None, "op": op, "limit": limit, "holds": None, "paired": []}
    paired = timings.paired_ratios(numerator, denominator, factor)
    value = timings.median(numerator) / (factor * timings.median(denominator))
    if invert:  # a throughput ratio: (tokens / t_num) / (tokens / t_den) = t_den / t_num
        paired, value = [1.0 / r for r in paired], 1.0 / value
    holds = value <= limit if op == "<=" else value >= limit
    return {"name": name, "value": value, "op": op, "limit": limit, "holds": holds, "paired": paired}


def evaluate_targets(timings: Timings, facts: dict, num_tasks: int) -> list[dict]:
    """Every target with its value, limit, whether it holds, and the per-round (paired) ratios."""
    out = [
        _ratio(timings, "S3a layer step / PEFT peer step", "s3a_layer", "peer", "<=", LIMITS["s3a_layer"]),
        _ratio(timings, "S3a output step / PEFT peer step", "s3a_output", "peer", "<=", LIMITS["s3a_output"]),
        _ratio(timings, "mixed-task batch step / per-task loop step", "mixed", "loop", "<=", LIMITS["mixed"]),
        _ratio(timings, f"PCGrad step / ({num_tasks} tasks x summed-loss step)", "pcgrad", "mixed", "<=",
               LIMITS["pcgrad"], factor=num_tasks),
        _ratio(timings, "prediction tokens/s / bare forward tokens/s", "predict", "bare", ">=", LIMITS["predict"],
               invert=True),
    ]
    phases = timings.phases.get("mixed", {})
    if "pcgrad" in timings.seconds and phases.get("forward"):
        # Stricter reading: PCGrad against forward + T backward passes of the summed-loss step.
        model = [f + num_tasks * b for f, b in zip(phases["forward"], phases["backward"], strict=True)]
        model_median = sorted(model)[len(model) // 2]
        value = timings.median("pcgrad") / model_median
        out.append({"name": f"(info) PCGrad step / (forward + {num_tasks} x backward)", "value": value, "op": "<=",
                    "limit": LIMITS["pcgrad"], "holds": value <= LIMITS["pcgrad"],
                    "paired": [p / m for p, m in zip(timings.seconds["pcgrad"], model, strict=True)]})
    memory = facts.get("pcgrad_gradient_memory")
    if memory:
        per_task = memory["per_task_bytes"]
        ratios = [b / memory["shared_parameter_bytes"] for b in per_task.values()]
        out.append({"name": "PCGrad per-task gradient bytes / shared trainable bytes", "value": max(ratios),
                    "op": "==", "limit": 1.0, "holds": all(r == 1.0 for r in ratios), "paired": ratios})
    if facts.get("s5_frozen_weight_bytes") and facts.get("float32_frozen_weight_bytes"):
        value = facts["s5_frozen_weight_bytes"] / facts["float32_frozen_weight_bytes"]
        out.append({"name": "S5 frozen-weight bytes / float32 backbone bytes", "value": value, "op": "<=",
                    "limit": LIMITS["s5_memory"], "holds": value <= LIMITS["s5_memory"], "paired": []})
    return out
