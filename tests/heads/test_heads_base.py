"""The head factory, the registry and the collate helpers shared by all heads."""

from __future__ import annotations

import pytest
import torch

from mtpeft.errors import ConfigError
from mtpeft.heads import HEADS, RankingHead, RelationHead, SpanHead, TaskHead, TokenHead, create_task_head
from mtpeft.heads.base import collate_inputs, targets_present
from mtpeft.registry import UnknownNameError


@pytest.mark.parametrize(
    ("kind", "cls"), [("token", TokenHead), ("span", SpanHead), ("relation", RelationHead), ("ranking", RankingHead)]
)
def test_factory_builds_each_kind(kind: str, cls: type) -> None:
    head = create_task_head(kind, hidden_size=8, num_labels=3)
    assert type(head) is cls and isinstance(head, TaskHead) and head.kind == kind
    assert head.hidden_size == 8 and head.num_labels == 3
    assert head.num_parameters() == sum(p.numel() for p in head.parameters()) > 0


def test_registry_lists_exactly_the_four_kinds() -> None:
    assert HEADS.names() == ["ranking", "relation", "span", "token"]


def test_unknown_kind_lists_choices() -> None:
    with pytest.raises(UnknownNameError, match="valid choices: ranking, relation, span, token"):
        create_task_head("crf", 8, 3)


def test_unknown_option_lists_valid_options() -> None:
    with pytest.raises(ConfigError, match="max_span_lenght.*valid options: max_span_len"):
        create_task_head("span", 8, 3, max_span_lenght=4)


def test_options_reach_the_head() -> None:
    head = create_task_head("relation", 8, 2, pair_mode="single", window=5)
    assert head.pair_mode == "single" and head.window == 5


@pytest.mark.parametrize(
    ("kind", "options"),
    [
        ("span", {"max_span_len": 0}),
        ("span", {"link_threshold": 1.0}),
        ("relation", {"pair_mode": "triple"}),
        ("relation", {"window": -1}),
        ("ranking", {"pooling": "cls"}),
        ("ranking", {"score": "median"}),
        ("token", {}),
    ],
)
def test_invalid_option_values_raise_config_error(kind: str, options: dict) -> None:
    with pytest.raises(ConfigError):
        create_task_head(kind, 8, 0 if kind == "token" else 3, **options)


def test_num_parameters_trainable_only() -> None:
    head = create_task_head("span", 8, 2)
    head.classifier.requires_grad_(False)
    frozen = sum(p.numel() for p in head.classifier.parameters())
    assert head.num_parameters(trainable_only=True) == head.num_parameters() - frozen


def test_collate_inputs_pads_right(make_features) -> None:
    batch = collate_inputs([make_features(3), make_features(5), make_features(1)], pad_token_id=7)
    assert batch["input_ids"].tolist() == [[1, 2, 3, 7, 7], [1, 2, 3, 4, 5], [1, 7, 7, 7, 7]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]]
    assert batch["input_ids"].dtype == batch["attention_mask"].dtype == torch.long


def test_collate_rejects_bad_batches(make_features) -> None:
    with pytest.raises(ValueError, match="empty list"):
        collate_inputs([], 0)
    other = make_features(2)
    other.task = "other"
    with pytest.raises(ValueError, match="one task"):
        collate_inputs([make_features(2), other], 0)
    bad = make_features(3, doc_id="d7")
    bad.token_offsets = bad.token_offsets[:2]
    with pytest.raises(ValueError, match="document 'd7'.*2 token_offsets for 3 input_ids"):
        collate_inputs([bad], 0)


def test_targets_all_or_none(make_features) -> None:
    assert targets_present([make_features(2, rank_label=1), make_features(2, rank_label=0)], "rank_label")
    assert not targets_present([make_features(2), make_features(2)], "rank_label")
    with pytest.raises(ValueError, match="document 'b'.*rank_label is None"):
        targets_present([make_features(2, rank_label=1), make_features(2, doc_id="b")], "rank_label")
