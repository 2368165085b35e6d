"""Span head: enumerated candidate spans, span classification and fragment linking.

Every span of up to ``max_span_len`` tokens is a candidate, represented as
``[h_start; h_end; width embedding]`` followed by a linear layer and GELU. A linear layer on a
concatenation equals the sum of one linear map per part, so the head projects token states
once ``(B, T, F)`` and gathers per span ``(B, N, F)`` instead of materialising the
``(B, N, 2H + W)`` concatenation (with H=2048 and the default ffn_dim=256, 16x less memory).

Each candidate is classified over ``num_labels`` fragment labels plus a dedicated "no span"
class, the LAST column (``null_index == num_labels``). A discontiguous mention is a chain of
fragments; the head scores directed pairs (earlier fragment, later fragment) of the ``link_top_k``
most span-like candidates with a low-rank biaffine plus a learned bias per log2 bucket of the
token gap, and trains them with binary cross-entropy against ``span_links``. The pair scores are
``(B, k, k)`` with ``k = link_top_k``, so memory is bounded whatever the window length. While
training, gold fragments are put into the top-k first, so every gold link gets a gradient; in
eval mode the top-k is the model's own, so a loss computed for validation is honest and gold
links it misses are counted (``stats["gold_links_unscored"]``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mtpeft.errors import ConfigError
from mtpeft.heads.base import (
    HEADS,
    Batch,
    HeadOutput,
    TaskHead,
    _where,
    check_token_range,
    collate_inputs,
    pad_int_rows,
    pad_tuples,
    targets_present,
    summed_term,
)
from mtpeft.heads.normalisation import MentionNormaliser, cui_predictions
from mtpeft.tasks.features import Features, WindowPrediction

NUM_GAP_BUCKETS = 16
"""Link gaps are bucketed by floor(log2(gap)); gaps of 2**15 tokens and more share the last bucket."""


def enumerate_spans(seq_len: int, max_span_len: int, device: torch.device | str | None = None) -> tuple[Tensor, Tensor]:
    """All spans of 1..``max_span_len`` tokens in a sequence of ``seq_len`` tokens.

    Returns ``(starts, ends)``, two int64 tensors of shape ``(N,)``, ``end`` inclusive, ordered by
    start then end (the order of ``for s in range(T): for e in range(s, min(s + L, T))``).
    """
    if seq_len < 0 or max_span_len < 1:
        raise ValueError(f"expected seq_len >= 0 and max_span_len >= 1, got {seq_len} and {max_span_len}")
    starts = torch.arange(seq_len, device=device)
    ends = starts[:, None] + torch.arange(max_span_len, device=device)[None, :]  # (T, L)
    keep = ends < seq_len
    return starts[:, None].expand_as(ends)[keep], ends[keep]


def text_token_mask(features: list[Features], width: int) -> Tensor:
    """``(B, width)``: 1 where a token carries text (offset end > start), so spans never start or
    end on special tokens or separators."""
    rows = [[int(e > s) for s, e in f.token_offsets] for f in features]
    return pad_int_rows(rows, 0, width)


@HEADS.register("span")
class SpanHead(TaskHead):
    """Enumerated-span classifier with pairwise fragment linking (see the module docstring).

    Output: ``logits`` ``(B, N, num_labels + 1)`` over the spans of :func:`enumerate_spans`;
    ``tensors``: ``span_starts``/``span_ends`` ``(N,)``, ``span_mask`` ``(B, N)`` (valid
    candidates), ``link_index`` ``(B, k)`` (candidate index of each linked slot),
    ``link_scores`` ``(B, k, k)`` (logit that slot i's fragment continues in slot j's) and
    ``link_mask`` ``(B, k, k)`` (pairs that are scored: both valid, j starts after i ends).
    With ``cui_classes`` (2015 T14) the head also classifies each mention's CUI
    (:class:`~mtpeft.heads.normalisation.MentionNormaliser`, loss term ``cui_ce``); its decoded
    pieces are the predicted fragments.
    """

    kind = "span"

    def __init__(
        self,
        hidden_size: int,
        num_labels: int,
        max_span_len: int = 8,
        ffn_dim: int = 256,
        link_dim: int = 128,
        link_top_k: int = 64,
        link_weight: float = 1.0,
        link_pos_weight: float = 1.0,
        link_threshold: float = 0.5,
        dropout: float = 0.1,
        cui_classes: int = 0,
    ) -> None:
        super().__init__(hidden_size, num_labels)
        if max_span_len < 1 or link_top_k < 1 or ffn_dim < 1 or link_dim < 1:
            raise ConfigError("span head: max_span_len, link_top_k, ffn_dim and link_dim must be >= 1")
        if not 0.0 < link_threshold < 1.0:
            raise ConfigError(f"span head: link_threshold must be in (0, 1), got {link_threshold}")
        self.max_span_len = max_span_len
        self.link_top_k = link_top_k
        self.link_weight = link_weight
        self.link_threshold = link_threshold
        self.null_index = num_labels
        self.register_buffer("link_pos_weight", torch.tensor(float(link_pos_weight)), persistent=False)
        self.dropout = nn.Dropout(dropout)
        self.start_proj = nn.Linear(hidden_size, ffn_dim)
        self.end_proj = nn.Linear(hidden_size, ffn_dim, bias=False)
        self.width_embedding = nn.Embedding(max_span_len, ffn_dim)
        self.classifier = nn.Linear(ffn_dim, num_labels + 1)
        self.link_first = nn.Linear(ffn_dim, link_dim)
        self.link_second = nn.Linear(ffn_dim, link_dim)
        self.link_gap_bias = nn.Embedding(NUM_GAP_BUCKETS, 1)
        self.normaliser = MentionNormaliser(hidden_size, cui_classes, dropout) if cui_classes else None

    @staticmethod
    def collate(features: list[Features], pad_token_id: int) -> Batch:
        """``input_ids``, ``attention_mask``, ``span_token_mask`` (B, T) and, with targets,
        ``span_gold`` (B, G, 3) = (start, end, label) and ``span_links`` (B, K, 2), both padded -1."""
        batch = collate_inputs(features, pad_token_id)
        batch["span_token_mask"] = text_token_mask(features, batch["input_ids"].shape[1])
        if targets_present(features, "span_labels"):
            for f in features:
                for start, end, label in f.span_labels:
                    check_token_range(f, "span_labels", start, end)
                    if label < 0:
                        raise ValueError(f"{_where(f)}: span label {label} < 0; expected a label id >= 0")
                for i, j in f.span_links or []:
                    if not (0 <= i < len(f.span_labels) and 0 <= j < len(f.span_labels)) or i == j:
                        raise ValueError(
                            f"{_where(f)}: span link ({i}, {j}); expected two different indices "
                            f"into span_labels (0..{len(f.span_labels) - 1})"
                        )
            batch["span_gold"] = pad_tuples([f.span_labels for f in features], 3)
            batch["span_links"] = pad_tuples([f.span_links or [] for f in features], 2)
        return batch | MentionNormaliser.collate(features)

    def forward(self, hidden: Tensor, batch: Batch) -> HeadOutput:
        """Classify every candidate span and score links between the top-k candidates."""
        h = self._cast(hidden)  # (B, T, H)
        B, T, _ = h.shape
        device = h.device
        starts, ends, valid = self._candidates(batch, T, device)  # (N,), (N,), (B, N)
        widths = ends - starts

        span_repr = F.gelu(
            self.start_proj(h)[:, starts] + self.end_proj(h)[:, ends] + self.width_embedding(widths)
        )  # (B, N, F)
        logits = self.classifier(self.dropout(span_repr))  # (B, N, C + 1)

        has_targets = "span_gold" in batch
        if has_targets:
            gold_cand, gold_reached, gold = self._gold_candidates(batch["span_gold"].to(device), valid, T)
        # top-k most span-like candidates; while training, gold fragments first
        priority = logits.detach()[..., : self.num_labels].logsumexp(-1) - logits.detach()[..., self.null_index]
        priority = priority.masked_fill(~valid, float("-inf"))
        if has_targets and self.training:
            b_idx = torch.arange(B, device=device)[:, None].expand_as(gold_cand)
            priority[b_idx[gold_reached], gold_cand[gold_reached]] = float("inf")
        k = min(self.link_top_k, starts.numel())
        link_index = priority.topk(k, dim=1).indices  # (B, k)
        slot_valid = valid.gather(1, link_index)
        slot_repr = self.dropout(span_repr.gather(1, link_index[..., None].expand(-1, -1, span_repr.shape[-1])))
        link_scores = self.link_first(slot_repr) @ self.link_second(slot_repr).transpose(1, 2)  # (B, k, k)
        gap = starts[link_index][:, None, :] - ends[link_index][:, :, None]  # [b, i, j] = start_j - end_i
        bucket = torch.log2(gap.clamp(min=1).float()).floor().long().clamp(max=NUM_GAP_BUCKETS - 1)
        link_scores = link_scores + self.link_gap_bias(bucket).squeeze(-1)
        link_mask = slot_valid[:, :, None] & slot_valid[:, None, :] & (gap > 0)

        tensors = {
            "span_starts": starts,
            "span_ends": ends,
            "span_mask": valid,
            "link_index": link_index,
            "link_scores": link_scores,
            "link_mask": link_mask,
        }
        cui_terms, cui_tensors = self.normaliser.outputs(h, batch) if self.normaliser is not None else ({}, {})
        tensors |= cui_tensors
        stats = {"candidate_spans": valid.sum(), "scored_links": link_mask.sum()}
        if not has_targets:
            return HeadOutput(logits=logits, tensors=tensors, stats=stats)

        if gold.numel() and int(gold[..., 2].max()) >= self.num_labels:
            raise ValueError(f"span label id >= num_labels ({self.num_labels}) in span_gold")
        targets = torch.full((B, starts.numel()), self.null_index, dtype=torch.long, device=device)
        b_idx = torch.arange(B, device=device)[:, None].expand_as(gold_cand)
        targets[b_idx[gold_reached], gold_cand[gold_reached]] = gold[..., 2][gold_reached]
        span_term = summed_term(F.cross_entropy(logits[valid], targets[valid], reduction="none"), logits)

        link_targets, links_placed, n_links = self._link_targets(
            batch["span_links"].to(device), gold_cand, gold_reached, link_index, link_mask, starts.numel()
        )
        per_pair = F.binary_cross_entropy_with_logits(
            link_scores[link_mask],
            link_targets[link_mask].to(link_scores.dtype),
            pos_weight=self.link_pos_weight.to(link_scores.dtype),
            reduction="none",
        )
        link_term = summed_term(per_pair, link_scores, weight=self.link_weight)
        link_term.units = self._slot_pairs(valid.sum(1))
        stats |= {
            "gold_spans": (gold[..., 0] >= 0).sum(),
            "gold_spans_unreachable": (gold[..., 0] >= 0).sum() - gold_reached.sum(),
            "gold_links": n_links,
            "gold_links_unscored": n_links - links_placed,
        }
        return HeadOutput(
            logits=logits,
            loss_terms={"span_ce": span_term, "link_bce": link_term, **cui_terms},
            tensors=tensors,
            stats=stats,
        )

    def _candidates(self, batch: Batch, seq_len: int, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
        """``(starts, ends)`` of :func:`enumerate_spans` and ``valid`` ``(B, N)``: a span is valid
        when both boundary tokens are attended and carry text; with padding on one side only (the
        collate convention), so are all tokens between them."""
        text = batch["attention_mask"].to(device).bool() & batch["span_token_mask"].to(device).bool()
        starts, ends = enumerate_spans(seq_len, self.max_span_len, device)  # (N,)
        return starts, ends, text[:, starts] & text[:, ends]

    def _slot_pairs(self, valid_per_example: Tensor) -> Tensor:
        """The units of ``link_bce``: unordered pairs of linking slots, ``s (s - 1) / 2`` per example
        with ``s = min(link_top_k, valid candidates)``. Only ordered, non-overlapping pairs are
        scored, so the loss is the BCE summed over scored pairs divided by this count, a number the
        batch alone fixes (which candidates fill the top-k depends on the model)."""
        slots = valid_per_example.clamp(max=self.link_top_k)
        return (slots * (slots - 1) // 2).sum()

    def loss_units(self, batch: Batch) -> dict[str, Tensor]:
        _, _, valid = self._candidates(batch, batch["input_ids"].shape[1], batch["input_ids"].device)
        cui = MentionNormaliser.loss_units(batch) if self.normaliser is not None else {}
        return {"span_ce": valid.sum(), "link_bce": self._slot_pairs(valid.sum(1)), **cui}

    def _gold_candidates(self, gold: Tensor, valid: Tensor, seq_len: int) -> tuple[Tensor, Tensor, Tensor]:
        """Candidate index ``(B, G)`` of each gold fragment and whether it is a valid candidate
        (a fragment longer than ``max_span_len`` or on padding/special tokens is not)."""
        L = self.max_span_len
        starts, ends = enumerate_spans(seq_len, L, valid.device)
        grid = torch.full((max(seq_len, 1), L), -1, dtype=torch.long, device=valid.device)  # [start, width]
        grid[starts, ends - starts] = torch.arange(starts.numel(), device=valid.device)
        g_start, g_end = gold[..., 0], gold[..., 1]
        in_grid = (g_start >= 0) & (g_end >= g_start) & (g_end - g_start < L) & (g_end < seq_len)
        cand = torch.where(in_grid, grid[g_start.clamp(0, seq_len - 1), (g_end - g_start).clamp(0, L - 1)], -1)
        reached = in_grid & (cand >= 0) & valid.gather(1, cand.clamp(min=0))
        return cand.clamp(min=0), reached, gold

    @staticmethod
    def _link_targets(
        links: Tensor, gold_cand: Tensor, gold_reached: Tensor, link_index: Tensor, link_mask: Tensor, n_cand: int
    ) -> tuple[Tensor, Tensor, Tensor]:
        """0/1 targets ``(B, k, k)`` of the scored slots, how many gold links fall on a scored
        pair, and how many gold links there are (a gold link is unscored when one of its
        fragments is not a valid candidate or not in the top-k, or its order is wrong)."""
        B, k = link_index.shape
        device = link_index.device
        targets = torch.zeros(B, k, k, device=device)
        present = links[..., 0] >= 0  # (B, K)
        if links.shape[1] == 0:
            return targets, present.sum(), present.sum()
        slot_of = torch.full((B, n_cand), -1, dtype=torch.long, device=device)
        slot_of.scatter_(1, link_index, torch.arange(k, device=device).expand(B, k))
        first, second = links[..., 0].clamp(min=0), links[..., 1].clamp(min=0)  # indices into span_gold
        ok = present & gold_reached.gather(1, first) & gold_reached.gather(1, second)
        slot_i = slot_of.gather(1, gold_cand.gather(1, first))
        slot_j = slot_of.gather(1, gold_cand.gather(1, second))
        ok = ok & (slot_i >= 0) & (slot_j >= 0)
        b_idx = torch.arange(B, device=device)[:, None].expand_as(ok)
        ok = ok & link_mask[b_idx, slot_i.clamp(min=0), slot_j.clamp(min=0)]
        targets[b_idx[ok], slot_i[ok], slot_j[ok]] = 1.0
        return targets, ok.sum(), present.sum()

    @torch.no_grad()
    def decode(self, output: HeadOutput, batch: Batch, features: list[Features]) -> list[WindowPrediction]:
        """Predicted fragments (argmax not "no span") with their label probability, and links
        between predicted fragments whose probability exceeds ``link_threshold``; link ends are
        indices into the window's ``spans`` list, earlier fragment first."""
        if len(features) != output.logits.shape[0]:
            raise ValueError(f"{len(features)} Features for a batch of {output.logits.shape[0]}")
        t = {name: value.detach().cpu() for name, value in output.tensors.items()}
        confidence, label = output.logits.detach().float().softmax(-1).max(-1)
        confidence, label = confidence.cpu(), label.cpu()
        is_span = t["span_mask"] & (label != self.null_index)  # (B, N)
        link_prob = t["link_scores"].float().sigmoid()
        spans_per_window = []
        for b in range(len(features)):
            spans_per_window.append([
                (int(t["span_starts"][c]), int(t["span_ends"][c]), int(label[b, c]), float(confidence[b, c]))
                for c in is_span[b].nonzero().squeeze(1).tolist()
            ])  # fmt: skip
        cuis = cui_predictions(t.get("cui_token_logits"), [[(s, e) for s, e, _, _ in w] for w in spans_per_window])
        predictions = []
        for b, f in enumerate(features):
            cand = is_span[b].nonzero().squeeze(1)
            spans = spans_per_window[b]
            position = {c: p for p, c in enumerate(cand.tolist())}
            slot_is_span = is_span[b, t["link_index"][b]]  # (k,)
            chosen = t["link_mask"][b] & (link_prob[b] > self.link_threshold)
            chosen &= slot_is_span[:, None] & slot_is_span[None, :]
            links = [
                (position[int(t["link_index"][b, i])], position[int(t["link_index"][b, j])], float(link_prob[b, i, j]))
                for i, j in chosen.nonzero().tolist()
            ]
            predictions.append(
                WindowPrediction(
                    task=f.task, doc_id=f.doc_id, window=f.window, spans=spans, links=links,
                    cui_ranges=cuis[b][0], cui_logits=cuis[b][1],
                )
            )  # fmt: skip
        return predictions
