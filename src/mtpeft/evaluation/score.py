"""Score official-format prediction files against official-format gold, as the official scorers do.

``score(task_id, gold, pred)`` reads both sides with the task's format reader and hands the
documents to its metric (:mod:`mtpeft.evaluation.metrics`); 2016 T12 folders go straight to
``anafora.evaluate``. No model and no note text are needed: the ``.pipe`` and Anafora inputs
are read without their ``.txt`` notes (offsets are checked against the text when it is there).

:data:`HEADLINE_KEYS` lists, per task, the keys every result holds (what ``--json`` promises);
results carry more (counts, per-label scores, variants).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from mtpeft.errors import ConfigError, FormatError, Location
from mtpeft.evaluation.metrics.disorders import semeval2014_scores, semeval2015_scores
from mtpeft.evaluation.metrics.persuasion import persuasion_span_scores, span_identification_scores
from mtpeft.evaluation.metrics.ranking import ranking_scores
from mtpeft.evaluation.metrics.temporal import temporal_scores
from mtpeft.registry import Registry, UnknownNameError
from mtpeft.tasks.document import Document, Mention

Scorer = Callable[[Path, Path], dict[str, float]]
SCORERS: Registry[Scorer] = Registry("task")

_SPAN_KEYS = tuple(f"{kind}_{m}" for kind in ("strict", "relaxed") for m in ("precision", "recall", "f1"))
HEADLINE_KEYS: dict[str, tuple[str, ...]] = {
    "semeval2014t7": (*_SPAN_KEYS, "cui_accuracy_strict", "cui_accuracy_relaxed"),
    "semeval2015t14": (*_SPAN_KEYS, "span_strict_f1", "span_relaxed_f1"),
    "semeval2016t12": ("event_span_f1", "timex3_span_f1", "contains_precision", "contains_recall", "contains_f1"),
    "semeval2017t3": ("map", "map_ignore_noanswer", "avg_rec", "mrr", "accuracy", "precision", "recall", "f1"),
    "semeval2021t6": ("precision", "recall", "f1"),
    "semeval2021t6_level1": ("precision", "recall", "f1"),
    "semeval2021t6_level2": ("oracle_span_precision", "oracle_span_recall", "oracle_span_f1"),
}

REPORT_KEYS: dict[str, tuple[str, ...]] = {
    **HEADLINE_KEYS,
    "semeval2021t6": (*HEADLINE_KEYS["semeval2021t6"], "most_frequent_f1", "level2_threshold"),
    "semeval2021t6_level1": (*HEADLINE_KEYS["semeval2021t6_level1"], "unmerged_f1"),
    "semeval2021t6_level2": (*HEADLINE_KEYS["semeval2021t6_level2"], "threshold"),
}
"""Per task, the keys a per-task report table shows: the headline keys and what reads beside them
(2021 T6: the most-frequent-technique pipeline, the level-2 threshold, level 1's unmerged score)."""


HEADLINE_METRIC: dict[str, str] = {
    "semeval2014t7": "strict_f1",
    "semeval2015t14": "strict_f1",
    "semeval2016t12": "contains_f1",
    "semeval2017t3": "map",
    "semeval2021t6": "f1",
    "semeval2021t6_level1": "f1",
    "semeval2021t6_level2": "oracle_span_f1",
}
"""The one metric per task used for model selection, early stopping and summary tables.

2021 T6: ``semeval2021t6`` is the official subtask-2 F1 of the chained levels (spans found by
level 1, named by level 2, or by a joint level-1 tagger); ``semeval2021t6_level1`` is span
identification (merged spans, techniques ignored) and ``semeval2021t6_level2`` the techniques
of the GOLD spans (an oracle-span score, not subtask 2)."""

COMPONENT_OF: dict[str, str] = {"semeval2021t6_level1": "semeval2021t6", "semeval2021t6_level2": "semeval2021t6"}
"""Rows that are parts of another row's task: where that row is present it is the task's headline."""


METRIC_NOTES: dict[str, dict[str, str]] = {
    "semeval2014t7": {
        "strict_f1": "Task A: disorder spans, exact",
        "relaxed_f1": "Task A: disorder spans, overlapping",
        "cui_accuracy_strict": "Task B: right CUIs / gold disorders",
        "cui_accuracy_relaxed": "Task B: right CUIs / exactly found disorders",
    },
    "semeval2015t14": {
        "strict_f1": "Task 1: spans exact and CUI right",
        "relaxed_f1": "Task 1: spans overlapping and CUI right",
        "span_strict_f1": "spans exact, CUI ignored",
        "span_relaxed_f1": "spans overlapping, CUI ignored (task2_eval.pl)",
    },
}
"""What each disorder figure counts: the official CUI-aware figures and the span-only ones beside
them, shown together by ``mtpeft evaluate``, ``mtpeft score`` and the report's per-task table."""

CUIS_PREDICTED = "cuis_predicted"
"""Key ``evaluate`` adds for the disorder tasks: 1 when the task normalised its predictions, 0
when normalisation was off (every disorder written ``CUI-less``: the CUI-aware figures then
measure the share of CUI-less gold disorders, not the model)."""

NORMALISATION_OFF = (
    "normalisation off: every disorder is written CUI-less, so the CUI-aware figures "
    "(Task 1, Task B) only measure the CUI-less share"
)


GIVEN_BY_INPUT: dict[str, tuple[str, ...]] = {"semeval2016t12": ("event_span_", "timex3_span_")}
"""Task id -> prefixes of the figures that score annotations a model is GIVEN as input. 2016 T12 is
run in the phase-2 setting (the EVENT and TIMEX3 mentions are given, only relations are
predicted): its decoder copies the gold mentions, so their span scores are 1.0 by construction
and say nothing about the model. :func:`model_metrics` leaves them out of what a model's
evaluation reports; ``mtpeft score`` on a submission keeps them (phase 1 predicts the spans)."""


def model_metrics(task_id: str, metrics: dict[str, float]) -> dict[str, float]:
    """``metrics`` of a model's predictions without the figures of annotations it was given."""
    given = GIVEN_BY_INPUT.get(task_id, ())
    return {k: v for k, v in metrics.items() if not k.startswith(given)} if given else metrics


def headline_metric(task_id: str, metrics: dict[str, float]) -> str:
    """The headline metric name of a task (generic tasks: ``f1`` if present, else the first key)."""
    if task_id in HEADLINE_METRIC:
        return HEADLINE_METRIC[task_id]
    return "f1" if "f1" in metrics else next(iter(sorted(metrics)))


def headline_scores(results: dict[str, dict[str, float]]) -> dict[str, float]:
    """One headline value per task of ``results`` (``{row: metrics}``), component rows left out.

    A row of :data:`COMPONENT_OF` (2021 T6 level 1 and level 2) is left out when the row of its
    task (``semeval2021t6``, the official subtask-2 score) is in ``results``: that row is the
    task's headline for best-checkpoint selection, early stopping and summaries.
    """
    return {
        task: metrics[headline_metric(task, metrics)]
        for task, metrics in results.items()
        if COMPONENT_OF.get(task) not in results
    }


def score(task_id: str, gold: str | Path, pred: str | Path) -> dict[str, float]:
    """Official scores of the predictions at ``pred`` against the gold at ``gold`` for ``task_id``.

    Paths are what the task distributes: a folder of ``.pipe`` notes (2014 T7, 2015 T14), a
    folder of Anafora document folders (2016 T12), a subtask A XML or ``.relevancy`` gold with
    an ``ev.py`` prediction file (2017 T3), a JSON file (2021 T6: ``semeval2021t6`` is the
    official subtask-2 scorer, ``semeval2021t6_level2`` the same formula named as an oracle-span
    score, ``semeval2021t6_level1`` span identification). Bad input raises :class:`~mtpeft.errors.FormatError` naming the file; an
    unknown task id raises :class:`~mtpeft.errors.ConfigError` listing the valid ones.
    """
    try:
        scorer = SCORERS.get(task_id)
    except UnknownNameError as err:
        raise ConfigError(str(err)) from None
    gold, pred = Path(gold), Path(pred)
    for path, role in ((gold, "gold"), (pred, "predictions")):
        if not path.exists():
            raise FormatError(Location(str(path)), f"the {role} path does not exist", "an existing file or folder")
    return scorer(gold, pred)


def _format(name: str) -> ModuleType:
    return importlib.import_module(f"mtpeft.tasks.formats.{name}")


def _read_pipe_folder(path: Path, parse: Callable[[str, int | None, Location], tuple[str, Mention]]) -> list[Document]:
    """Notes under ``path`` from their ``.pipe`` files; the ``.txt`` only bounds-checks offsets.

    A note with a ``.txt`` and no ``.pipe`` is a document without disorders.
    """
    common = _format("_common")
    documents = []
    for name, txt, pipe in common.pair_pipe_files(path):
        text_length = len(common.read_text_exact(txt)) if txt is not None else None
        doc = Document(id=name, text=None, source=str(pipe or txt))
        if pipe is not None:
            for number, line in enumerate(common.read_text_exact(pipe).splitlines(), start=1):
                if line.strip():
                    doc_name, mention = parse(line, text_length, Location(str(pipe), line=number))
                    doc.attributes.setdefault("DocName", doc_name)
                    doc.mentions.append(mention)
        documents.append(doc)
    if not documents:
        raise FormatError(Location(str(path)), "no .pipe or .txt notes found", "a folder of NAME.pipe files")
    return documents


def _parse_2015_task1(line: str, text_length: int | None, loc: Location) -> tuple[str, Mention]:
    """The three fields task1_eval.pl reads (``DocName|Diso_Spans|CUI``); later fields are ignored.

    Accepts the Task 1 submission lines (3 fields) and the full 19-field lines alike.
    """
    common = _format("_common")
    fields = line.rstrip("\r\n").split("|")
    if len(fields) < 3:
        raise FormatError(loc, f"{len(fields)} '|'-separated fields", "DocName|Diso_Spans|CUI[|...]")
    spans = common.parse_dash_spans(fields[1], text_length, loc, "Diso_Spans")
    return fields[0], Mention(id=f"L{loc.line}", spans=spans, label="Disease_Disorder", attributes={"CUI": fields[2]})


Loaded = tuple[list[Document], list[Document]]
LOADERS: dict[str, Callable[[Path, Path], Loaded]] = {}
"""Task id -> how its scorer reads (gold, predictions) into documents; absent for 2016 T12,
which anafora reads itself. Per-document statistics use the same documents the scorer scores."""


def _load_2014(gold: Path, pred: Path) -> Loaded:
    parse = _format("semeval2014t7").parse_line
    return _read_pipe_folder(gold, parse), _read_pipe_folder(pred, parse)


def _load_2015(gold: Path, pred: Path) -> Loaded:
    return _read_pipe_folder(gold, _parse_2015_task1), _read_pipe_folder(pred, _parse_2015_task1)


LOADERS["semeval2014t7"] = _load_2014
LOADERS["semeval2015t14"] = _load_2015


@SCORERS.register("semeval2014t7")
def _score_2014(gold: Path, pred: Path) -> dict[str, float]:
    return semeval2014_scores(*_load_2014(gold, pred))


@SCORERS.register("semeval2015t14")
def _score_2015(gold: Path, pred: Path) -> dict[str, float]:
    return semeval2015_scores(*_load_2015(gold, pred))


@SCORERS.register("semeval2016t12")
def _score_2016(gold: Path, pred: Path) -> dict[str, float]:
    return temporal_scores(gold, pred)


def _questions(candidates_by_qid: dict, source: Path) -> list[Document]:
    return [Document(id=qid, text=None, candidates=list(cands), source=str(source)) for qid, cands in candidates_by_qid.items()]


def _load_2017(gold: Path, pred: Path) -> Loaded:
    fmt = _format("semeval2017t3")
    if gold.is_dir() or gold.suffix.lower() == ".xml":
        gold_docs = fmt.read(gold).documents
    else:  # a .relevancy file: the ev.py columns, gold label true/false
        gold_docs = _questions(fmt.read_relevancy_gold(gold), gold)
    return gold_docs, _questions(fmt.read_predictions(pred), pred)


LOADERS["semeval2017t3"] = _load_2017


@SCORERS.register("semeval2017t3")
def _score_2017(gold: Path, pred: Path) -> dict[str, float]:
    return ranking_scores(*_load_2017(gold, pred))


def _load_2021(gold: Path, pred: Path) -> Loaded:
    fmt = _format("semeval2021t6")
    return fmt.read(gold).documents, fmt.read(pred).documents


def _load_2021_spans(gold: Path, pred: Path) -> Loaded:
    """Level 1's files: its predictions name one merged type, ``PERSUASION``, besides the techniques."""
    fmt = _format("semeval2021t6")
    techniques = (*fmt.TECHNIQUES, fmt.PERSUASION)
    return fmt.read(gold, techniques=techniques).documents, fmt.read(pred, techniques=techniques).documents


@SCORERS.register("semeval2021t6")
def _score_2021(gold: Path, pred: Path) -> dict[str, float]:
    return persuasion_span_scores(*_load_2021(gold, pred), techniques=_format("semeval2021t6").TECHNIQUES)


@SCORERS.register("semeval2021t6_level2")
def _score_2021_oracle_spans(gold: Path, pred: Path) -> dict[str, float]:
    scores = _score_2021(gold, pred)
    return {ORACLE_SPAN_KEYS.get(key, key): value for key, value in scores.items()}


@SCORERS.register("semeval2021t6_level1")
def _score_2021_spans(gold: Path, pred: Path) -> dict[str, float]:
    return span_identification_scores(*_load_2021_spans(gold, pred))


ORACLE_SPAN_KEYS = {key: f"oracle_span_{key}" for key in ("precision", "recall", "f1")}
"""Level 2's own row scores the techniques of the gold spans: its P/R/F1 carry that name."""

LOADERS["semeval2021t6"] = _load_2021
LOADERS["semeval2021t6_level1"] = _load_2021_spans
LOADERS["semeval2021t6_level2"] = _load_2021


def format_table(task_id: str, scores: dict[str, float]) -> str:
    """A readable two-column table: the headline keys first, then the rest in name order."""
    headline = [k for k in HEADLINE_KEYS.get(task_id, ()) if k in scores]
    rest = sorted(k for k in scores if k not in headline)
    width = max((len(k) for k in scores), default=0)
    notes = METRIC_NOTES.get(task_id, {})
    lines = [f"{task_id}"]
    for index, key in enumerate(headline + rest):
        if index == len(headline) and headline and rest:
            lines.append("")
        value = scores[key]
        shown = f"{int(value)}" if float(value).is_integer() and _is_count(key) else f"{value:.4f}"
        lines.append(f"  {key:<{width}}  {shown}" + (f"  ({notes[key]})" if key in notes else ""))
    if scores.get(CUIS_PREDICTED) == 0:
        lines.append(f"  note: {NORMALISATION_OFF}")
    return "\n".join(lines)


def _is_count(key: str) -> bool:
    return key.endswith(("_tp", "_fp", "_fn", "_spans", "questions", "questions_with_good", "documents",
                         "ignored_predictions"))
