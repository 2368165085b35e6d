"""Every head's loss is a set of (sum, unit count) terms whose counts the batch alone fixes.

Two properties make step-level normalisation exact: ``loss_units(batch)`` equals the units that
``forward`` reports, and the terms of two micro-batches, each divided by the units of BOTH,
give the loss and the gradients of the whole batch (float64).
"""

from __future__ import annotations

import pytest
import torch

from mtpeft.heads import RankingHead, RelationHead, SpanHead, TokenHead
from mtpeft.tasks.features import IGNORE_INDEX

H = 8


def _cases(make):
    """head kind -> (head, features): three examples of different lengths, so padding and uneven
    unit counts are both present."""
    return {
        "token": (
            TokenHead(H, 3, dropout=0.0),
            [
                make(7, token_labels=[IGNORE_INDEX, 0, 1, 2, 0, 0, IGNORE_INDEX]),
                make(3, token_labels=[0, 1, 1]),
                make(5, token_labels=[IGNORE_INDEX] * 5),
            ],
        ),
        "span": (
            SpanHead(H, 2, max_span_len=3, link_top_k=5, dropout=0.0),
            [
                make(9, special=(0,), span_labels=[(1, 2, 0), (5, 5, 0), (7, 8, 1)], span_links=[(0, 1)]),
                make(4, special=(0,), span_labels=[(2, 3, 1)], span_links=[]),
                make(6, special=(0, 5), span_labels=[], span_links=[]),
            ],
        ),
        "relation": (
            RelationHead(H, 2, window=4, dropout=0.0),
            [
                make(9, entities=[(0, 0), (2, 3), (8, 8)], relations=[(0, 1, 0), (1, 2, 1)]),
                make(4, entities=[(1, 1), (3, 3)], relations=[(1, 0, 1)]),
                make(3, entities=[], relations=[]),
            ],
        ),
        "single": (
            RelationHead(H, 3, pair_mode="single", dropout=0.0),
            [
                make(8, entities=[(0, 2), (4, 4), (5, 7)], entity_label_sets=[(0,), (1,), ()]),
                make(4, entities=[(1, 3)], entity_label_sets=[(0, 2)]),
                make(6, entities=[(0, 0), (2, 5)], entity_label_sets=[(2,), (1, 2)]),
            ],
        ),
        "ranking": (
            RankingHead(H, 3, dropout=0.0),
            [make(6, rank_label=2), make(3, rank_label=0), make(5, rank_label=1)],
        ),
    }


KINDS = ["token", "span", "relation", "single", "ranking"]


def _hidden(features, dtype=torch.float64) -> torch.Tensor:
    generator = torch.Generator().manual_seed(1)
    width = max(len(f.input_ids) for f in features)
    return torch.randn(len(features), width, H, generator=generator, dtype=dtype)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("training", [True, False])
def test_loss_units_equal_the_units_forward_reports(kind, training, make_features) -> None:
    head, features = _cases(make_features)[kind]
    head.train(training)
    batch = type(head).collate(features, 0)
    out = head(_hidden(features, torch.float32), batch)
    units = head.loss_units(batch)
    assert set(units) == set(out.loss_terms)
    for name, term in out.loss_terms.items():
        assert int(units[name]) == int(term.units), name
    assert sum(int(u) for u in units.values()) > 0, "the case must have units for the check to mean anything"
    expected = sum(t.weight * t.total / max(int(t.units), 1) for t in out.loss_terms.values())
    assert torch.allclose(out.loss, expected)
    assert set(out.losses) == set(out.loss_terms)


@pytest.mark.parametrize("kind", KINDS)
def test_two_micro_batches_normalised_by_all_units_equal_one_batch(kind, make_features) -> None:
    head, features = _cases(make_features)[kind]
    head = head.double()
    head.train()  # gold-first top-k of the span head is per example: the same in both layouts
    hidden = _hidden(features).requires_grad_(True)
    params = [p for p in head.parameters() if p.requires_grad]

    whole = head(hidden, type(head).collate(features, 0))
    whole_grads = torch.autograd.grad(whole.loss, [hidden, *params], allow_unused=True)

    parts = [[0], [1, 2]]  # uneven micro-batches
    batches = [type(head).collate([features[i] for i in part], 0) for part in parts]
    totals = {name: sum(head.loss_units(b)[name] for b in batches) for name in whole.loss_terms}
    loss = 0.0
    for part, batch in zip(parts, batches):
        width = batch["input_ids"].shape[1]
        out = head(hidden[part, :width], batch)
        loss = loss + sum(t.weight * t.total / totals[n].clamp(min=1) for n, t in out.loss_terms.items())
    grads = torch.autograd.grad(loss, [hidden, *params], allow_unused=True)

    assert abs(float(loss - whole.loss)) < 1e-12
    for a, b in zip(grads, whole_grads):
        if a is None or b is None:
            assert a is None and b is None
        else:
            assert torch.allclose(a, b, rtol=0, atol=1e-12)
