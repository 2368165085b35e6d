"""The token classification head."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mtpeft.heads import TokenHead
from mtpeft.tasks.features import IGNORE_INDEX

H, C = 16, 5


@pytest.fixture
def features(make_features):
    return [
        make_features(6, token_labels=[IGNORE_INDEX, 1, 2, 0, 4, IGNORE_INDEX]),
        make_features(3, token_labels=[3, 0, 1], doc_id="short"),
    ]


def test_collate_pads_labels_with_ignore_index(features) -> None:
    batch = TokenHead.collate(features, pad_token_id=0)
    assert batch["labels"].tolist() == [[IGNORE_INDEX, 1, 2, 0, 4, IGNORE_INDEX], [3, 0, 1] + [IGNORE_INDEX] * 3]
    assert batch["input_ids"][1].tolist() == [1, 2, 3, 0, 0, 0]


def test_collate_rejects_label_count_mismatch(make_features) -> None:
    with pytest.raises(ValueError, match="document 'x'.*2 token_labels for 3 input_ids"):
        TokenHead.collate([make_features(3, token_labels=[0, 1], doc_id="x")], 0)


def test_forward_backward_shapes_and_loss(features) -> None:
    head = TokenHead(H, C, dropout=0.0)
    batch = TokenHead.collate(features, 0)
    hidden = torch.randn(2, 6, H, requires_grad=True)
    out = head(hidden, batch)
    assert out.logits.shape == (2, 6, C)
    # mean over the 7 labelled tokens, computed token by token
    labelled = [(b, t, lab) for b, f in enumerate(features) for t, lab in enumerate(f.token_labels) if lab >= 0]
    expected = torch.stack(
        [F.cross_entropy(out.logits[b, t][None], torch.tensor([lab])) for b, t, lab in labelled]
    ).mean()
    assert torch.allclose(out.loss, expected, atol=1e-6)
    assert int(out.stats["labelled_tokens"]) == len(labelled)
    out.loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in head.parameters())


def test_padding_never_contributes(features, assert_padding_inert) -> None:
    assert_padding_inert(TokenHead(H, C, dropout=0.0), TokenHead.collate(features, 0), H)


def test_no_targets_no_loss_and_all_ignored_is_zero(make_features) -> None:
    head = TokenHead(H, C)
    assert head(torch.randn(1, 3, H), TokenHead.collate([make_features(3)], 0)).loss is None
    batch = TokenHead.collate([make_features(3, token_labels=[IGNORE_INDEX] * 3)], 0)
    loss = head(torch.randn(1, 3, H), batch).loss
    assert loss.item() == 0.0 and loss.requires_grad


def test_decode_one_valid_prediction_per_window(features) -> None:
    head = TokenHead(H, C).eval()
    batch = TokenHead.collate(features, 0)
    out = head(torch.randn(2, 6, H), batch)
    predictions = head.decode(out, batch, features)
    assert len(predictions) == 2
    for f, p in zip(features, predictions):
        assert (p.task, p.doc_id, p.window) == (f.task, f.doc_id, f.window)
        assert len(p.token_labels) == len(p.token_confidences) == len(f.input_ids)
        assert all(0 <= lab < C for lab in p.token_labels)
        assert all(1 / C <= c <= 1 for c in p.token_confidences)


def test_overfits_a_tiny_batch(features, overfit) -> None:
    head = TokenHead(H, C, dropout=0.0)
    batch = TokenHead.collate(features, 0)
    hidden = torch.randn(2, 6, H)
    first, last = overfit(head, batch, hidden)
    assert last < 0.05 * first
    predicted = head.decode(head.eval()(hidden, batch), batch, features)
    for f, p in zip(features, predicted):
        gold = [g for g in f.token_labels if g >= 0]
        assert [lab for lab, g in zip(p.token_labels, f.token_labels) if g >= 0] == gold
