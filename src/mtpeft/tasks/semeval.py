"""The six SemEval tasks of the study, registered by id in :data:`~mtpeft.tasks.registry.TASKS`.

Each is a factory whose keyword arguments are the task's options (a config sets them). Design
choices (measured figures: ``docs/generic-formats.md`` and ``mtpeft data stats``):

* ``semeval2014t7``: token head, ``biohd`` tags (BIO + discontiguous/head fragments), so the
  discontiguous disorders of ShARe/CLEF can be carried; ``bio`` is available to compare.
* ``semeval2015t14``: span head; fragments of up to ``max_span_len`` tokens, links between the
  consecutive fragments of a discontiguous disorder.
* both disorder tasks normalise by default (``normalise: true``): every predicted disorder gets a
  CUI or ``CUI-less`` (Task B of 2014, Task 1 of 2015 count it) from a CUI classifier in the head,
  trained with the spans, over the training CUIs seen ``cui_min_count`` times, and from lexicons
  (the training data's, then ``lexicon``, a user's ``text<TAB>CUI`` file) where the classifier's
  probability is below ``cui_threshold`` (:mod:`mtpeft.tasks.normalisation`). ``normalise: false``
  gives the span-only tasks (every disorder written ``CUI-less``).
* ``semeval2021t6_level1``: token head, BIO over ONE type ``PERSUASION`` by default: the techniques
  of a meme overlap heavily (75% of the spans of the official training file overlap another), a
  single tag per token cannot carry them, and collapsing them keeps more: after the encode/decode
  round trip with the SmolLM2 tokenizer, level 1 gives level 2 the exact extents of 1,066 of the
  1,498 gold spans, where BIO over the techniques gets 927 spans back exactly. Level 2
  then types each span (decoded mentions are labelled ``PERSUASION``: level 2's input, written and
  read back in the 2021 JSON, but not a file for the official scorer, which needs techniques).
  ``tagging="technique"`` tags the 20 techniques instead.
* ``semeval2016t12``: relation head between gold EVENT, TIMEX3 and SECTIONTIME mentions (12 of the
  242 CONTAINS links of the public annotations start at a SECTIONTIME); label CONTAINS only, other
  TLINK types and ALINKs count as ``label_not_kept`` unless ``relation_labels`` keeps them.
* ``semeval2017t3``: ranking head, grades Bad < PotentiallyUseful < Good.
* ``semeval2021t6_level2``: relation head in single mode, multi-label: the techniques of each
  distinct span extent (one sigmoid per technique, threshold chosen on dev). Level 1 then level 2
  make subtask 2 (:mod:`mtpeft.evaluation.subtask2`, the ``semeval2021t6`` row).
* ``semeval2017t3`` reads the plain and the ``-with-multiline`` XML (``comment_text``).
"""

from __future__ import annotations

from collections.abc import Sequence

from mtpeft.errors import ConfigError
from mtpeft.tasks.base import TASKS, OfficialFormat
from mtpeft.tasks.document import Relation
from mtpeft.tasks.formats.semeval2021t6 import PERSUASION, TECHNIQUES
from mtpeft.tasks.normalisation.normaliser import CuiNormaliser
from mtpeft.tasks.ranking_task import RankingTask
from mtpeft.tasks.relation_task import RelationTask
from mtpeft.tasks.span_task import SpanTask
from mtpeft.tasks.token_task import TokenTask
from mtpeft.tasks.typing_task import SpanTypingTask

DISORDER = "Disease_Disorder"
RELEVANCE_GRADES = ("Bad", "PotentiallyUseful", "Good")
TEMPORAL_ENTITY_TYPES = ("EVENT", "TIMEX3", "SECTIONTIME")


def _normaliser(
    task_id: str, normalise: bool, cui_min_count: int, cui_threshold: float, lexicon: str | None
) -> CuiNormaliser | None:
    if not isinstance(normalise, bool):
        raise ConfigError(f"task {task_id!r}: normalise must be true or false, got {normalise!r}")
    if not normalise:
        if lexicon is not None:
            raise ConfigError(f"task {task_id!r}: a lexicon is given but normalise is false; drop one of them")
        return None
    return CuiNormaliser(task_id, cui_min_count, cui_threshold, lexicon)


@TASKS.register("semeval2014t7")
def semeval2014t7(
    scheme: str = "biohd",
    max_length: int = 512,
    stride: int | None = None,
    normalise: bool = True,
    cui_min_count: int = 2,
    cui_threshold: float = 0.5,
    lexicon: str | None = None,
) -> TokenTask:
    """Disorder mentions (ShARe/CLEF), tagged with a discontiguous-capable scheme, and their CUIs."""
    normaliser = _normaliser("semeval2014t7", normalise, cui_min_count, cui_threshold, lexicon)
    return TokenTask(
        "semeval2014t7", 1, [DISORDER], OfficialFormat("semeval2014t7"), scheme, None, max_length, stride, normaliser
    )


@TASKS.register("semeval2015t14")
def semeval2015t14(
    max_span_len: int = 8,
    max_length: int = 512,
    stride: int | None = None,
    normalise: bool = True,
    cui_min_count: int = 2,
    cui_threshold: float = 0.5,
    lexicon: str | None = None,
) -> SpanTask:
    """Disorder mentions as enumerated spans + fragment links, and their CUIs."""
    normaliser = _normaliser("semeval2015t14", normalise, cui_min_count, cui_threshold, lexicon)
    return SpanTask(
        "semeval2015t14", 1, [DISORDER], OfficialFormat("semeval2015t14"), max_span_len, max_length, stride, normaliser
    )


@TASKS.register("semeval2021t6_level1")
def semeval2021t6_level1(
    tagging: str = "persuasion", scheme: str = "bio", max_length: int = 512, stride: int | None = None
) -> TokenTask:
    """Persuasion spans in memes: one ``PERSUASION`` type (default) or the 20 techniques."""
    if tagging not in ("persuasion", "technique"):
        raise ConfigError(f"semeval2021t6_level1: unknown tagging {tagging!r}; valid choices: persuasion, technique")
    collapse = PERSUASION if tagging == "persuasion" else None
    # its own predictions (PERSUASION spans) must read back; gold files never use the name
    data_format = OfficialFormat("semeval2021t6", {"techniques": (*TECHNIQUES, PERSUASION)} if collapse else None)
    return TokenTask("semeval2021t6_level1", 1, TECHNIQUES, data_format, scheme, collapse, max_length, stride)


def _is_tlink(relation: Relation) -> bool:
    return relation.attributes.get("@type", "TLINK") == "TLINK"


@TASKS.register("semeval2016t12")
def semeval2016t12(
    relation_labels: Sequence[str] = ("CONTAINS",),
    entity_types: Sequence[str] = TEMPORAL_ENTITY_TYPES,
    relation_window: int | None = 128,
    max_length: int = 512,
    stride: int | None = None,
) -> RelationTask:
    """TLINKs (CONTAINS by default) between gold temporal entities."""
    return RelationTask(
        "semeval2016t12", 2, list(relation_labels), OfficialFormat("semeval2016t12"), list(entity_types),
        relation_window, _is_tlink, max_length, stride,
    )  # fmt: skip


@TASKS.register("semeval2017t3")
def semeval2017t3(separator: str = "\n\n", max_length: int = 512, comment_text: str = "clean") -> RankingTask:
    """Question-comment relevance (Qatar Living, subtask A). ``comment_text`` (``clean`` or
    ``body``): which element a ``-with-multiline`` file's comments are read from."""
    if comment_text not in ("clean", "body"):
        raise ConfigError(f"semeval2017t3: unknown comment_text {comment_text!r}; valid choices: clean, body")
    data_format = OfficialFormat("semeval2017t3", {"comment_text": comment_text})
    return RankingTask("semeval2017t3", 2, RELEVANCE_GRADES, data_format, separator, max_length)


@TASKS.register("semeval2021t6_level2")
def semeval2021t6_level2(
    max_length: int = 512, stride: int | None = None, threshold: float | None = None
) -> SpanTypingTask:
    """The techniques of each persuasion span (multi-label, once per distinct extent); ``threshold``
    ``None`` (default): the sigmoid threshold is chosen on dev by evaluation."""
    # level 1's output (PERSUASION spans) must read: spans of any label are spans to type
    data_format = OfficialFormat("semeval2021t6", {"techniques": (*TECHNIQUES, PERSUASION)})
    return SpanTypingTask("semeval2021t6_level2", 2, TECHNIQUES, data_format, max_length, stride, threshold)
