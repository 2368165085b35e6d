"""Run a model over a task's documents, write official-format predictions, score them officially.

Every number comes from :func:`mtpeft.evaluation.score.score` applied to the files this module
writes, i.e. the same path ``mtpeft score`` and the official scorers take: an in-training metric
cannot drift from what a user would get by scoring the prediction files themselves.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from mtpeft.evaluation.calibration_pairs import calibration_pairs
from mtpeft.evaluation.score import CUIS_PREDICTED, METRIC_NOTES
from mtpeft.evaluation.score import HEADLINE_METRIC, headline_metric, model_metrics, score  # noqa: F401  (re-exported)
from mtpeft.model.multitask import MultiTaskModel
from mtpeft.model.packing import DEFAULT_BUDGET, Packing, resolve_packing
from mtpeft.progress import PredictionProgress
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


def _per_document(task_id, gold_path, pred_path, documents, decoded):
    """Per-document stats from the very documents the score came from (the files, read the scorer's way)."""
    from mtpeft.evaluation.per_document import per_document_stats
    from mtpeft.evaluation.score import LOADERS

    if task_id not in LOADERS:
        return per_document_stats(task_id, documents, decoded)
    gold_docs, pred_docs = LOADERS[task_id](Path(gold_path), Path(pred_path))
    return per_document_stats(task_id, gold_docs, pred_docs)


def _normalisation_counts(task: Task, decoded: Sequence[Document]) -> dict[str, float]:
    """``cuis_predicted`` (1/0) and, when normalising, how many predicted disorders got their CUI
    from each rule (``cui_source_classifier``, ``cui_source_training_lexicon``, ...)."""
    from mtpeft.tasks.normalisation import SOURCES

    if getattr(task, "normaliser", None) is None:
        return {CUIS_PREDICTED: 0.0}
    used = Counter(m.attributes.get("CUI_source") for d in decoded for m in d.mentions)
    return {CUIS_PREDICTED: 1.0, **{f"cui_source_{source}": float(used[source]) for source in SOURCES}}


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
    documents: list[Document] | None = None  # the gold documents evaluated (after select and limit)
    decoded: list[Document] | None = None  # the predictions on them (2021 T6 subtask 2 reuses level 1's)


def predict_features(
    model: MultiTaskModel,
    task_id: str,
    features: Sequence[Features],
    batch_size: int = 16,
    packing: Packing | bool | str | None = None,
    packing_tokens: int = DEFAULT_BUDGET,
) -> list[WindowPrediction]:
    """Decoded head predictions for ``features`` (same order), ``batch_size`` examples a forward,
    in eval mode (mode restored after).

    ``packing`` is a :class:`~mtpeft.model.packing.Packing` or the ``evaluation.packing`` setting
    (``None``: the model's ``prediction_packing``, ``auto`` unless set): ``auto`` packs each batch
    into rows of ``packing_tokens`` tokens where the backbone's attention honours it, else batches
    examples of similar lengths; ``False`` pads each batch in order. All give the same predictions. Runs under ``torch.inference_mode`` (no autograd bookkeeping at
    all); nothing it creates is kept beyond the decoded predictions. A progress bar on a terminal.
    """
    packing = model.prediction_packing if packing is None else packing
    if not isinstance(packing, Packing):
        packing = resolve_packing(model.backbone.inner_model, packing, packing_tokens, "evaluation.packing")
    order = list(range(len(features)))
    if packing.mode == "grouped":  # length-grouped batches: each padded only to similar lengths
        order.sort(key=lambda i: len(features[i].input_ids))
    layout = packing if packing.mode == "packed" else None
    was_training = model.training
    model.eval()
    predictions: list[WindowPrediction | None] = [None] * len(features)
    progress = PredictionProgress(len(features), f"predicting {task_id}")
    try:
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                rows = order[start : start + batch_size]
                batch = model.collate({task_id: [features[i] for i in rows]}, layout)
                for i, prediction in zip(rows, model.predict(batch)[task_id]):
                    predictions[i] = prediction
                progress.update(len(rows), batch.num_tokens)
    finally:
        progress.close()
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
    select: Callable[[Sequence[Document]], list[Document]] | None = None,
    choose_threshold: bool = False,
) -> TaskEvaluation:
    """Predict ``gold_path``'s documents, write them officially under ``output_dir``, score them.

    ``select`` keeps part of the documents read (a split's dev part, see
    :func:`mtpeft.tasks.split.split_source`); with ``limit`` only the first documents (of those)
    are predicted. A subset is scored against a gold copy of the same documents written beside
    the predictions, so both sides cover the same ids.

    ``choose_threshold``: these documents are the task's dev set, on which a span-typing task
    whose threshold is to be chosen on dev chooses it (:mod:`mtpeft.evaluation.thresholds`)
    before decoding; the task keeps it.
    """
    read = task.read(gold_path, lenient=lenient)
    documents = select(read.documents) if select else read.documents
    documents = documents[:limit] if limit else documents
    if choose_threshold and getattr(task, "threshold_from_dev", False):  # 2021 T6 level 2 on its dev split
        from mtpeft.evaluation.thresholds import choose_threshold as choose

        encoded = task.encode(documents, tokenizer)
        predictions = predict_features(model, task.id, encoded.features, batch_size)
        features = encoded.features
        task.threshold, _ = choose(task, documents, predictions, features)
        decoded = task.decode(documents, predictions, features)
    else:
        decoded, predictions, features = predict_documents(model, task, documents, tokenizer, batch_size)
    output_dir = Path(output_dir)
    writer = prediction_writer(task)
    pred_path = writer(decoded, output_dir / "predictions")
    if len(documents) < len(read.documents):
        gold_for_scoring = _write_gold_subset(task, documents, output_dir / "gold")
    else:
        gold_for_scoring = Path(gold_path)
    metrics = model_metrics(task.id, score(task.id, gold_for_scoring, pred_path))  # 2016 T12: no span figures
    if getattr(task, "threshold_from_dev", None) is not None:  # span typing: the threshold it decoded with
        metrics["threshold"] = task.decision_threshold
    if task.id in METRIC_NOTES:  # the disorder tasks: say whether CUIs were predicted, and how
        metrics.update(_normalisation_counts(task, decoded))
    confidences, correct = calibration_pairs(task.head_kind, predictions, features)
    return TaskEvaluation(
        task=task.id,
        metrics=metrics,
        prediction_path=pred_path,
        confidences=confidences,
        correct=correct,
        skipped=len(read.skipped),
        per_document=_per_document(task.id, gold_for_scoring, pred_path, documents, decoded),
        documents=list(documents),
        decoded=decoded,
    )
