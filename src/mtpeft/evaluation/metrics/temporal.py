"""Clinical TempEval 2016 (SemEval-2016 Task 12) scores, computed by ``anafora.evaluate`` itself.

The official evaluation is ``python -m anafora.evaluate`` from the ``anaforatools`` package
(S. Bethard). mtpeft calls the same functions on the same folders:

* EVENT and TIMEX3 span P/R/F1: ``score_dirs(..., include={"EVENT", "TIMEX3"})``, the
  ``(EVENT, "<span>")`` and ``(TIMEX3, "<span>")`` views (exact character spans);
* CONTAINS relations: ``score_dirs(..., include={("TLINK", "Type", "CONTAINS")},
  scores_type=TemporalClosureScores)`` -- the ``--temporal-closure`` option: precision counts
  predicted links found in the closure of the gold links, recall counts gold links found in
  the closure of the predicted ones;
* per-document scores are merged by summing counts, as ``_print_merged_scores`` does; a ratio
  with a zero denominator is 1.0 (anafora's ``Scores``).

No note text is needed: anafora only reads text for ``--verbose`` messages.

mtpeft's model runs in the phase-2 setting (EVENT and TIMEX3 mentions given, relations
predicted) and copies the gold mentions into its predictions, so a model's evaluation leaves the
span figures out (:data:`mtpeft.evaluation.score.GIVEN_BY_INPUT`); scoring a submission keeps them.

Where anafora logs a warning and carries on (a document with no predicted file is scored as
empty, a second XML file is ignored, a self-referential annotation drops the file, a
predicted folder for an unknown document is skipped), mtpeft stops with an error naming the
path, so a number is never computed on silently altered input. Unparseable XML, which makes
anafora crash, is reported the same way.
"""

from __future__ import annotations

import collections
import glob
import importlib
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

import anafora
import anafora.evaluate as anafora_evaluate

from mtpeft.errors import FormatError, Location
from mtpeft.evaluation.metrics._pairing import pair_documents
from mtpeft.tasks.document import Document

XML_NAME_REGEX = "[.]xml$"
"""anafora.evaluate's default ``--xml-name-regex``."""

SPAN_TYPES = ("EVENT", "TIMEX3")
CONTAINS = ("TLINK", "Type", "CONTAINS")


def _load_checked(path: str) -> None:
    try:
        data = anafora.AnaforaData.from_file(path)
    except (ValueError, anafora.ElementTree.ParseError) as err:  # from_file wraps ParseError
        raise FormatError(Location(path), f"unreadable Anafora XML ({err})", "a well-formed Anafora XML file") from None
    try:
        self_reference = data.annotations.find_self_referential()
    except (ValueError, KeyError) as err:
        raise FormatError(Location(path), f"invalid annotations ({err})", "valid Anafora annotations") from None
    if self_reference is not None:
        raise FormatError(
            Location(path, element=self_reference.id), "annotation refers to itself", "no self-referential annotations"
        )


def check_folders(reference_dir: Path, predicted_dir: Path, xml_name_regex: str = XML_NAME_REGEX) -> list[str]:
    """Check that both folders hold exactly one readable XML per document; return the document names.

    Mirrors how ``anafora.evaluate.score_dirs`` finds files (``anafora.walk`` on the
    reference, ``<predicted>/<sub-dir>/<name>*.xml`` for each prediction) so the check
    accepts exactly what it will score.
    """
    for folder, role in ((reference_dir, "gold"), (predicted_dir, "predicted")):
        if not folder.is_dir():
            raise FormatError(Location(str(folder)), f"the {role} Anafora folder does not exist", "a folder of Anafora XML folders")
    reference = list(anafora.walk(str(reference_dir), xml_name_regex))
    if not reference:
        raise FormatError(Location(str(reference_dir)), "no Anafora XML files found", "one folder per document with its .xml")
    names = []
    for sub_dir, text_name, xml_names in reference:
        gold_dir = reference_dir / sub_dir
        if len(xml_names) != 1:
            raise FormatError(Location(str(gold_dir)), f"{len(xml_names)} gold XML files {sorted(xml_names)}", "exactly one")
        _load_checked(str(gold_dir / xml_names[0]))
        pattern = os.path.join(str(predicted_dir), sub_dir, text_name + "*.xml")
        predicted = [f for f in glob.glob(pattern) if re.search(xml_name_regex, f) is not None]
        if len(predicted) != 1:
            found = f"found {sorted(predicted)}" if predicted else "no such file"
            raise FormatError(Location(pattern), f"predicted Anafora XML for {text_name}: {found}", "exactly one file")
        _load_checked(predicted[0])
        names.append(text_name)
    known = set(names)
    for sub_dir, text_name, _ in anafora.walk(str(predicted_dir), xml_name_regex):
        if text_name not in known:
            raise FormatError(
                Location(str(predicted_dir / sub_dir)), f"predictions for {text_name!r}, which is not a gold document",
                "the same documents as the gold folder",
            )
    return names


def _merged(reference_dir: Path, predicted_dir: Path, xml_name_regex: str, **options) -> dict:
    """Run ``score_dirs`` and sum the per-document scores, like ``_print_merged_scores``."""
    scores_type = options.get("scores_type", anafora_evaluate.Scores)
    merged: dict = collections.defaultdict(scores_type)
    for _, named_scores in anafora_evaluate.score_dirs(
        reference_dir=str(reference_dir), predicted_dir=str(predicted_dir), xml_name_regex=xml_name_regex, **options
    ):
        for name, scores in named_scores.items():
            merged[name].update(scores)
    return merged


def temporal_scores(reference_dir: Path, predicted_dir: Path, xml_name_regex: str = XML_NAME_REGEX) -> dict[str, float]:
    """Official Clinical TempEval scores of an Anafora prediction folder against a gold folder.

    Keys: ``event_span_{precision,recall,f1}``, ``timex3_span_{precision,recall,f1}``,
    ``contains_{precision,recall,f1}`` (with temporal closure), and ``documents``.
    """
    reference_dir, predicted_dir = Path(reference_dir), Path(predicted_dir)
    names = check_folders(reference_dir, predicted_dir, xml_name_regex)
    spans = _merged(reference_dir, predicted_dir, xml_name_regex, include=set(SPAN_TYPES))
    links = _merged(
        reference_dir, predicted_dir, xml_name_regex,
        include={CONTAINS}, scores_type=anafora_evaluate.TemporalClosureScores,
    )
    result: dict[str, float] = {"documents": float(len(names))}
    for prefix, scores in (
        ("event_span_", spans[("EVENT", "<span>")]),
        ("timex3_span_", spans[("TIMEX3", "<span>")]),
        ("contains_", links[CONTAINS]),
    ):
        result[prefix + "precision"] = scores.precision()
        result[prefix + "recall"] = scores.recall()
        result[prefix + "f1"] = scores.f1()
    return result


def temporal_scores_from_documents(gold: Sequence[Document], pred: Sequence[Document]) -> dict[str, float]:
    """The same scores for in-memory documents (e.g. a model's predictions before writing them).

    Both sides are written as Anafora folders with the 2016 T12 format writer into a
    temporary folder and scored by :func:`temporal_scores`, so the numbers are those of
    ``anafora.evaluate`` on the files a user would submit. Ids must match one to one.
    """
    pair_documents(gold, pred)  # clear errors for mismatched ids before anything is written
    writer = importlib.import_module("mtpeft.tasks.formats.semeval2016t12")
    with tempfile.TemporaryDirectory(prefix="mtpeft-anafora-") as tmp:
        gold_dir, pred_dir = Path(tmp) / "gold", Path(tmp) / "pred"
        writer.write(gold, gold_dir)
        writer.write(pred, pred_dir, xml_suffix="Temporal-Relation.system.completed.xml")
        return temporal_scores(gold_dir, pred_dir)
