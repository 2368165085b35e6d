"""Evaluate a trained run on a split and write everything the report reads into its folder."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from mtpeft.evaluation.calibration import expected_calibration_error
from mtpeft.evaluation.evaluate import TaskEvaluation, evaluate_task, prediction_writer
from mtpeft.model.load import load_trained
from mtpeft.training.run_folder import JsonlWriter


@dataclass
class RunEvaluation:
    run_dir: Path
    split: str
    step: int
    tasks: dict[str, TaskEvaluation]
    ece: dict[str, float]


def evaluate_run(
    path: str | Path,
    split: str = "dev",
    data: dict[str, str] | None = None,
    pointer: str = "best",
) -> RunEvaluation:
    """Official metrics of the checkpoint at ``path`` on ``split`` (``data`` overrides task paths).

    Writes ``predictions/<split>/<task>/`` (official format), ``calibration/<split>/<task>.json``,
    ``per_document/<split>/<task>.jsonl`` and ``evaluation/<split>.json``, and appends to
    ``metrics.jsonl`` (see docs/run-folder.md).
    """
    config, built, step = load_trained(path, pointer)
    run_dir = Path(config.output_dir) if (Path(config.output_dir) / "config.yaml").is_file() else _run_dir(path)
    data = data or {}
    unknown = sorted(set(data) - set(built.tasks))
    if unknown:
        from mtpeft.errors import ConfigError

        raise ConfigError(f"--data names tasks {unknown} that the run does not have; its tasks: {sorted(built.tasks)}")
    results: dict[str, TaskEvaluation] = {}
    ece: dict[str, float] = {}
    bins = config.evaluation.ece_bins
    for tc in config.tasks:
        gold = data.get(tc.id) or getattr(tc, split)
        if gold is None:
            continue
        out = run_dir / "predictions" / split / tc.id
        evaluation = evaluate_task(
            built.model, built.tasks[tc.id], gold, built.backbone.tokenizer, out,
            batch_size=config.evaluation.batch_size, lenient=tc.lenient,
            limit=None if tc.id in data else tc.limit,  # the run's own splits: the same documents as in training
        )
        results[tc.id] = evaluation
        ece_value = write_task_outputs(run_dir, split, evaluation, bins)
        if ece_value is not None:
            ece[tc.id] = ece_value
        JsonlWriter(run_dir / "metrics.jsonl").append({"step": step, "split": split, "task": tc.id, "metrics": evaluation.metrics})
    summary = {"split": split, "step": step, "tasks": {t: e.metrics for t, e in results.items()}, "ece": ece}
    (run_dir / "evaluation").mkdir(exist_ok=True)
    (run_dir / "evaluation" / f"{split}.json").write_text(json.dumps(summary, indent=2, sort_keys=True))
    return RunEvaluation(run_dir, split, step, results, ece)


def write_task_outputs(run_dir: Path, split: str, evaluation: TaskEvaluation, bins: int) -> float | None:
    """Write ``calibration/<split>/<task>.json`` and ``per_document/<split>/<task>.jsonl``; return the ECE."""
    ece = None
    if evaluation.confidences:
        ece = expected_calibration_error(evaluation.confidences, evaluation.correct, bins)
        calibration = run_dir / "calibration" / split / f"{evaluation.task}.json"
        calibration.parent.mkdir(parents=True, exist_ok=True)
        calibration.write_text(json.dumps({"confidences": evaluation.confidences, "correct": evaluation.correct,
                                           "ece": ece, "bins": bins}))
    if evaluation.per_document is not None:
        path = run_dir / "per_document" / split / f"{evaluation.task}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(row, sort_keys=True) + "\n" for row in evaluation.per_document))
    return ece


def _run_dir(path: str | Path) -> Path:
    from mtpeft.model.load import resolve_run

    return resolve_run(path)[0]


def predict_file(checkpoint: str | Path, task_id: str, input_path: str | Path, output: str | Path, lenient: bool = False) -> Path:
    """Predict ``input_path`` (the task's official input format) and write official predictions."""
    from mtpeft.errors import ConfigError
    from mtpeft.evaluation.evaluate import predict_documents

    config, built, _ = load_trained(checkpoint)
    if task_id not in built.tasks:
        raise ConfigError(f"the model has no task {task_id!r}; its tasks: {', '.join(sorted(built.tasks))}")
    task = built.tasks[task_id]
    documents = task.read(input_path, lenient=lenient).documents
    decoded, _, _ = predict_documents(built.model, task, documents, built.backbone.tokenizer, config.evaluation.batch_size)
    output = Path(output)
    written = prediction_writer(task)(decoded, output.parent / f".{output.name}.tmp")
    output.parent.mkdir(parents=True, exist_ok=True)
    if output.exists() and output.is_dir():
        import shutil

        shutil.rmtree(output)
    written.replace(output)
    return output
