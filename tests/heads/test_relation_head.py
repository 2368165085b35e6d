"""The relation head: windowed pair candidates, biaffine scoring, single-span mode, decoding."""

from __future__ import annotations

import itertools

import pytest
import torch

from mtpeft.heads import RelationHead, entity_distance

H, C = 16, 2


def test_entity_distance_by_hand() -> None:
    starts, ends = torch.tensor([0, 2, 3, 9]), torch.tensor([1, 2, 5, 9])
    d = entity_distance(starts, ends)
    assert d[0, 1] == d[1, 0] == 1  # adjacent
    assert d[1, 2] == 1 and d[0, 2] == 2
    assert d[2, 3] == 4 and d[0, 3] == 8
    assert (d.diagonal() == 0).all()
    assert entity_distance(torch.tensor([0, 2]), torch.tensor([5, 3]))[0, 1] == 0  # nested


@pytest.fixture
def features(make_features):
    # distances (window 3): e0-e1 = 2, e0-e2 = 5, e1-e2 = 3, e0-e3 = 8, e1-e3 = 6, e2-e3 = 3
    return [
        make_features(
            12,
            entities=[(0, 1), (3, 3), (6, 7), (9, 10)],
            relations=[(0, 1, 0), (2, 0, 1), (3, 2, 1), (1, 3, 0)],
        ),
        make_features(5, entities=[(1, 1), (3, 4)], relations=[(1, 0, 1)], doc_id="short"),
    ]


def test_collate(features) -> None:
    batch = RelationHead.collate(features, 0)
    assert batch["entity_spans"].tolist() == [[[0, 1], [3, 3], [6, 7], [9, 10]], [[1, 1], [3, 4], [-1, -1], [-1, -1]]]
    assert batch["entity_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 0, 0]]
    assert batch["relation_gold"][1].tolist() == [[1, 0, 1]] + [[-1, -1, -1]] * 3


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"relations": [(1, 1, 0)]}, "relation \\(1, 1, 0\\)"),
        ({"relations": [(0, 5, 0)]}, "relation \\(0, 5, 0\\)"),
        ({"entities": [(3, 12)], "relations": []}, "entity token range"),
        ({"entities": None}, "entities is None"),
        ({"entity_label_sets": [(0,)]}, "1 entity_label_sets for 2 entities"),
        ({"entity_label_sets": [(0,), (-1,)]}, "negative label id"),
    ],
)
def test_collate_rejects_bad_input(make_features, change: dict, message: str) -> None:
    fields = {"entities": [(0, 0), (2, 2)], "relations": [(0, 1, 0)]} | change
    with pytest.raises(ValueError, match=message):
        RelationHead.collate([make_features(6, **fields)], 0)


def test_window_counting_by_hand(features) -> None:
    out = RelationHead(H, C, window=3)(torch.randn(2, 12, H), RelationHead.collate(features, 0))
    # window 0: of 12 ordered pairs, (0,1) (1,2) (2,3) both ways are within 3; window 1: 2 pairs at distance 2
    assert int(out.stats["candidate_pairs"]) == 6 + 2
    assert int(out.stats["pairs_outside_window"]) == 6
    assert int(out.stats["gold_pairs"]) == 5
    assert int(out.stats["gold_pairs_outside_window"]) == 2  # (2, 0) at 5 and (1, 3) at 6
    assert {tuple(p) for p in out.tensors["pair_index"].tolist()} == {
        (0, 0, 1), (0, 1, 0), (0, 1, 2), (0, 2, 1), (0, 2, 3), (0, 3, 2), (1, 0, 1), (1, 1, 0)
    }


@pytest.mark.parametrize("window", [None, 0, 1, 4, 20])
def test_window_counting_matches_a_naive_loop(make_features, window) -> None:
    generator = torch.Generator().manual_seed(window or 0)
    features = []
    for n in (30, 22, 9):
        entities = []
        for _ in range(6):
            start = int(torch.randint(0, n - 3, (1,), generator=generator))
            entities.append((start, start + int(torch.randint(0, 3, (1,), generator=generator))))
        relations = [(h, t, 0) for h, t in itertools.permutations(range(6), 2) if (h + 2 * t) % 5 == 0]
        features.append(make_features(n, entities=entities, relations=relations))
    out = RelationHead(H, C, window=window)(torch.randn(3, 30, H), RelationHead.collate(features, 0))

    def within(f, h, t) -> bool:
        (s1, e1), (s2, e2) = f.entities[h], f.entities[t]
        return window is None or max(0, max(s1, s2) - min(e1, e2)) <= window

    pairs = {
        (b, h, t) for b, f in enumerate(features) for h, t in itertools.permutations(range(6), 2) if within(f, h, t)
    }
    assert {tuple(p) for p in out.tensors["pair_index"].tolist()} == pairs
    outside = sum(not within(f, h, t) for f in features for h, t, _ in f.relations)
    assert int(out.stats["gold_pairs_outside_window"]) == outside
    assert int(out.stats["gold_pairs"]) == sum(len(f.relations) for f in features)


def test_forward_backward_and_batched_scores_equal_per_pair(features) -> None:
    head = RelationHead(H, C, window=None, dropout=0.0)
    batch = RelationHead.collate(features, 0)
    hidden = torch.randn(2, 12, H, requires_grad=True)
    out = head(hidden, batch)
    P = 12 + 2
    assert out.logits.shape == (P, C + 1) and out.tensors["pair_index"].shape == (P, 3)
    for b, i, j in out.tensors["pair_index"].tolist()[:5] + out.tensors["pair_index"].tolist()[-2:]:
        (hs, he), (ts, te) = features[b].entities[i], features[b].entities[j]
        one = torch.tensor([[[hs, he], [ts, te]]])
        head_vec, _ = head._entity_repr(hidden[b : b + 1], one[:, :1])
        _, tail_vec = head._entity_repr(hidden[b : b + 1], one[:, 1:])
        # reference: torch's own nn.Bilinear on this one pair
        reference = head.bilinear(head_vec, tail_vec) + head.linear(torch.cat([head_vec, tail_vec], -1))
        row = (out.tensors["pair_index"] == torch.tensor([b, i, j])).all(1).nonzero().item()
        assert torch.allclose(out.logits[row], reference[0, 0], atol=1e-5)
    out.loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in head.parameters())


def test_duplicate_gold_pairs_counted(make_features) -> None:
    f = make_features(6, entities=[(0, 0), (2, 2)], relations=[(0, 1, 0), (0, 1, 1), (1, 0, 0)])
    out = RelationHead(H, C)(torch.randn(1, 6, H), RelationHead.collate([f], 0))
    assert int(out.stats["gold_pairs_duplicate"]) == 1


def test_no_entities_gives_a_zero_loss(make_features) -> None:
    f = make_features(4, entities=[], relations=[])
    out = RelationHead(H, C)(torch.randn(1, 4, H), RelationHead.collate([f], 0))
    assert out.logits.shape == (0, C + 1) and out.loss.item() == 0.0 and out.loss.requires_grad


@pytest.fixture
def single_features(make_features):
    # multi-label: an extent with two labels, one with one, one with none; a window with one extent
    return [
        make_features(8, entities=[(0, 2), (4, 4), (5, 7)], entity_label_sets=[(0, 1), (1,), ()]),
        make_features(4, entities=[(1, 3)], entity_label_sets=[(0,)], doc_id="short"),
    ]


def test_single_mode_collates_label_sets(single_features) -> None:
    batch = RelationHead.collate(single_features, 0)
    assert batch["entity_label_sets"].tolist() == [[[0, 1], [1, -1], [-1, -1]], [[0, -1], [-1, -1], [-1, -1]]]


def test_single_mode_forward_backward(single_features) -> None:
    head = RelationHead(H, C, pair_mode="single", dropout=0.0)
    batch = RelationHead.collate(single_features, 0)
    hidden = torch.randn(2, 8, H, requires_grad=True)
    out = head(hidden, batch)
    assert out.logits.shape == (2, 3, C)  # one sigmoid per label, no "none" column
    head_vec, tail_vec = head._entity_repr(hidden, batch["entity_spans"])  # same entity as head and tail
    reference = head.bilinear(head_vec, tail_vec) + head.linear(torch.cat([head_vec, tail_vec], -1))
    mask = batch["entity_mask"].bool()
    assert torch.allclose(out.logits[mask], reference[mask], atol=1e-5)
    # the loss is binary cross-entropy summed over every (entity, label): 4 entities x C labels
    targets = torch.tensor([[1.0, 1.0], [0.0, 1.0], [0.0, 0.0], [1.0, 0.0]])
    expected = torch.nn.functional.binary_cross_entropy_with_logits(out.logits[mask], targets, reduction="sum")
    term = out.loss_terms["entity_bce"]
    assert torch.allclose(term.total, expected) and int(term.units) == 4 * C
    assert head.loss_units(batch) == {"entity_bce": 4 * C}
    assert int(out.stats["gold_labels"]) == 4
    out.loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in head.parameters())


@pytest.mark.parametrize("mode", ["pair", "single"])
def test_padding_never_contributes(mode, features, single_features, assert_padding_inert) -> None:
    chosen = features if mode == "pair" else single_features
    head = RelationHead(H, C, pair_mode=mode, dropout=0.0)
    assert_padding_inert(head, RelationHead.collate(chosen, 0), H)


def test_decode_pairs_valid(features) -> None:
    head = RelationHead(H, C, window=3).eval()
    batch = RelationHead.collate(features, 0)
    out = head(torch.randn(2, 12, H), batch)
    predictions = head.decode(out, batch, features)
    assert len(predictions) == 2 and predictions[1].doc_id == "short"
    allowed = {(b, i, j) for b, i, j in out.tensors["pair_index"].tolist()}
    for b, (f, p) in enumerate(zip(features, predictions)):
        for h, t, label, confidence in p.relations:
            assert (b, h, t) in allowed and 0 <= label < C and 1 / (C + 1) <= confidence <= 1


def test_overfits_and_decodes_the_gold(features, overfit) -> None:
    head = RelationHead(H, C, window=None, entity_dim=32, dropout=0.0)
    batch = RelationHead.collate(features, 0)
    hidden = torch.randn(2, 12, H)
    first, last = overfit(head, batch, hidden)
    assert last < 0.05 * first
    predictions = head.decode(head.eval()(hidden, batch), batch, features)
    for f, p in zip(features, predictions):
        assert sorted(r[:3] for r in p.relations) == sorted(f.relations)


def test_single_mode_overfits_and_decodes(single_features, overfit) -> None:
    head = RelationHead(H, C, pair_mode="single", entity_dim=32, dropout=0.0)
    batch = RelationHead.collate(single_features, 0)
    hidden = torch.randn(2, 8, H)
    first, last = overfit(head, batch, hidden)
    assert last < 0.05 * first
    predictions = head.decode(head.eval()(hidden, batch), batch, single_features)
    for f, p in zip(single_features, predictions):
        # every label of each extent's set, and only those, is on the right side of 0.5
        assert [tuple(i for i, q in enumerate(probs) if q >= 0.5) for probs in p.entity_probs] == f.entity_label_sets
        assert all(0 <= q <= 1 for probs in p.entity_probs for q in probs)
        assert [label for label, _ in p.entity_labels] == [max(range(C), key=probs.__getitem__) for probs in p.entity_probs]


def test_single_mode_batch_without_any_entity():
    """Memes without spans give windows with no entity at all; the head must still run."""
    from mtpeft.heads.relation import RelationHead
    from mtpeft.tasks.features import Features

    head = RelationHead(16, 3, pair_mode="single")
    features = [
        Features(task="t", doc_id=str(i), input_ids=[1, 2, 3], token_offsets=[(0, 1)] * 3, entities=[], entity_ids=[],
                 entity_label_sets=[])
        for i in range(2)
    ]
    batch = RelationHead.collate(features, pad_token_id=0)
    out = head(torch.randn(2, 3, 16), batch)
    assert out.logits.shape == (2, 0, 3)
    assert float(out.loss.detach()) == 0.0 and out.loss.requires_grad
    assert [p.entity_probs for p in head.decode(out, batch, features)] == [[], []]
