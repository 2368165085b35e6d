"""The ranking head: pooling of a decoder's states, relevance levels and the ranking score."""

from __future__ import annotations

import pytest
import torch

from mtpeft.heads import RELEVANCE_LEVELS, RankingHead, pool_hidden

H, C = 16, len(RELEVANCE_LEVELS)


@pytest.fixture
def features(make_features):
    return [
        make_features(7, rank_label=2, group_id="Q1", candidate_id="Q1_C1"),
        make_features(4, rank_label=0, group_id="Q1", candidate_id="Q1_C2"),
        make_features(2, rank_label=1, group_id="Q2", candidate_id="Q2_C1"),
    ]


def test_relevance_levels_ordered_by_relevance() -> None:
    assert RELEVANCE_LEVELS == ("Bad", "PotentiallyUseful", "Good")


def test_last_pooling_picks_the_last_non_pad_token(features) -> None:
    batch = RankingHead.collate(features, pad_token_id=0)  # right padding
    B, T = batch["input_ids"].shape
    position = torch.arange(T, dtype=torch.float)[None, :, None].expand(B, T, H)
    pooled = pool_hidden(position, batch["attention_mask"], "last")
    assert pooled[:, 0].tolist() == [6.0, 3.0, 1.0]
    left = batch["attention_mask"].flip(1)  # also right for left padding
    assert pool_hidden(position, left, "last")[:, 0].tolist() == [T - 1] * 3


def test_mean_pooling_averages_attended_tokens(features) -> None:
    batch = RankingHead.collate(features, 0)
    hidden = torch.randn(3, 7, H)
    pooled = pool_hidden(hidden, batch["attention_mask"], "mean")
    for b, f in enumerate(features):
        assert torch.allclose(pooled[b], hidden[b, : len(f.input_ids)].mean(0), atol=1e-6)


def test_last_pooling_head_sees_only_the_last_token(features) -> None:
    head = RankingHead(H, C).eval()
    batch = RankingHead.collate(features, 0)
    hidden = torch.randn(3, 7, H)
    logits = head(hidden, batch).logits
    earlier = hidden.clone()
    earlier[1, :3] += 5.0  # every token of row 1 but its last (index 3)
    assert torch.equal(head(earlier, batch).logits, logits)
    last = hidden.clone()
    last[1, 3] += 5.0
    changed = head(last, batch).logits
    assert not torch.allclose(changed[1], logits[1]) and torch.equal(changed[[0, 2]], logits[[0, 2]])


def test_collate_labels(features, make_features) -> None:
    assert RankingHead.collate(features, 0)["rank_labels"].tolist() == [2, 0, 1]
    assert "rank_labels" not in RankingHead.collate([make_features(3)], 0)


@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_forward_backward(features, pooling) -> None:
    head = RankingHead(H, C, pooling=pooling, dropout=0.0)
    batch = RankingHead.collate(features, 0)
    out = head(torch.randn(3, 7, H, requires_grad=True), batch)
    assert out.logits.shape == (3, C) and out.tensors["score"].shape == (3,)
    assert torch.allclose(out.loss, torch.nn.functional.cross_entropy(out.logits, torch.tensor([2, 0, 1])))
    out.loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in head.parameters())


@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_padding_never_contributes(features, pooling, assert_padding_inert) -> None:
    assert_padding_inert(RankingHead(H, C, pooling=pooling, dropout=0.0), RankingHead.collate(features, 0), H)


def test_scores() -> None:
    logits = torch.tensor([[0.0, 0.0, 0.0], [5.0, 0.0, -5.0], [-5.0, 0.0, 5.0], [1.0, 2.0, 0.5]])
    probs = logits.softmax(-1)
    top = RankingHead(H, C, score="top").ranking_score(logits)
    assert torch.allclose(top, probs[:, 2])
    expected = RankingHead(H, C, score="expected").ranking_score(logits)
    assert torch.allclose(expected, probs[:, 1] * 0.5 + probs[:, 2])
    assert ((0 <= expected) & (expected <= 1)).all() and expected[2] > expected[3] > expected[1]


def test_decode(features) -> None:
    head = RankingHead(H, C).eval()
    batch = RankingHead.collate(features, 0)
    predictions = head.decode(head(torch.randn(3, 7, H), batch), batch, features)
    assert [(p.group_id, p.candidate_id) for p in predictions] == [(f.group_id, f.candidate_id) for f in features]
    for p in predictions:
        assert len(p.rank_probs) == C and abs(sum(p.rank_probs) - 1) < 1e-5
        assert all(0 <= q <= 1 for q in p.rank_probs) and p.rank_score == pytest.approx(p.rank_probs[-1])


def test_overfits_a_tiny_batch(features, overfit) -> None:
    head = RankingHead(H, C, dropout=0.0)
    batch = RankingHead.collate(features, 0)
    hidden = torch.randn(3, 7, H)
    first, last = overfit(head, batch, hidden)
    assert last < 0.05 * first
    predictions = head.decode(head.eval()(hidden, batch), batch, features)
    assert [max(range(C), key=p.rank_probs.__getitem__) for p in predictions] == [2, 0, 1]
