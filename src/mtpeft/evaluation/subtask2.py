"""SemEval-2021 Task 6 subtask 2 end to end: find the persuasion spans of raw memes and name them.

Subtask 2 is the whole job: spans AND their techniques from the meme text, scored by the official
partial-credit F1 (:func:`mtpeft.evaluation.metrics.persuasion.persuasion_span_scores`). mtpeft
trains it as two tasks, so this module chains them into one row, ``semeval2021t6``:

* **tag then type** (a run with both levels): ``semeval2021t6_level1`` tags the spans of the raw
  memes (one ``PERSUASION`` type by default), ``semeval2021t6_level2`` names the techniques of
  each predicted span, once per distinct extent, every technique whose sigmoid reaches the
  threshold chosen on dev (:mod:`mtpeft.evaluation.thresholds`);
* **joint** (a run whose level 1 tags the 20 techniques, ``tagging: technique``, and has no
  level 2): level 1's spans already carry techniques (``configs/semeval2021t6-joint.yaml``).

The official JSON is written (``predictions.json``, exactly the gold ids) and scored with the
official scorer (``mtpeft score semeval2021t6`` gives the same numbers). Beside it, the same
level-1 spans all named with the most frequent technique of the training data, the strongest
trivial pipeline, are written (``most_frequent.json``) and scored: ``most_frequent_precision``
/ ``_recall`` / ``_f1``, so the row shows what naming the techniques adds. ``pipeline.json``
records the technique, the threshold and the tasks used. The input memes' own labels, if any,
are dropped before level 1 runs: nothing of the gold reaches the predictions.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from mtpeft.errors import ConfigError
from mtpeft.evaluation.evaluate import TaskEvaluation, predict_documents
from mtpeft.evaluation.score import score
from mtpeft.model.multitask import MultiTaskModel
from mtpeft.tasks.base import Task, without_annotations
from mtpeft.tasks.document import Document
from mtpeft.tasks.formats import semeval2021t6
from mtpeft.tasks.typing_task import SpanTypingTask

SUBTASK2 = "semeval2021t6"
LEVEL1 = "semeval2021t6_level1"
LEVEL2 = "semeval2021t6_level2"
TRIVIAL_KEYS = {f"most_frequent_{key}": key for key in ("precision", "recall", "f1")}


@dataclass
class Pipeline:
    """The tasks that make subtask 2: level 1 finds spans, level 2 (if any) names their techniques."""

    level1: Task
    level2: SpanTypingTask | None

    @property
    def mode(self) -> str:
        return "joint" if self.level2 is None else "tag-then-type"


def _tags_techniques(task: Task) -> bool:
    return getattr(task, "collapse_to", None) is None


def find_pipeline(tasks: Mapping[str, Task]) -> Pipeline | None:
    """The subtask-2 pipeline of a run's tasks, or ``None`` when they cannot make one."""
    try:
        return require_pipeline(tasks)
    except ConfigError:
        return None


def require_pipeline(tasks: Mapping[str, Task]) -> Pipeline:
    """The subtask-2 pipeline of a run's tasks; a :class:`ConfigError` says which level is missing."""
    level1, level2 = tasks.get(LEVEL1), tasks.get(LEVEL2)
    need = f"subtask 2 needs {LEVEL1} and {LEVEL2}, or {LEVEL1} with tagging: technique alone"
    if level1 is None:
        what = f"only {LEVEL2}, which names the techniques of GIVEN spans" if level2 is not None else "neither level"
        raise ConfigError(f"{SUBTASK2}: the run has no {LEVEL1} to find the spans in raw memes ({what}; "
                          f"its tasks: {', '.join(sorted(tasks))}); {need}")
    if level2 is None and not _tags_techniques(level1):
        raise ConfigError(f"{SUBTASK2}: the run's {LEVEL1} finds spans of one type, {level1.collapse_to}, and "
                          f"the run has no {LEVEL2} to name their techniques; {need}")
    return Pipeline(level1, level2 if isinstance(level2, SpanTypingTask) else None)


def predict_subtask2(
    model: MultiTaskModel,
    pipeline: Pipeline,
    memes: Sequence[Document],
    tokenizer,
    batch_size: int = 16,
    spans: Sequence[Document] | None = None,
) -> list[Document]:
    """The memes with their predicted technique spans (subtask 2), in input order.

    Labels the memes carry are ignored; ``spans`` are level 1's predictions on these memes when
    already computed (evaluation reuses level 1's own row).
    """
    if spans is None:
        raw = [without_annotations(meme) for meme in memes]
        spans = predict_documents(model, pipeline.level1, raw, tokenizer, batch_size)[0]
    if pipeline.level2 is None:
        return list(spans)
    return predict_documents(model, pipeline.level2, spans, tokenizer, batch_size)[0]


def most_frequent_technique(documents: Sequence[Document], techniques: Sequence[str] = semeval2021t6.TECHNIQUES) -> str:
    """The technique of the most spans in ``documents`` (ties: the first in ``techniques``)."""
    counts = Counter(m.label for d in documents for m in d.mentions)
    if not counts:
        raise ValueError("no labelled span to count the most frequent technique from")
    order = {t: i for i, t in enumerate(techniques)}
    return min(counts, key=lambda t: (-counts[t], order.get(t, len(order)), t))


def all_named(documents: Sequence[Document], technique: str) -> list[Document]:
    """The documents with every span named ``technique`` (the trivial second level)."""
    return [replace(d, mentions=[replace(m, label=technique) for m in d.mentions]) for d in documents]


def write_official(documents: Sequence[Document], path: Path, gold_ids: Sequence[str]) -> Path:
    """The official subtask-2 JSON of ``documents`` at ``path`` (ids must equal ``gold_ids``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    semeval2021t6.write_predictions(documents, path, gold_ids=gold_ids)
    return path


def evaluate_subtask2(
    model: MultiTaskModel,
    pipeline: Pipeline,
    gold_path: str | Path,
    tokenizer,
    output_dir: str | Path,
    train_documents: Sequence[Document],
    *,
    batch_size: int = 16,
    lenient: bool = False,
    documents: Sequence[Document] | None = None,
    spans: Sequence[Document] | None = None,
) -> TaskEvaluation:
    """The ``semeval2021t6`` row: predict the memes of ``gold_path``, write, score officially.

    ``documents`` are the gold memes to use (a subset of the file, as level 1's row used);
    ``spans`` level 1's predictions on them, if computed; ``train_documents`` give the most
    frequent technique. Writes ``predictions.json``, ``most_frequent.json``, ``pipeline.json``
    (and ``gold.json`` for a subset) into ``output_dir``.
    """
    from mtpeft.evaluation.per_document import per_document_stats
    from mtpeft.evaluation.score import LOADERS

    output_dir = Path(output_dir)
    read = pipeline.level1.read(gold_path, lenient=lenient)
    documents = list(read.documents if documents is None else documents)
    ids = [d.id for d in documents]
    if spans is None:
        spans = predict_documents(model, pipeline.level1, [without_annotations(d) for d in documents], tokenizer,
                                  batch_size)[0]
    predicted = predict_subtask2(model, pipeline, documents, tokenizer, batch_size, spans=spans)
    pred_path = write_official(predicted, output_dir / "predictions.json", ids)
    gold = Path(gold_path)
    if len(documents) < len(read.documents):
        gold = write_official(documents, output_dir / "gold.json", ids)
    metrics = score(SUBTASK2, gold, pred_path)
    technique = most_frequent_technique(train_documents)
    trivial_path = write_official(all_named(spans, technique), output_dir / "most_frequent.json", ids)
    trivial = score(SUBTASK2, gold, trivial_path)
    metrics.update({name: trivial[key] for name, key in TRIVIAL_KEYS.items()})
    threshold = None if pipeline.level2 is None else pipeline.level2.decision_threshold
    if threshold is not None:
        metrics["level2_threshold"] = threshold
    (output_dir / "pipeline.json").write_text(json.dumps({
        "mode": pipeline.mode, "level1": pipeline.level1.id, "level2": pipeline.level2 and pipeline.level2.id,
        "level2_threshold": threshold, "most_frequent_technique": technique, "gold": str(gold_path),
        "documents": len(documents),
    }, indent=2) + "\n")
    gold_docs, pred_docs = LOADERS[SUBTASK2](gold, pred_path)
    return TaskEvaluation(task=SUBTASK2, metrics=metrics, prediction_path=pred_path, skipped=len(read.skipped),
                          per_document=per_document_stats(SUBTASK2, gold_docs, pred_docs))
