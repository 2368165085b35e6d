"""The CUI classifier of the disorder heads (token and span): one CUI class per mention.

A mention is represented by the mean of its fragments' token states, and classified by ONE linear
layer over the task's CUI classes (``CUI-less``, ``<other>``, the training CUIs; see
:mod:`mtpeft.tasks.normalisation`). It is trained with the tags or spans, in the same forward: its
loss term ``cui_ce`` is the cross-entropy summed over the gold mentions the batch carries, its
units the number of those mentions (known from the collated batch).

Because the classifier is linear, its logits of a mention's mean state equal the mean of its
logits of each token state: ``W mean(h) + b = mean(W h + b)``. At prediction time the mentions are
only known after the task decodes tags or links across windows, so the head returns the logits of
the pieces it predicts (the tokens it tags as inside a mention; the fragments it predicts) and the
task pools them over each decoded mention, weighted by length
(:func:`mtpeft.tasks.normalisation.pooled_logits`), which is exact (tested in float64).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mtpeft.heads.base import Batch, LossTerm, _where, pad_int_rows, summed_term, targets_present
from mtpeft.tasks.features import Features, TokenRange

TERM = "cui_ce"
"""The name of the classifier's loss term (train log: ``losses``/``terms`` of the task)."""


class MentionNormaliser(nn.Module):
    """A linear CUI classifier over the mean token state of a mention (see the module docstring)."""

    def __init__(self, hidden_size: int, num_classes: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_size, num_classes)

    @staticmethod
    def collate(features: list[Features]) -> Batch:
        """With targets: ``cui_tokens`` ``(B, M, K)``, the token positions of each gold mention
        (padded -1), and ``cui_labels`` ``(B, M)``, its class id (-1 on padding); else nothing."""
        if not targets_present(features, "cui_labels"):
            return {}
        rows: list[list[list[int]]] = []
        for f in features:
            mentions = f.cui_mentions or []
            if len(mentions) != len(f.cui_labels):
                raise ValueError(f"{_where(f)}: {len(mentions)} cui_mentions for {len(f.cui_labels)} cui_labels")
            row = []
            for ranges, label in zip(mentions, f.cui_labels):
                positions = [t for start, end in ranges for t in range(start, end + 1)]
                if not positions or min(positions) < 0 or max(positions) >= len(f.input_ids) or label < 0:
                    raise ValueError(
                        f"{_where(f)}: CUI target {ranges} -> {label}; expected token ranges inside the window "
                        "and a class id >= 0"
                    )
                row.append(positions)
            rows.append(row)
        width = max((len(p) for row in rows for p in row), default=0)
        mentions = max((len(row) for row in rows), default=0)
        tokens = torch.full((len(rows), mentions, width), -1, dtype=torch.long)
        for b, row in enumerate(rows):
            for m, positions in enumerate(row):
                tokens[b, m, : len(positions)] = torch.tensor(positions)
        return {"cui_tokens": tokens, "cui_labels": pad_int_rows([f.cui_labels for f in features], -1, mentions)}

    @staticmethod
    def loss_units(batch: Batch) -> dict[str, Tensor]:
        """``{"cui_ce": gold mentions with a CUI target}``, or ``{}`` for a batch without them."""
        return {TERM: (batch["cui_labels"] >= 0).sum()} if "cui_labels" in batch else {}

    def loss_terms(self, hidden: Tensor, batch: Batch) -> dict[str, LossTerm]:
        """``{"cui_ce": CE summed over the gold mentions}`` from hidden states ``(B, T, H)``."""
        if "cui_labels" not in batch:
            return {}
        index = batch["cui_tokens"].to(hidden.device)  # (B, M, K)
        labels = batch["cui_labels"].to(hidden.device)  # (B, M)
        B, M, K = index.shape
        present = (index >= 0).to(hidden.dtype)
        rows = torch.arange(B, device=hidden.device)[:, None, None]
        gathered = hidden[rows, index.clamp(min=0)]  # (B, M, K, H)
        pooled = (gathered * present[..., None]).sum(2) / present.sum(2).clamp(min=1)[..., None]
        logits = self.classifier(self.dropout(pooled))  # (B, M, C)
        keep = labels >= 0
        return {TERM: summed_term(F.cross_entropy(logits[keep], labels[keep], reduction="none"), logits)}

    def outputs(self, hidden: Tensor, batch: Batch) -> tuple[dict[str, LossTerm], dict[str, Tensor]]:
        """What the classifier adds to its head's output: the ``cui_ce`` term when the batch has CUI
        targets, and ``cui_token_logits`` ``(B, T, C)`` for decoding (eval mode, or no targets)."""
        terms = self.loss_terms(hidden, batch)
        tensors = {} if self.training and terms else {"cui_token_logits": self.token_logits(hidden)}
        return terms, tensors

    def token_logits(self, hidden: Tensor) -> Tensor:
        """The classifier's logits of every token state, ``(B, T, C)`` (for decoding, in eval mode)."""
        return self.classifier(self.dropout(hidden))

    @staticmethod
    def range_logits(token_logits: Tensor, ranges: list[TokenRange]) -> Tensor:
        """Mean logits over each inclusive token range of one window: ``(len(ranges), C)``.

        ``token_logits`` is ``(T, C)``; cumulative sums make each range O(1)."""
        if not ranges:
            return token_logits.new_zeros((0, token_logits.shape[-1]))
        cumulative = F.pad(token_logits.double().cumsum(0), (0, 0, 1, 0))  # (T + 1, C)
        starts = torch.tensor([s for s, _ in ranges], device=token_logits.device)
        ends = torch.tensor([e for _, e in ranges], device=token_logits.device) + 1
        return (cumulative[ends] - cumulative[starts]) / (ends - starts)[:, None].double()


def cui_predictions(token_logits: Tensor | None, ranges_per_window: list[list[TokenRange]]) -> list[tuple]:
    """Per window ``(ranges, float32 array (len(ranges), C))``, or ``(None, None)`` when the head
    has no classifier."""
    if token_logits is None:
        return [(None, None)] * len(ranges_per_window)
    logits = token_logits.detach().float().cpu()
    out = []
    for b, ranges in enumerate(ranges_per_window):
        out.append((list(ranges), MentionNormaliser.range_logits(logits[b], ranges).float().numpy()))
    return out
