"""The issue's targets, each a ratio computed from one run's measurements (never a stored number).

Wall-time ratios decide whether a target holds; the per-round paired ratios show the spread, and
the ratio of CPU-time medians (which ignores time spent waiting for a core held by another
process) is printed beside them as a check on a loaded machine.
"""

from __future__ import annotations

from measure import Timings

LIMITS = {"s3a_layer_floor": 1.20, "s3a_layer": 0.85, "s3a_layer_memory": 1.5, "s3a_output": 2.10, "mixed": 1.00,
          "pcgrad": 1.10, "predict": 0.95, "s5_memory": 0.35, "workload_share": 0.90, "workload_speed": 2.0}
"""S3a ``layer`` (the fused kernel, issue 16): within 1.20 x the frozen floor and 15% below the PEFT peer,
its step's peak memory within 1.5 x the floor's; prediction at 0.95 of the bare forward."""


def _time_target(timings: Timings, name: str, numerator: str, denominator: str, op: str, limit: float,
                 factor: float = 1.0, throughput: bool = False) -> dict:
    """``t_num / (factor t_den)``; for a throughput target the inverse (tokens/s of num over den)."""
    if numerator not in timings.seconds or denominator not in timings.seconds:
        return {"name": name, "value": None, "op": op, "limit": limit, "holds": None, "paired": [], "cpu": None}
    paired = timings.paired_ratios(numerator, denominator, factor)
    value = timings.median(numerator) / (factor * timings.median(denominator))
    cpu = timings.cpu_ratio(numerator, denominator, factor)
    if throughput:
        paired, value, cpu = [1.0 / r for r in paired], 1.0 / value, 1.0 / cpu
    holds = value <= limit if op == "<=" else value >= limit
    return {"name": name, "value": value, "op": op, "limit": limit, "holds": holds, "paired": paired, "cpu": cpu}


def _pcgrad_against_passes(timings: Timings, num_tasks: int) -> dict | None:
    """Stricter reading of the PCGrad target: against forward + T backward passes of the plain step."""
    phases = timings.phases.get("mixed", {})
    if "pcgrad" not in timings.seconds or not phases.get("forward"):
        return None
    passes = [f + num_tasks * b for f, b in zip(phases["forward"], phases["backward"], strict=True)]
    value = timings.median("pcgrad") / sorted(passes)[len(passes) // 2]
    return {"name": f"(info) PCGrad step / (forward + {num_tasks} x backward)", "value": value, "op": "<=",
            "limit": LIMITS["pcgrad"], "holds": value <= LIMITS["pcgrad"],
            "paired": [p / m for p, m in zip(timings.seconds["pcgrad"], passes, strict=True)], "cpu": None}


def _memory_target(peaks: dict[str, int], name: str, numerator: str, denominator: str, limit: float) -> dict | None:
    """Ratio of two variants' step peak memory (None unless both were measured and positive: on a tiny
    model a step's high-water mark can fall within the heap's noise, even below the resident set
    before it, and a ratio of such numbers says nothing)."""
    if peaks.get(numerator, 0) <= 0 or peaks.get(denominator, 0) <= 0:
        return None
    value = peaks[numerator] / peaks[denominator]
    return {"name": name, "value": value, "op": "<=", "limit": limit, "holds": value <= limit, "paired": [],
            "cpu": None}


def evaluate_targets(timings: Timings, facts: dict, num_tasks: int, peaks: dict[str, int] | None = None) -> list[dict]:
    """Every target with its value, limit, whether it holds, the paired per-round ratios and the CPU ratio."""
    out = [
        _time_target(timings, "S3a layer step / frozen floor step", "s3a_layer", "floor", "<=",
                     LIMITS["s3a_layer_floor"]),
        _time_target(timings, "S3a layer step / PEFT peer step", "s3a_layer", "peer", "<=", LIMITS["s3a_layer"]),
        _time_target(timings, "S3a output step / PEFT peer step", "s3a_output", "peer", "<=", LIMITS["s3a_output"]),
        _time_target(timings, "mixed-task batch step / per-task loop step", "mixed", "loop", "<=", LIMITS["mixed"]),
        _time_target(timings, f"PCGrad step / ({num_tasks} tasks x summed-loss step)", "pcgrad", "mixed", "<=",
                     LIMITS["pcgrad"], factor=num_tasks),
        _time_target(timings, "prediction tokens/s / bare forward tokens/s", "predict", "bare", ">=",
                     LIMITS["predict"], throughput=True),
    ]
    for name, numerator, denominator, op, key, throughput in (
        ("(info) S3a layer step / PEFT two-adapter step", "s3a_layer", "peer_pair", "<=", "s3a_layer", False),
        ("(info) prediction tokens/s / plain PEFT forward tokens/s", "predict", "peer_fwd", ">=", "predict", True),
    ):
        if numerator in timings.seconds and denominator in timings.seconds:
            out.append(_time_target(timings, name, numerator, denominator, op, LIMITS[key], throughput=throughput))
    memory = _memory_target(peaks or {}, "S3a layer step peak memory / frozen floor's", "s3a_layer", "floor",
                            LIMITS["s3a_layer_memory"])
    if memory is not None:
        out.append(memory)
    strict = _pcgrad_against_passes(timings, num_tasks)
    if strict is not None:
        out.append(strict)
    memory = facts.get("pcgrad_gradient_memory")
    if memory:
        ratios = [b / memory["shared_parameter_bytes"] for b in memory["per_task_bytes"].values()]
        out.append({"name": "PCGrad per-task gradient bytes / shared trainable bytes", "value": max(ratios),
                    "op": "==", "limit": 1.0, "holds": all(r == 1.0 for r in ratios), "paired": ratios, "cpu": None})
    out.extend(_workload_targets(timings, facts))
    if facts.get("s5_frozen_weight_bytes") and facts.get("float32_frozen_weight_bytes"):
        value = facts["s5_frozen_weight_bytes"] / facts["float32_frozen_weight_bytes"]
        out.append({"name": "S5 frozen-weight bytes / float32 backbone bytes", "value": value, "op": "<=",
                    "limit": LIMITS["s5_memory"], "holds": value <= LIMITS["s5_memory"], "paired": [], "cpu": None})
    return out


def _workload_targets(timings: Timings, facts: dict) -> list[dict]:
    """Packed against padded steps on the public data: the real-token share and real tokens/s."""
    shares = facts.get("real_token_share", {})
    out = []
    if "workload_packed" in shares:
        value = shares["workload_packed"]
        out.append({"name": "workload: packed real-token share", "value": value, "op": ">=",
                    "limit": LIMITS["workload_share"], "holds": value >= LIMITS["workload_share"], "paired": [],
                    "cpu": None})
    for name, numerator, denominator, limit in (
        ("workload: packed real tokens/s / padded real tokens/s", "workload_packed", "workload_padded",
         LIMITS["workload_speed"]),
        ("(info) workload: one-task-per-row packed real tokens/s / padded", "workload_task_rows", "workload_padded", 1.0),
        ("(info) workload: mixed-task rows real tokens/s / one-task-per-row", "workload_packed", "workload_task_rows", 1.0),
    ):
        if numerator in timings.seconds and denominator in timings.seconds:
            out.append(_time_target(timings, name, numerator, denominator, ">=", limit, throughput=True))
    for name in ("workload_padded", "workload_task_rows"):
        if name in shares:
            out.append({"name": f"(info) {name} real-token share", "value": shares[name], "op": ">=",
                        "limit": LIMITS["workload_share"], "holds": None, "paired": [], "cpu": None})
    return out
