"""The span head: enumeration, validity, classification, fragment linking and decoding."""

from __future__ import annotations

import pytest
import torch

from mtpeft.heads import SpanHead, enumerate_spans

H, C = 16, 2


def naive_spans(seq_len: int, max_span_len: int) -> list[tuple[int, int]]:
    return [(s, e) for s in range(seq_len) for e in range(s, min(s + max_span_len, seq_len))]


@pytest.mark.parametrize(("seq_len", "max_span_len"), [(0, 3), (1, 1), (1, 4), (5, 1), (5, 10), (17, 4), (64, 8)])
def test_enumeration_equals_naive_double_loop(seq_len: int, max_span_len: int) -> None:
    starts, ends = enumerate_spans(seq_len, max_span_len)
    assert starts.dtype == ends.dtype == torch.long
    assert list(zip(starts.tolist(), ends.tolist())) == naive_spans(seq_len, max_span_len)


def test_enumeration_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        enumerate_spans(4, 0)


@pytest.fixture
def features(make_features):
    # window 0: a discontiguous mention (1-2) + (5-5), and a contiguous one (7-8); token 0 is BOS
    # window 1: shorter (padding), one fragment of label 1
    return [
        make_features(10, special=(0,), span_labels=[(1, 2, 0), (5, 5, 0), (7, 8, 1)], span_links=[(0, 1)]),
        make_features(6, special=(0,), span_labels=[(2, 4, 1)], span_links=[], doc_id="short"),
    ]


def test_collate(features) -> None:
    batch = SpanHead.collate(features, pad_token_id=0)
    assert batch["span_token_mask"].tolist() == [[0] + [1] * 9, [0] + [1] * 5 + [0] * 4]
    assert batch["span_gold"].tolist() == [[[1, 2, 0], [5, 5, 0], [7, 8, 1]], [[2, 4, 1], [-1, -1, -1], [-1, -1, -1]]]
    assert batch["span_links"].tolist() == [[[0, 1]], [[-1, -1]]]


def test_collate_rejects_bad_targets(make_features) -> None:
    with pytest.raises(ValueError, match="span_labels token range \\(3, 5\\) is outside"):
        SpanHead.collate([make_features(4, span_labels=[(3, 5, 0)])], 0)
    with pytest.raises(ValueError, match="span link \\(0, 2\\)"):
        SpanHead.collate([make_features(4, span_labels=[(0, 0, 0), (2, 2, 0)], span_links=[(0, 2)])], 0)


def test_forward_backward_shapes_and_validity(features) -> None:
    L = 3
    head = SpanHead(H, C, max_span_len=L, link_top_k=6, dropout=0.0)
    batch = SpanHead.collate(features, 0)
    hidden = torch.randn(2, 10, H, requires_grad=True)
    out = head(hidden, batch)
    N = len(naive_spans(10, L))
    assert out.logits.shape == (2, N, C + 1)
    assert out.tensors["link_scores"].shape == out.tensors["link_mask"].shape == (2, 6, 6)
    # valid = inside the window and not starting or ending on the special token 0
    lengths = [10, 6]
    expected = [[s >= 1 and e < n for s, e in naive_spans(10, L)] for n in lengths]
    assert out.tensors["span_mask"].tolist() == expected
    assert int(out.stats["candidate_spans"]) == sum(map(sum, expected))
    assert int(out.stats["gold_spans"]) == 4 and int(out.stats["gold_spans_unreachable"]) == 0
    assert int(out.stats["gold_links"]) == 1 and int(out.stats["gold_links_unscored"]) == 0
    out.loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in head.parameters()), [
        n for n, p in head.named_parameters() if p.grad is None or p.grad.abs().sum() == 0
    ]
    assert torch.count_nonzero(hidden.grad[:, 0]) == 0  # the special token is never a boundary


def test_link_mask_orders_fragments(features) -> None:
    head = SpanHead(H, C, max_span_len=3, link_top_k=20).eval()
    batch = SpanHead.collate(features, 0)
    out = head(torch.randn(2, 10, H), batch)
    t = out.tensors
    for b in range(2):
        slots = t["link_index"][b]
        for i in range(len(slots)):
            for j in range(len(slots)):
                ok = bool(t["span_mask"][b, slots[i]] and t["span_mask"][b, slots[j]])
                ordered = int(t["span_starts"][slots[j]]) > int(t["span_ends"][slots[i]])
                assert bool(t["link_mask"][b, i, j]) == (ok and ordered)


def test_unreachable_gold_is_counted(make_features) -> None:
    # fragment (0, 4) is 5 tokens long, beyond max_span_len=3: it cannot be predicted, and its link neither
    f = make_features(8, span_labels=[(0, 4, 0), (6, 6, 0)], span_links=[(0, 1)])
    out = SpanHead(H, C, max_span_len=3)(torch.randn(1, 8, H), SpanHead.collate([f], 0))
    assert int(out.stats["gold_spans_unreachable"]) == 1
    assert int(out.stats["gold_links_unscored"]) == 1


def test_gold_enters_top_k_only_while_training(features) -> None:
    head = SpanHead(H, C, max_span_len=3, link_top_k=3)
    batch = SpanHead.collate(features, 0)
    hidden = torch.randn(2, 10, H)
    out = head.train()(hidden, batch)
    starts, ends = out.tensors["span_starts"], out.tensors["span_ends"]
    chosen = {(int(starts[c]), int(ends[c])) for c in out.tensors["link_index"][0]}
    assert {(1, 2), (5, 5), (7, 8)} == chosen
    assert int(out.stats["gold_links_unscored"]) == 0
    head.eval()
    with torch.no_grad():  # k=1: no pair can be scored, so the gold link is reported as unscored
        head.link_top_k = 1
        out = head(hidden, batch)
    assert int(out.stats["gold_links_unscored"]) == 1 and out.loss is not None


def test_padding_never_contributes(features, assert_padding_inert) -> None:
    head = SpanHead(H, C, max_span_len=3, link_top_k=40, dropout=0.0)
    assert_padding_inert(head, SpanHead.collate(features, 0), H)


def test_no_targets_no_loss(make_features) -> None:
    out = SpanHead(H, C)(torch.randn(1, 4, H), SpanHead.collate([make_features(4)], 0))
    assert out.loss is None and out.logits.shape[0] == 1


def check_predictions(head: SpanHead, predictions, features) -> None:
    assert len(predictions) == len(features)
    for f, p in zip(features, predictions):
        assert (p.task, p.doc_id, p.window) == (f.task, f.doc_id, f.window)
        for start, end, label, confidence in p.spans:
            assert 0 <= start <= end < len(f.input_ids) and end - start < head.max_span_len
            assert 0 <= label < head.num_labels and 0.0 <= confidence <= 1.0
        for i, j, confidence in p.links:
            assert 0 <= i < len(p.spans) and 0 <= j < len(p.spans)
            assert p.spans[j][0] > p.spans[i][1] and head.link_threshold < confidence <= 1.0


def test_decode_valid_on_an_untrained_head(features) -> None:
    head = SpanHead(H, C, max_span_len=3, link_top_k=20, link_threshold=0.3).eval()
    batch = SpanHead.collate(features, 0)
    out = head(torch.randn(2, 10, H), batch)
    predictions = head.decode(out, batch, features)
    check_predictions(head, predictions, features)
    assert sum(len(p.spans) for p in predictions) > 0 and sum(len(p.links) for p in predictions) > 0


def test_overfits_and_decodes_the_gold(features, overfit) -> None:
    head = SpanHead(H, C, max_span_len=3, link_top_k=8, ffn_dim=64, link_dim=32, dropout=0.0)
    batch = SpanHead.collate(features, 0)
    hidden = torch.randn(2, 10, H)
    first, last = overfit(head, batch, hidden)
    assert last < 0.05 * first
    head.eval()
    predictions = head.decode(head(hidden, batch), batch, features)
    check_predictions(head, predictions, features)
    for f, p in zip(features, predictions):
        assert [s[:3] for s in p.spans] == sorted(f.span_labels)
        assert [link[:2] for link in p.links] == f.span_links
