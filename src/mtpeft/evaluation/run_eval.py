"""Evaluate a model on a split (in training and after), and a trained run's files and predictions.

:func:`evaluate_split` is the one evaluation of every task of a run on one split, used by the
trainer and by ``mtpeft evaluate``: each task's official row, the thresholds of multi-label span
typing (chosen on dev, recorded per step: :mod:`mtpeft.evaluation.thresholds`), and the
``semeval2021t6`` row where the run's tasks make SemEval-2021 T6 subtask 2
(:mod:`mtpeft.evaluation.subtask2`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mtpeft.config import RunConfig, TaskConfig
from mtpeft.errors import ConfigError
from mtpeft.evaluation.calibration import expected_calibration_error
from mtpeft.evaluation.evaluate import TaskEvaluation, evaluate_task, predict_features, prediction_writer
from mtpeft.evaluation.subtask2 import (
    LEVEL1,
    SUBTASK2,
    Pipeline,
    evaluate_subtask2,
    find_pipeline,
    predict_subtask2,
    require_pipeline,
    write_official,
)
from mtpeft.evaluation.thresholds import choose_threshold, record_threshold, recorded_threshold, warn_default
from mtpeft.model.load import load_trained
from mtpeft.model.multitask import MultiTaskModel
from mtpeft.tasks.base import Task
from mtpeft.tasks.document import Document
from mtpeft.tasks.split import split_source
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
    """Official metrics of the checkpoint at ``path`` on ``split`` (``data`` overrides task paths;
    ``semeval2021t6`` names the memes of the subtask-2 row).

    Writes ``predictions/<split>/<task>/`` (official format), ``calibration/<split>/<task>.json``,
    ``per_document/<split>/<task>.jsonl`` and ``evaluation/<split>.json``, and appends to
    ``metrics.jsonl`` (see docs/run-folder.md).
    """
    config, built, step = load_trained(path, pointer)
    run_dir = _run_dir(path, config)
    data = data or {}
    known = set(built.tasks) | ({SUBTASK2} if find_pipeline(built.tasks) else set())
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"--data names tasks {unknown} that the run does not have; its tasks: {sorted(known)}")
    results = evaluate_split(built.model, built.tasks, config, built.backbone.tokenizer, split,
                             run_dir / "predictions" / split, run_dir=run_dir, step=step, data=data)
    ece: dict[str, float] = {}
    for task, evaluation in results.items():
        ece_value = write_task_outputs(run_dir, split, evaluation, config.evaluation.ece_bins)
        if ece_value is not None:
            ece[task] = ece_value
        JsonlWriter(run_dir / "metrics.jsonl").append({"step": step, "split": split, "task": task, "metrics": evaluation.metrics})
    summary = {"split": split, "step": step, "tasks": {t: e.metrics for t, e in results.items()}, "ece": ece}
    (run_dir / "evaluation").mkdir(exist_ok=True)
    (run_dir / "evaluation" / f"{split}.json").write_text(json.dumps(summary, indent=2, sort_keys=True))
    return RunEvaluation(run_dir, split, step, results, ece)


def evaluate_split(
    model: MultiTaskModel,
    tasks: Mapping[str, Task],
    config: RunConfig,
    tokenizer,
    split: str,
    out_root: Path,
    *,
    run_dir: Path,
    step: int,
    data: Mapping[str, str] | None = None,
) -> dict[str, TaskEvaluation]:
    """Every task of ``config`` that has data for ``split``, then the ``semeval2021t6`` row.

    Each task's files go to ``out_root/<task>``. The run's own splits use the documents training
    uses (``split:``, ``limit``); ``data`` (task id -> path) evaluates other files whole. A span-
    typing task whose threshold is chosen on dev chooses it while evaluated on its own dev split
    and records it for ``step`` in ``run_dir``; on other data it takes the recorded one (or
    chooses it on dev first). The subtask-2 row follows level 1's documents (or ``data``'s
    ``semeval2021t6`` file) and reuses level 1's predicted spans.
    """
    data = dict(data or {})
    choosing = {tc.id for tc in config.tasks
                if split == "dev" and tc.id not in data and split_source(tc, "dev")[0] is not None}
    prepare_thresholds(model, tasks, config, tokenizer, run_dir, step, skip=choosing)
    batch_size = config.evaluation.batch_size
    results: dict[str, TaskEvaluation] = {}
    golds: dict[str, str] = {}
    for tc in config.tasks:
        path, select = split_source(tc, split)  # a task with `split:` takes dev from its train file
        gold = data.get(tc.id) or path
        if gold is None:
            continue
        golds[tc.id] = gold
        own = tc.id not in data  # the run's own splits: the same documents as in training
        task = tasks[tc.id]
        evaluation = evaluate_task(
            model, task, gold, tokenizer, out_root / tc.id, batch_size=batch_size, lenient=tc.lenient,
            limit=tc.limit if own else None, select=select if own else None, choose_threshold=tc.id in choosing,
        )
        if tc.id in choosing and getattr(task, "threshold_from_dev", False):
            f1 = evaluation.metrics.get("oracle_span_f1", evaluation.metrics.get("f1", float("nan")))
            record_threshold(run_dir, step, tc.id, task.threshold, f1, gold)
        results[tc.id] = evaluation
    pipeline = find_pipeline(tasks)
    if pipeline is not None and (SUBTASK2 in data or LEVEL1 in results):
        results[SUBTASK2] = _subtask2_row(model, pipeline, config, tokenizer, out_root / SUBTASK2,
                                          results.get(LEVEL1), golds.get(LEVEL1), data.get(SUBTASK2))
    return results


def _subtask2_row(model: MultiTaskModel, pipeline: Pipeline, config: RunConfig, tokenizer, out: Path,
                  level1: TaskEvaluation | None, level1_gold: str | None, memes: str | None) -> TaskEvaluation:
    """The ``semeval2021t6`` row on ``memes`` (a file given with ``--data``), else on level 1's documents."""
    namer = pipeline.level2 or pipeline.level1
    train = training_documents(_task_config(config, namer.id), namer)
    options = {"batch_size": config.evaluation.batch_size, "lenient": _task_config(config, LEVEL1).lenient}
    if memes is not None or level1 is None or level1_gold is None:
        if memes is None:
            raise ConfigError(f"{SUBTASK2}: no memes to evaluate (level 1 was not evaluated and no --data file)")
        return evaluate_subtask2(model, pipeline, memes, tokenizer, out, train, **options)
    return evaluate_subtask2(model, pipeline, level1_gold, tokenizer, out, train,
                             documents=level1.documents, spans=level1.decoded, **options)


def _task_config(config: RunConfig, task_id: str) -> TaskConfig:
    return next(tc for tc in config.tasks if tc.id == task_id)


def own_documents(tc: TaskConfig, task: Task, part: str) -> tuple[list[Document], str] | None:
    """The documents of ``part`` (train, dev) the run uses for ``tc`` (its ``split:`` part, at most
    ``limit``) and the file they come from; ``None`` when the task has no such part."""
    path, select = split_source(tc, part)
    if path is None:
        return None
    documents = task.read(path, lenient=tc.lenient).documents
    documents = select(documents) if select else documents
    return (documents[: tc.limit] if tc.limit else documents), path


def training_documents(tc: TaskConfig, task: Task) -> list[Document]:
    """The documents training reads for ``tc``."""
    found = own_documents(tc, task, "train")
    if found is None:
        raise ConfigError(f"task {tc.id!r}: no 'train' to count the most frequent technique from")
    return found[0]


def prepare_thresholds(model: MultiTaskModel, tasks: Mapping[str, Task], config: RunConfig, tokenizer,
                       run_dir: Path, step: int, skip: set[str] | frozenset[str] = frozenset()) -> None:
    """Set the dev-chosen threshold of each span-typing task that needs one (not in ``skip``):
    the one recorded for ``step``, else chosen now on the task's dev split (and recorded), else
    the default, with a warning."""
    for tc in config.tasks:
        task = tasks[tc.id]
        if not getattr(task, "threshold_from_dev", False) or tc.id in skip:
            continue
        recorded = recorded_threshold(run_dir, step, tc.id)
        if recorded is not None:
            task.threshold = recorded
            continue
        found = own_documents(tc, task, "dev")
        if found is None:
            warn_default(task)
            continue
        documents, path = found
        features = task.encode(documents, tokenizer).features
        predictions = predict_features(model, task.id, features, config.evaluation.batch_size)
        task.threshold, f1 = choose_threshold(task, documents, predictions, features)
        record_threshold(run_dir, step, tc.id, task.threshold, f1, path)


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


def _run_dir(path: str | Path, config: RunConfig | None = None) -> Path:
    if config is not None and (Path(config.output_dir) / "config.yaml").is_file():
        return Path(config.output_dir)
    from mtpeft.model.load import resolve_run

    return resolve_run(path)[0]


def predict_file(checkpoint: str | Path, task_id: str, input_path: str | Path, output: str | Path, lenient: bool = False) -> Path:
    """Predict ``input_path`` (the task's official input format) and write official predictions.

    ``task_id`` ``semeval2021t6``: subtask 2 on raw memes (a 2021 T6 JSON file; labels, if
    present, are ignored) through the run's level 1 and level 2, written as the official JSON.
    """
    config, built, step = load_trained(checkpoint)
    run_dir = _run_dir(checkpoint, config)
    tokenizer, batch_size = built.backbone.tokenizer, config.evaluation.batch_size
    if task_id != SUBTASK2 and task_id not in built.tasks:
        known = sorted(built.tasks) + ([SUBTASK2] if find_pipeline(built.tasks) else [])
        raise ConfigError(f"the model has no task {task_id!r}; its tasks: {', '.join(known)}")
    pipeline = require_pipeline(built.tasks) if task_id == SUBTASK2 else None
    prepare_thresholds(built.model, built.tasks, config, tokenizer, run_dir, step)
    output = Path(output)
    temporary = output.parent / f".{output.name}.tmp"
    if pipeline is not None:
        memes = pipeline.level1.read(input_path, lenient=lenient).documents
        predicted = predict_subtask2(built.model, pipeline, memes, tokenizer, batch_size)
        written = write_official(predicted, temporary, [m.id for m in memes])
    else:
        from mtpeft.evaluation.evaluate import predict_documents

        task = built.tasks[task_id]
        documents = task.read(input_path, lenient=lenient).documents
        decoded, _, _ = predict_documents(built.model, task, documents, tokenizer, batch_size)
        written = prediction_writer(task)(decoded, temporary)
    import shutil

    output.parent.mkdir(parents=True, exist_ok=True)
    if output.exists() and output.is_dir():
        shutil.rmtree(output)
    written.replace(output)
    if temporary.is_dir():  # the folder a one-file writer wrote into
        shutil.rmtree(temporary)
    return output
