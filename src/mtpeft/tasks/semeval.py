"""The six SemEval tasks of the study, registered by id in :data:`~mtpeft.tasks.registry.TASKS`.

Each is a factory whose keyword arguments are the task's options (a config sets them). Design
choices (measured figures: ``docs/generic-formats.md`` and ``mtpeft data stats``):

* ``semeval2014t7``: token head, ``biohd`` tags (BIO + discontiguous/head fragments), so the
  discontiguous disorders of ShARe/CLEF can be carried; ``bio`` is available to compare.
* ``semeval2015t14``: span head; fragments of up to ``max_span_len`` tokens, links between the
  consecutive fragments of a discontiguous disorder.
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
* ``semeval2021t6_level2``: relation head in single mode, one technique per span.
"""

from __future__ import annotations

from collections.abc import Sequence

from mtpeft.errors import ConfigError
from mtpeft.tasks.base import TASKS, OfficialFormat
from mtpeft.tasks.document import Relation
from mtpeft.tasks.formats.semeval2021t6 import TECHNIQUES
from mtpeft.tasks.ranking_task import RankingTask
from mtpeft.tasks.relation_task import RelationTask
from mtpeft.tasks.span_task import SpanTask
from mtpeft.tasks.token_task import TokenTask
from mtpeft.tasks.typing_task import SpanTypingTask

DISORDER = "Disease_Disorder"
PERSUASION = "PERSUASION"
RELEVANCE_GRADES = ("Bad", "PotentiallyUseful", "Good")
TEMPORAL_ENTITY_TYPES = ("EVENT", "TIMEX3", "SECTIONTIME")


@TASKS.register("semeval2014t7")
def semeval2014t7(scheme: str = "biohd", max_length: int = 512, stride: int | None = None) -> TokenTask:
    """Disorder mentions (ShARe/CLEF), tagged with a discontiguous-capable scheme."""
    return TokenTask("semeval2014t7", 1, [DISORDER], OfficialFormat("semeval2014t7"), scheme, None, max_length, stride)


@TASKS.register("semeval2015t14")
def semeval2015t14(max_span_len: int = 8, max_length: int = 512, stride: int | None = None) -> SpanTask:
    """Disorder mentions as enumerated spans + fragment links."""
    return SpanTask("semeval2015t14", 1, [DISORDER], OfficialFormat("semeval2015t14"), max_span_len, max_length, stride)


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
def semeval2017t3(separator: str = "\n\n", max_length: int = 512) -> RankingTask:
    """Question-comment relevance (Qatar Living, subtask A)."""
    return RankingTask("semeval2017t3", 2, RELEVANCE_GRADES, OfficialFormat("semeval2017t3"), separator, max_length)


@TASKS.register("semeval2021t6_level2")
def semeval2021t6_level2(max_length: int = 512, stride: int | None = None) -> SpanTypingTask:
    """The technique of each persuasion span."""
    return SpanTypingTask("semeval2021t6_level2", 2, TECHNIQUES, OfficialFormat("semeval2021t6"), max_length, stride)
