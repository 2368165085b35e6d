"""The task registry: the six SemEval ids, their level and head kind, options and errors."""

from __future__ import annotations

import pytest

from mtpeft.errors import ConfigError
from mtpeft.registry import UnknownNameError
from mtpeft.tasks.registry import TASKS, get_task, task_options

# The mapping table at the end of FORMATS.md.
MAPPING = {
    "semeval2014t7": (1, "token"),
    "semeval2015t14": (1, "span"),
    "semeval2021t6_level1": (1, "token"),
    "semeval2016t12": (2, "relation"),
    "semeval2017t3": (2, "ranking"),
    "semeval2021t6_level2": (2, "relation"),
}


def test_registry_holds_exactly_the_six_tasks() -> None:
    assert set(TASKS.names()) == set(MAPPING)


@pytest.mark.parametrize("task_id", sorted(MAPPING))
def test_level_head_kind_and_labels(task_id: str) -> None:
    task = get_task(task_id)
    assert (task.id, task.level, task.head_kind) == (task_id, *MAPPING[task_id])
    assert task.labels and len(set(task.labels)) == len(task.labels)


def test_label_sets() -> None:
    assert get_task("semeval2014t7").labels[0] == "O"
    assert {"DB-Disease_Disorder", "HB-Disease_Disorder"} <= set(get_task("semeval2014t7").labels)
    assert get_task("semeval2014t7", scheme="bio").labels == ["O", "B-Disease_Disorder", "I-Disease_Disorder"]
    assert get_task("semeval2021t6_level1").labels == ["O", "B-PERSUASION", "I-PERSUASION"]
    assert len(get_task("semeval2021t6_level1", tagging="technique").labels) == 1 + 2 * 20
    assert get_task("semeval2016t12").labels == ["CONTAINS"]  # "no relation" is the head's own column
    assert get_task("semeval2017t3").labels == ["Bad", "PotentiallyUseful", "Good"]
    assert len(get_task("semeval2021t6_level2").labels) == 20


def test_unknown_id_lists_valid_ids() -> None:
    with pytest.raises(UnknownNameError) as err:
        get_task("semeval2099")
    for task_id in MAPPING:
        assert task_id in str(err.value)


def test_options_are_constructor_arguments() -> None:
    task = get_task("semeval2015t14", max_span_len=5, max_length=64, stride=16)
    assert (task.max_span_len, task.max_length, task.stride) == (5, 64, 16)
    assert task.head_options() == {"max_span_len": 5, "cui_classes": 2}  # CUI-less and <other> before fitting
    assert get_task("semeval2015t14", max_span_len=5, normalise=False).head_options() == {"max_span_len": 5}
    relation = get_task("semeval2016t12", relation_window=40, relation_labels=["CONTAINS", "OVERLAP"])
    assert relation.head_options() == {"pair_mode": "pair", "window": 40}
    assert relation.labels == ["CONTAINS", "OVERLAP"]
    assert get_task("semeval2021t6_level2").head_options() == {"pair_mode": "single"}
    assert "scheme" in task_options("semeval2014t7")


@pytest.mark.parametrize(
    ("task_id", "options", "message"),
    [
        ("semeval2014t7", {"colour": "red"}, "valid options: scheme"),
        ("semeval2014t7", {"scheme": "bioes"}, "valid choices: bio, biohd"),
        ("semeval2014t7", {"stride": 512}, "stride"),
        ("semeval2015t14", {"max_span_len": 0}, "max_span_len"),
        ("semeval2016t12", {"relation_window": -1}, "relation_window"),
        ("semeval2021t6_level1", {"tagging": "both"}, "persuasion, technique"),
    ],
)
def test_bad_options_are_config_errors(task_id: str, options: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        get_task(task_id, **options)
