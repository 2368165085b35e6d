"""Run a model over a task's documents, write official-format predictions, score them officially.

Every number comes from :func:`mtpeft.evaluation.score.score` applied to the files this module
writes, i.e. the same path ``mtpeft score`` and the official scorers take: an in-training metric
cannot drift from what a user would get by scoring the prediction files themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from mtpeft.evaluation.calibration_pairs import calibration_pairs
from mtpeft.evaluation.score import HEADLINE_METRIC, headline_metric, score  # noqa: F401  (re-exported)
from mtpeft.model.multitask import MultiTaskModel
from mtpeft.tasks.base import Task
from mtpeft.tasks.document import Document
from mtpeft.tasks.features import Features, WindowPrediction

def _write_2017_predictions(documents: Sequence[Document], path: Path) -> Path:
    from mtpeft.tasks.formats import semeval2017t3

    target = path / "predictions.pred"
    target.parent.mkdir(parents=True, exist_ok=True)
    semeval2017t3.write_predictions(documents, target)
    return target


def _write_json_file(task: Task) -> Callable[[Sequence[Document], Path], Path]:
    def write(documents: Sequence[Document], path: Path) -> Path:
        target = path / "predictions.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        task.write(documents, target)
        return target

    return write


def prediction_writer(task: Task) -> Callable[[Sequence[Document], Path], Path]:
    """How a task's predictions are written in the format its official scorer reads.

    Returns a function ``(documents, folder) -> path to hand to the scorer``.
    """
    if task.id == "semeval2017t3":
        return _write_2017_predictions
    if task.id.startswith("semeval2021t6"):
        return _write_json_file(task)

    def write_folder(documents: Sequence[Document], path: Path) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        task.write(documents, path)
        return path

    return write_folder


def _per_document(task_id, gold_path, pred_path, documents, decoded, collapsed):
    """Per-document stats from the very documents the score came from (the files, read the scorer's way)."""
    from mtpeft.evaluation.per_document import per_document_stats
    from mtpeft.evaluation.score import LOADERS

    if collapsed or task_id not in LOADERS:
        return per_document_stats(task_id, documents, decoded, collapsed)
    gold_docs, pred_docs = LOADERS[task_id](Path(gold_path), Path(pred_path))
    return per_document_stats(task_id, gold_docs, pred_docs)


def _collapsed_span_scores(gold: Sequence[Document], pred: Sequence[Document], label: str) -> dict[str, float]:
    from dataclasses import replace

    from mtpeft.evaluation.metrics.persuasion import persuasion_span_scores

    def merged(docs: Sequence[Document]) -> list[Document]:
        return [replace(d, mentions=[replace(m, label=label) for m in d.mentions]) for d in docs]

    return persuasion_span_scores(merged(gold), merged(pred))


def _write_gold_subset(task: Task, documents: Sequence[Document], folder: Path) -> Path:
    """Gold of a subset of documents, in the format the task's scorer reads as gold."""
    if task.id == "semeval2017t3":  # ev.py's gold is a relevancy file
        from mtpeft.tasks.formats import semeval2017t3

        folder.mkdir(parents=True, exist_ok=True)
        semeval2017t3.write_relevancy_gold(documents, folder / "gold.relevancy")
        return folder / "gold.relevancy"
    return prediction_writer(task)(documents, folder)


@dataclass
class TaskEvaluation:
    task: str
    metrics: dict[str, float]
    prediction_path: Path | None
    confidences: list[float] = field(default_factory=list)
    correct: list[int] = field(default_factory=list)
    skipped: int = 0
    per_document: list[dict] | None = None


def predict_features(
    model: MultiTaskModel, task_id: str, features: Sequence[Features], batch_size: int = 16
) -> list[WindowPrediction]:
    """Decoded head predictions for ``features``, in batches, in eval mode (mode restored after).

    Runs under ``torch.inference_mode`` (no autograd bookkeeping at all); nothing it creates is
    kept beyond the decoded predictions.
    """
    was_training = model.training
    model.eval()
    predictions: list[WindowPrediction] = []
    try:
        with torch.inference_mode():
            for start in range(0, len(features), batch_size):
                chunk = list(features[start : start + batch_size])
                predictions.extend(model.predict(model.collate({task_id: chunk}))[task_id])
    finally:
        if was_training:
            model.train()
    return predictions


def predict_documents(
    model: MultiTaskModel, task: Task, documents: Sequence[Document], tokenizer, batch_size: int = 16
) -> tuple[list[Document], list[WindowPrediction], list[Features]]:
    """Documents carrying the model's predicted annotations (plus the raw predictions and features)."""
    encoded = task.encode(documents, tokenizer)
    predictions = predict_features(model, task.id, encoded.features, batch_size)
    return task.decode(documents, predictions, encoded.features), predictions, encoded.features


def evaluate_task(
    model: MultiTaskModel,
    task: Task,
    gold_path: str | Path,
    tokenizer,
    output_dir: str | Path,
    *,
    batch_size: int = 16,
    lenient: bool = False,
    limit: int | None = None,
) -> TaskEvaluation:
    """Predict ``gold_path``'s documents, write them officially under ``output_dir``, score them.

    With ``limit`` only the first documents are predicted; they are then scored against a gold
    copy of the same documents written beside the predictions, so both sides cover the same ids.
    """
    read = task.read(gold_path, lenient=lenient)
    documents = read.documents[:limit] if limit else read.documents
    decoded, predictions, features = predict_documents(model, task, documents, tokenizer, batch_size)
    output_dir = Path(output_dir)
    writer = prediction_writer(task)
    pred_path = writer(decoded, output_dir / "predictions")
    if limit and limit < len(read.documents):
        gold_for_scoring = _write_gold_subset(task, documents, output_dir / "gold")
    else:
        gold_for_scoring = Path(gold_path)
    collapsed = getattr(task, "collapse_to", None)
    if collapsed:
        # One merged type (2021 T6 level 1 tags "PERSUASION"): no official file can carry it, so the
        # official partial-credit formula is applied in-process with every technique merged.
        metrics = _collapsed_span_scores(documents, decoded, collapsed)
    else:
        metrics = score(task.id, gold_for_scoring, pred_path)
    confidences, correct = calibration_pairs(task.head_kind, predictions, features)
    return TaskEvaluation(
        task=task.id,
        metrics=metrics,
        prediction_path=pred_path,
        confidences=confidences,
        correct=correct,
        skipped=len(read.skipped),
        per_document=_per_document(task.id, gold_for_scoring, pred_path, documents, decoded, collapsed),
    )
