"""Relation head: bilinear (head x tail) classification of entity pairs, or of single entities.

An entity (a token range given by the encoder) is represented from its boundary tokens,
``gelu(W_s h_start + W_e h_end + width embedding)`` (a linear layer on
``[h_start; h_end; width]``, computed as a sum). Role projections give a head and a tail vector;
``Bilinear(head, tail) + Linear([head; tail])`` (a biaffine) scores ``num_labels`` relation
types plus "no relation", the LAST column (``null_index == num_labels``).

``pair_mode="pair"`` scores every ordered pair of distinct entities of a window whose token
distance is at most ``window`` (distance = start of the later entity minus end of the earlier
one, 1 for adjacent and 0 for overlapping entities; ``window=None`` scores all pairs). Gold pairs
farther apart are never scored, and are counted in ``stats["gold_pairs_outside_window"]`` so a
recall ceiling is visible. ``pair_mode="single"`` (2021 T6 level 2) types each entity alone with
the same module, as the pair (entity, entity), MULTI-LABEL: ``num_labels`` columns (no "none"
column), one sigmoid per label, trained with binary cross-entropy against the entity's label SET
(``Features.entity_label_sets``: an extent may carry several techniques, or none); the task's
decoder applies the decision threshold to the probabilities the head decodes.
"""

from __future__ import annotations

from typing import Literal

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
    pad_tuples,
    targets_present,
    summed_term,
)
from mtpeft.tasks.features import Features, WindowPrediction


def entity_distance(starts: Tensor, ends: Tensor) -> Tensor:
    """Token distance ``(..., E, E)`` between entities ``(..., E)`` (ends inclusive): start of the
    later one minus end of the earlier one; 1 when adjacent, 0 when they overlap."""
    later_start = torch.maximum(starts[..., :, None], starts[..., None, :])
    earlier_end = torch.minimum(ends[..., :, None], ends[..., None, :])
    return (later_start - earlier_end).clamp(min=0)


def _pad_label_sets(rows: list[list[tuple[int, ...]]]) -> Tensor:
    """``(B, E, L)`` label ids of each example's entities, padded -1 (entities and labels)."""
    entities = max((len(r) for r in rows), default=0)
    width = max((len(labels) for r in rows for labels in r), default=0)
    out = torch.full((len(rows), entities, width), -1, dtype=torch.long)
    for b, row in enumerate(rows):
        for e, labels in enumerate(row):
            if labels:
                out[b, e, : len(labels)] = torch.tensor(labels, dtype=torch.long)
    return out


@HEADS.register("relation")
class RelationHead(TaskHead):
    """Biaffine relation classifier over entity pairs (or single entities), see the module docstring.

    Output, pair mode: ``logits`` ``(P, num_labels + 1)`` for the candidate pairs listed in
    ``tensors["pair_index"]`` ``(P, 3)`` = (batch, head entity, tail entity).
    Single mode: ``logits`` ``(B, E, num_labels)`` (one sigmoid per label), ``tensors["entity_mask"]``
    ``(B, E)``; its loss term ``entity_bce`` sums the binary cross-entropy of every (entity, label)
    of the batch's entities, so its units are entities x labels (``loss_units``).
    """

    kind = "relation"

    def __init__(
        self,
        hidden_size: int,
        num_labels: int,
        pair_mode: Literal["pair", "single"] = "pair",
        window: int | None = 128,
        entity_dim: int = 256,
        use_width: bool = True,
        max_width: int = 32,
        dropout: float = 0.1,
    ) -> None:
        super().__init__(hidden_size, num_labels)
        if pair_mode not in ("pair", "single"):
            raise ConfigError(f"relation head: unknown pair_mode {pair_mode!r}; valid choices: pair, single")
        if window is not None and window < 0:
            raise ConfigError(f"relation head: window must be >= 0 or None (all pairs), got {window}")
        if entity_dim < 1 or max_width < 1:
            raise ConfigError("relation head: entity_dim and max_width must be >= 1")
        self.pair_mode = pair_mode
        self.window = window
        self.max_width = max_width
        self.null_index = num_labels
        self.dropout = nn.Dropout(dropout)
        self.start_proj = nn.Linear(hidden_size, entity_dim)
        self.end_proj = nn.Linear(hidden_size, entity_dim, bias=False)
        self.width_embedding = nn.Embedding(max_width, entity_dim) if use_width else None
        self.head_proj = nn.Linear(entity_dim, entity_dim)
        self.tail_proj = nn.Linear(entity_dim, entity_dim)
        outputs = num_labels if pair_mode == "single" else num_labels + 1  # single: no "none" column
        self.bilinear = nn.Bilinear(entity_dim, entity_dim, outputs)
        self.linear = nn.Linear(2 * entity_dim, outputs, bias=False)

    @staticmethod
    def collate(features: list[Features], pad_token_id: int) -> Batch:
        """``input_ids``, ``attention_mask``, ``entity_spans`` (B, E, 2) padded -1, ``entity_mask``
        (B, E); with targets ``relation_gold`` (B, R, 3) = (head, tail, label) padded -1 and/or
        ``entity_label_sets`` (B, E, L): each entity's label ids, padded -1 (L: the most labels of an
        entity; an entity without labels is all -1 and trains every label towards 0)."""
        batch = collate_inputs(features, pad_token_id)
        for f in features:
            if f.entities is None:
                raise ValueError(f"{_where(f)}: entities is None; expected the candidate entities (token ranges)")
            for start, end in f.entities:
                check_token_range(f, "entity", start, end)
        batch["entity_spans"] = pad_tuples([list(f.entities) for f in features], 2)
        batch["entity_mask"] = (batch["entity_spans"][..., 0] >= 0).long()
        if targets_present(features, "relations"):
            for f in features:
                for head, tail, label in f.relations:
                    if not (0 <= head < len(f.entities) and 0 <= tail < len(f.entities)) or head == tail or label < 0:
                        raise ValueError(
                            f"{_where(f)}: relation ({head}, {tail}, {label}); expected two different entity "
                            f"indices in 0..{len(f.entities) - 1} and a label id >= 0"
                        )
            batch["relation_gold"] = pad_tuples([f.relations for f in features], 3)
        if targets_present(features, "entity_label_sets"):
            for f in features:
                if len(f.entity_label_sets) != len(f.entities):
                    raise ValueError(
                        f"{_where(f)}: {len(f.entity_label_sets)} entity_label_sets for {len(f.entities)} entities; "
                        "expected one label set per entity"
                    )
                if any(label < 0 for labels in f.entity_label_sets for label in labels):
                    raise ValueError(f"{_where(f)}: a negative label id in entity_label_sets")
            batch["entity_label_sets"] = _pad_label_sets([f.entity_label_sets for f in features])
        return batch

    def _entity_repr(self, h: Tensor, spans: Tensor) -> tuple[Tensor, Tensor]:
        """Head and tail vectors ``(B, E, D)`` of the entities ``spans`` ``(B, E, 2)``."""
        b_idx = torch.arange(h.shape[0], device=h.device)[:, None]
        start, end = spans[..., 0].clamp(min=0), spans[..., 1].clamp(min=0)
        rep = self.start_proj(h[b_idx, start]) + self.end_proj(h[b_idx, end])  # (B, E, D)
        if self.width_embedding is not None:
            rep = rep + self.width_embedding((end - start).clamp(max=self.max_width - 1))
        rep = self.dropout(F.gelu(rep))
        return F.gelu(self.head_proj(rep)), F.gelu(self.tail_proj(rep))

    def _score(self, head: Tensor, tail: Tensor, pb: Tensor, pi: Tensor, pj: Tensor) -> Tensor:
        """Biaffine scores ``(P, C + 1)`` of the pairs (head entity ``pi``, tail entity ``pj``) of
        examples ``pb``, from head/tail vectors ``(B, E, D)``.

        Equals ``self.bilinear(head[pb, pi], tail[pb, pj]) + self.linear(cat)``, but the
        bilinear form is applied to each ENTITY (``(B, E, C + 1, D)``) before pairs are gathered,
        so its cost is O(E D^2 + P D) per class instead of O(P D^2): 100x less for 60 entities.
        """
        head, tail = self.dropout(head), self.dropout(tail)
        projected = torch.einsum("bed,cdk->beck", head, self.bilinear.weight)  # (B, E, C + 1, D)
        head_p, tail_p = head[pb, pi], tail[pb, pj]  # (P, D)
        bilinear = (projected[pb, pi] @ tail_p[:, :, None]).squeeze(-1) + self.bilinear.bias  # (P, C + 1)
        return bilinear + self.linear(torch.cat([head_p, tail_p], dim=-1))

    def forward(self, hidden: Tensor, batch: Batch) -> HeadOutput:
        """Score candidate pairs (pair mode) or entities (single mode); CE over them."""
        h = self._cast(hidden)
        device = h.device
        spans = batch["entity_spans"].to(device)
        entity_mask = batch["entity_mask"].to(device).bool()
        head, tail = self._entity_repr(h, spans)
        if self.pair_mode == "single":
            return self._forward_single(head, tail, entity_mask, batch)

        B, E = entity_mask.shape
        candidates, in_window = self._candidate_pairs(spans, entity_mask)
        pair_index = in_window.nonzero()  # (P, 3)
        pb, pi, pj = pair_index.unbind(1)
        logits = self._score(head, tail, pb, pi, pj)  # (P, C + 1)
        tensors = {"pair_index": pair_index}
        stats = {"candidate_pairs": in_window.sum(), "pairs_outside_window": candidates.sum() - in_window.sum()}
        if "relation_gold" not in batch:
            return HeadOutput(logits=logits, tensors=tensors, stats=stats)

        gold = batch["relation_gold"].to(device)  # (B, R, 3)
        present = gold[..., 0] >= 0
        if present.any() and int(gold[..., 2][present].max()) >= self.num_labels:
            raise ValueError(f"relation label id >= num_labels ({self.num_labels}) in relation_gold")
        gb = torch.arange(B, device=device)[:, None].expand_as(present)[present]
        gh, gt, gl = gold[..., 0][present], gold[..., 1][present], gold[..., 2][present]
        target_grid = torch.full((B, E, E), self.null_index, dtype=torch.long, device=device)
        target_grid[gb, gh, gt] = gl
        times_listed = torch.zeros((B, E, E), dtype=torch.long, device=device)
        times_listed.index_put_((gb, gh, gt), torch.ones_like(gl), accumulate=True)
        targets = target_grid[pb, pi, pj]
        term = summed_term(F.cross_entropy(logits, targets, reduction="none"), logits)
        stats |= {
            "gold_pairs": present.sum(),
            "gold_pairs_outside_window": (~in_window[gb, gh, gt]).sum(),
            # a pair listed twice can learn only one label (the last listed)
            "gold_pairs_duplicate": (times_listed - 1).clamp(min=0).sum(),
        }
        return HeadOutput(logits=logits, loss_terms={"relation_ce": term}, tensors=tensors, stats=stats)

    def _candidate_pairs(self, spans: Tensor, entity_mask: Tensor) -> tuple[Tensor, Tensor]:
        """``(B, E, E)`` ordered pairs of distinct entities, and those within ``window`` tokens
        (the scored pairs: the units of ``relation_ce``)."""
        E = entity_mask.shape[1]
        eye = torch.eye(E, dtype=torch.bool, device=entity_mask.device)
        candidates = entity_mask[:, :, None] & entity_mask[:, None, :] & ~eye
        if self.window is None:
            return candidates, candidates
        return candidates, candidates & (entity_distance(spans[..., 0], spans[..., 1]) <= self.window)

    def loss_units(self, batch: Batch) -> dict[str, Tensor]:
        entity_mask = batch["entity_mask"].bool()
        if self.pair_mode == "single":  # every (entity, label) of the batch's entities
            return {"entity_bce": entity_mask.sum() * self.num_labels}
        return {"relation_ce": self._candidate_pairs(batch["entity_spans"], entity_mask)[1].sum()}

    def _forward_single(self, head: Tensor, tail: Tensor, entity_mask: Tensor, batch: Batch) -> HeadOutput:
        B, E = entity_mask.shape
        pb = torch.arange(B, device=head.device).repeat_interleave(E)
        pe = torch.arange(E, device=head.device).repeat(B)
        # the pair (entity, entity); reshape with an explicit class count: E may be 0 (a meme without spans)
        logits = self._score(head, tail, pb, pe, pe).view(B, E, self.num_labels)
        tensors = {"entity_mask": entity_mask}
        stats = {"candidate_entities": entity_mask.sum()}
        if "entity_label_sets" not in batch:
            return HeadOutput(logits=logits, tensors=tensors, stats=stats)
        label_sets = batch["entity_label_sets"].to(logits.device)  # (B, E, L), -1 padded
        if label_sets.numel() and int(label_sets.max()) >= self.num_labels:
            raise ValueError(f"entity label id >= num_labels ({self.num_labels}) in entity_label_sets")
        # multi-hot targets (B, E, C + 1): padding ids (-1) land in the extra last column, dropped
        targets = torch.zeros((B, E, self.num_labels + 1), dtype=logits.dtype, device=logits.device)
        targets.scatter_(2, label_sets.masked_fill(label_sets < 0, self.num_labels), 1.0)
        per_unit = F.binary_cross_entropy_with_logits(logits, targets[..., : self.num_labels], reduction="none")
        term = summed_term(per_unit[entity_mask], logits)  # (entities, labels)
        stats["labelled_entities"] = entity_mask.sum()
        stats["gold_labels"] = targets[..., : self.num_labels][entity_mask].sum()
        return HeadOutput(logits=logits, loss_terms={"entity_bce": term}, tensors=tensors, stats=stats)

    @torch.no_grad()
    def decode(self, output: HeadOutput, batch: Batch, features: list[Features]) -> list[WindowPrediction]:
        """Pair mode: relations whose argmax is not "no relation", as (head, tail, label, prob).
        Single mode: each entity's probability of every label (``entity_probs``) and its most
        probable label (``entity_labels``); the task's decoder applies the threshold."""
        if self.pair_mode == "single":
            return self._decode_single(output, features)
        confidence, label = output.logits.detach().float().softmax(-1).max(-1)
        confidence, label = confidence.cpu(), label.cpu()
        predictions = []
        pair_index = output.tensors["pair_index"].cpu()
        if len(features) != batch["input_ids"].shape[0]:
            raise ValueError(f"{len(features)} Features for a batch of {batch['input_ids'].shape[0]}")
        keep = label != self.null_index
        for b, f in enumerate(features):
            rows = (keep & (pair_index[:, 0] == b)).nonzero().squeeze(1).tolist()
            relations = [
                (int(pair_index[r, 1]), int(pair_index[r, 2]), int(label[r]), float(confidence[r])) for r in rows
            ]
            predictions.append(WindowPrediction(task=f.task, doc_id=f.doc_id, window=f.window, relations=relations))
        return predictions

    def _decode_single(self, output: HeadOutput, features: list[Features]) -> list[WindowPrediction]:
        probabilities = output.logits.detach().float().sigmoid().cpu()  # (B, E, C)
        if len(features) != probabilities.shape[0]:
            raise ValueError(f"{len(features)} Features for a batch of {probabilities.shape[0]}")
        top, label = probabilities.max(-1)
        predictions = []
        for b, f in enumerate(features):
            n = len(f.entities)
            predictions.append(WindowPrediction(
                task=f.task, doc_id=f.doc_id, window=f.window, entity_probs=probabilities[b, :n].tolist(),
                entity_labels=list(zip(label[b, :n].tolist(), top[b, :n].tolist())),
            ))
        return predictions
