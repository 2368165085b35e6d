"""Synthetic run folders with the layout of docs/run-folder.md, for tests of the analyses and report.

The config is built through the real :class:`mtpeft.config.RunConfig`, so a schema change that
breaks the report's reading of ``config.yaml`` shows up here. Every number is derived from the
arguments (no hidden constants the tests depend on).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from mtpeft.config import config_from_dict, dump_config


def f1_stats_metrics(prefix: str, docs: Sequence[tuple[int, int, int]]) -> dict[str, float]:
    """``{prefix}precision/recall/f1`` of summed (tp, fp, fn), worked out directly (not via the code under test)."""
    tp, fp, fn = (sum(d[k] for d in docs) for k in range(3))
    return {
        f"{prefix}precision": tp / (tp + fp) if tp + fp else 0.0,
        f"{prefix}recall": tp / (tp + fn) if tp + fn else 0.0,
        f"{prefix}f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0,
    }


def make_run(
    root: Path,
    name: str,
    *,
    tasks: Sequence[str],
    metrics: Mapping[str, Mapping[str, float]],
    strategy: str = "s3a",
    seed: int = 0,
    split: str = "dev",
    strategy_options: Mapping | None = None,
    steps: int = 30,
    log: bool = True,
    conflicts: bool = True,
    calibration: bool = True,
    per_document: Mapping[str, Sequence[Mapping]] | None = None,
    params: Mapping[str, int] | None = None,
    probing: Mapping[str, Mapping[str, float]] | None = None,
    before_training: Mapping[str, Mapping[str, float]] | None = None,
    finished: bool = True,
) -> Path:
    """Write one run folder ``root/name`` and return it.

    ``per_document`` maps a task to its per-document stats (``{"doc_id", "stats"}`` records).
    """
    path = root / name
    path.mkdir(parents=True)
    config = config_from_dict({
        "seed": seed,
        "output_dir": str(path),
        "strategy": {"name": strategy, **(strategy_options or {})},
        "tasks": [{"id": t} for t in tasks],
        "evaluation": {"ece_bins": 10},
    })
    dump_config(config, path / "config.yaml")
    (path / "environment.json").write_text(json.dumps({"seed": seed, "python": "3.x", "device": "cpu"}))
    rng = np.random.default_rng(seed + 17 * len(tasks))
    if log:
        lines = []
        for step in range(5, steps + 1, 5):
            losses = {t: (1.0 + k) * math.exp(-step / 20) + 0.01 * rng.random() for k, t in enumerate(tasks)}
            lines.append({"step": step, "lr": 1e-4, "loss": sum(losses.values()) / len(losses), "losses": losses,
                          "weights": {t: 1.0 for t in tasks}, "tokens_per_s": 100.0 * step, "skipped_nonfinite": 0,
                          "peak_memory_mb": 50.0 + step})
        (path / "train_log.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    if conflicts and len(tasks) > 1:
        lines = []
        for step in range(10, steps + 1, 10):
            cosine = np.eye(len(tasks)) + (1 - np.eye(len(tasks))) * (rng.random((len(tasks),) * 2) * 2 - 1)
            cosine = (cosine + cosine.T) / 2
            upper = cosine[np.triu_indices(len(tasks), 1)]
            lines.append({"step": step, "tasks": list(tasks), "cosine": cosine.tolist(),
                          "conflict_fraction": float(np.mean(upper < 0))})
        (path / "conflicts.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    if calibration:
        for task in tasks:
            confidences = rng.random(200)
            correct = (rng.random(200) < confidences).astype(int)
            target = path / "calibration" / split / f"{task}.json"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps({"confidences": confidences.tolist(), "correct": correct.tolist(),
                                          "ece": 0.0, "bins": 10}))
    for task, records in (per_document or {}).items():
        target = path / "per_document" / split / f"{task}.jsonl"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("".join(json.dumps(r) + "\n" for r in records))
    if params:
        (path / "params.json").write_text(json.dumps(dict(params)))
    if probing:
        (path / "probing.json").write_text(json.dumps(probing))
    if finished:
        final = {"split": split, "step": steps, "tasks": {t: dict(m) for t, m in metrics.items()}}
        if before_training:
            final["before_training"] = {t: dict(m) for t, m in before_training.items()}
        (path / "final_metrics.json").write_text(json.dumps(final))
    return path
