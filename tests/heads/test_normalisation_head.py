"""The CUI classifier inside the token and span heads: its loss term, its unit counts, padding,
and the exactness of pooling its per-piece logits over a decoded mention (float64)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mtpeft.heads import SpanHead, TokenHead
from mtpeft.heads.normalisation import TERM, MentionNormaliser, cui_predictions
from mtpeft.tasks.features import IGNORE_INDEX
from mtpeft.tasks.normalisation import pooled_logits

H, C = 8, 5


def _heads():
    return {
        "token": TokenHead(H, 3, dropout=0.0, cui_classes=C),
        "span": SpanHead(H, 1, max_span_len=3, link_top_k=5, dropout=0.0, cui_classes=C),
    }


def _features(make, kind):
    targets = {
        "token": [dict(token_labels=[0, 1, 2, 0, 1, 0, IGNORE_INDEX]), dict(token_labels=[1, 2, 0]),
                  dict(token_labels=[0, 0, 0, 0])],
        "span": [dict(span_labels=[(1, 1, 0), (3, 4, 0)], span_links=[(0, 1)]), dict(span_labels=[(0, 1, 0)], span_links=[]),
                 dict(span_labels=[], span_links=[])],
    }[kind]
    cuis = [dict(cui_mentions=[[(1, 2)], [(1, 1), (3, 4)]], cui_labels=[3, 0]),  # one discontiguous
            dict(cui_mentions=[[(0, 1)]], cui_labels=[1]), dict(cui_mentions=[], cui_labels=[])]
    return [make(n, **t, **c) for n, t, c in zip((7, 3, 4), targets, cuis)]


@pytest.mark.parametrize("kind", ["token", "span"])
def test_cui_term_sums_over_gold_mentions_and_its_units_come_from_the_batch(make_features, kind) -> None:
    head = _heads()[kind]
    features = _features(make_features, kind)
    batch = head.collate(features, pad_token_id=0)
    hidden = torch.randn(*batch["input_ids"].shape, H, requires_grad=True)
    output = head(hidden, batch)
    term = output.loss_terms[TERM]
    assert int(term.units) == 3 == int(head.loss_units(batch)[TERM])
    assert set(head.loss_units(batch)) == set(output.loss_terms)
    # the term is the CE of the mean token state of each mention, summed
    expected = 0.0
    for b, f in enumerate(features):
        for ranges, label in zip(f.cui_mentions, f.cui_labels):
            tokens = [t for s, e in ranges for t in range(s, e + 1)]
            logits = head.normaliser.classifier(hidden[b, tokens].mean(0))
            expected = expected + torch.nn.functional.cross_entropy(logits[None], torch.tensor([label]))
    assert torch.allclose(term.total, expected)
    term.total.backward()
    assert head.normaliser.classifier.weight.grad.abs().sum() > 0
    assert torch.count_nonzero(hidden.grad[~batch["attention_mask"].bool()]) == 0  # padding inert


@pytest.mark.parametrize("kind", ["token", "span"])
def test_without_cui_targets_there_is_no_term_and_a_head_without_classes_has_no_classifier(make_features, kind) -> None:
    head = _heads()[kind]
    features = _features(make_features, kind)
    for f in features:
        f.cui_mentions = f.cui_labels = None
    batch = head.collate(features, pad_token_id=0)
    assert "cui_labels" not in batch and TERM not in head.loss_units(batch)
    assert TERM not in head(torch.randn(*batch["input_ids"].shape, H), batch).loss_terms
    plain = {"token": TokenHead(H, 3), "span": SpanHead(H, 1, max_span_len=3)}[kind]
    assert plain.normaliser is None
    assert head.num_parameters() - plain.num_parameters() == (H + 1) * C  # one linear layer, counted in the head


def test_pooled_piece_logits_equal_the_logits_of_the_mean_state_float64() -> None:
    """Decoding pools per-piece logits over a mention; training classifies its mean state: the same."""
    torch.manual_seed(0)
    normaliser = MentionNormaliser(H, C, dropout=0.0).double().eval()
    hidden = torch.randn(1, 12, H, dtype=torch.float64)
    ranges = [(1, 3), (6, 6), (8, 11)]  # the fragments of one discontiguous mention
    with torch.no_grad():
        token_logits = normaliser.token_logits(hidden)
    pieces = MentionNormaliser.range_logits(token_logits[0], ranges)
    pooled = pooled_logits([(e - s + 1, row.numpy()) for (s, e), row in zip(ranges, pieces)])
    tokens = [t for s, e in ranges for t in range(s, e + 1)]
    direct = normaliser.classifier(hidden[0, tokens].mean(0))
    assert np.abs(pooled - direct.detach().numpy()).max() < 1e-12
    # one piece per token (the token head) gives the same
    single = MentionNormaliser.range_logits(token_logits[0], [(t, t) for t in tokens])
    assert np.abs(pooled_logits([(1, r.numpy()) for r in single]) - direct.detach().numpy()).max() < 1e-12


@pytest.mark.parametrize("kind", ["token", "span"])
def test_decode_returns_the_logits_of_the_predicted_pieces(make_features, kind) -> None:
    head = _heads()[kind].eval()
    features = _features(make_features, kind)
    batch = head.collate(features, pad_token_id=0)
    hidden = torch.randn(*batch["input_ids"].shape, H)
    output = head(hidden, batch)
    predictions = head.decode(output, batch, features)
    token_logits = head.normaliser.token_logits(hidden)
    for b, p in enumerate(predictions):
        pieces = [(s, e) for s, e, _, _ in p.spans] if kind == "span" else [
            (t, t) for t, label in enumerate(p.token_labels) if label != 0]
        assert p.cui_ranges == pieces and p.cui_logits.shape == (len(pieces), C)
        for (s, e), row in zip(pieces, p.cui_logits):
            assert np.allclose(row, token_logits[b, s : e + 1].mean(0).detach().numpy(), atol=1e-5)
    assert cui_predictions(None, [[(0, 0)]]) == [(None, None)]


def test_params_counts_the_cui_classifier_as_head_parameters_outside_the_budget() -> None:
    import json

    from typer.testing import CliRunner

    from mtpeft.backbone import tiny_llama_config
    from mtpeft.cli.main import app

    hidden = tiny_llama_config().hidden_size
    result = CliRunner().invoke(app, ["params", "--model", "tiny", "--tasks", "2", "--cui-classes", "10", "--json"])
    assert result.exit_code == 0, result.output
    heads = json.loads(result.output)["heads"]
    assert heads["cui_classes"] == 10 and "outside the adapter budget" in heads["note"]
    for task in ("semeval2014t7", "semeval2015t14"):
        assert heads["per_task"][task]["cui_classifier"] == (hidden + 1) * 10
    assert heads["per_task"]["semeval2017t3"]["cui_classifier"] == 0
    table = CliRunner().invoke(app, ["params", "--model", "tiny", "--tasks", "2"]).output
    assert "heads, outside the adapter budget" in table and "of which CUI classifier" in table
