"""Ranking head: relevance of a (question, candidate) pair and a score to order candidates.

A decoder LLM has no [CLS] token and attends causally, so the LAST non-padding token is the only
one whose state has seen the whole pair: ``pooling="last"`` (default) takes it; ``"mean"``
averages the non-padding tokens instead. The pooled state is classified over the relevance
levels, label ids ordered by increasing relevance (:data:`RELEVANCE_LEVELS` for 2017 T3:
0 = Bad, 1 = PotentiallyUseful, 2 = Good).

The ranking score is ``score="top"`` (default): the probability of the most relevant level,
P(Good). The official 2017 T3 metrics (MAP, MRR, AvgRec) treat Good as relevant and the other
two levels as not, so P(Good) is the score that estimates what they reward. ``"expected"`` gives
the expected relevance rescaled to [0, 1], ``sum_k P(k) * k / (C - 1)``, which also rewards
PotentiallyUseful.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mtpeft.errors import ConfigError
from mtpeft.heads.base import HEADS, Batch, HeadOutput, TaskHead, _where, collate_inputs, summed_term, targets_present
from mtpeft.tasks.features import Features, WindowPrediction

RELEVANCE_LEVELS = ("Bad", "PotentiallyUseful", "Good")
"""Label ids of semeval2017t3 relevance, by increasing relevance (the id is the index)."""


def pool_hidden(hidden: Tensor, attention_mask: Tensor, pooling: Literal["last", "mean"]) -> Tensor:
    """Pool ``(B, T, H)`` to ``(B, H)`` over the positions where ``attention_mask`` is 1.

    ``last`` takes the last attended position of each row (right or left padding alike);
    ``mean`` averages the attended positions. Padding positions get no gradient either way.
    """
    mask = attention_mask.to(hidden.device).bool()
    if pooling == "last":
        positions = torch.arange(hidden.shape[1], device=hidden.device).expand_as(mask)
        last = torch.where(mask, positions, -1).max(dim=1).values  # (B,)
        if bool((last < 0).any()):
            raise ValueError("a row of attention_mask has no attended token")
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    if pooling == "mean":
        weights = mask.to(hidden.dtype)[..., None]  # (B, T, 1)
        return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)
    raise ConfigError(f"unknown pooling {pooling!r}; valid choices: last, mean")


@HEADS.register("ranking")
class RankingHead(TaskHead):
    """Relevance classifier over a pooled (question, candidate) state, see the module docstring.

    Output: ``logits`` ``(B, num_labels)``; ``tensors["score"]`` ``(B,)`` the ranking score.
    """

    kind = "ranking"

    def __init__(
        self,
        hidden_size: int,
        num_labels: int,
        pooling: Literal["last", "mean"] = "last",
        score: Literal["top", "expected"] = "top",
        dropout: float = 0.1,
    ) -> None:
        super().__init__(hidden_size, num_labels)
        if num_labels < 2:
            raise ConfigError(f"ranking head: num_labels must be >= 2 relevance levels, got {num_labels}")
        if pooling not in ("last", "mean"):
            raise ConfigError(f"ranking head: unknown pooling {pooling!r}; valid choices: last, mean")
        if score not in ("top", "expected"):
            raise ConfigError(f"ranking head: unknown score {score!r}; valid choices: top, expected")
        self.pooling = pooling
        self.score = score
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_size, num_labels)

    @staticmethod
    def collate(features: list[Features], pad_token_id: int) -> Batch:
        """``input_ids``, ``attention_mask`` and, with targets, ``rank_labels`` (B,)."""
        batch = collate_inputs(features, pad_token_id)
        if targets_present(features, "rank_label"):
            for f in features:
                if f.rank_label < 0:
                    raise ValueError(f"{_where(f)}: rank_label {f.rank_label}; expected a relevance level id >= 0")
            batch["rank_labels"] = torch.tensor([f.rank_label for f in features], dtype=torch.long)
        return batch

    def ranking_score(self, logits: Tensor) -> Tensor:
        """Score ``(B,)`` in [0, 1] from relevance logits ``(B, C)``: P(top level) or expected level."""
        probs = logits.float().softmax(-1)
        if self.score == "top":
            return probs[:, -1]
        levels = torch.arange(probs.shape[-1], device=probs.device, dtype=probs.dtype)
        return (probs * levels).sum(-1) / (probs.shape[-1] - 1)

    def forward(self, hidden: Tensor, batch: Batch) -> HeadOutput:
        """Relevance logits of the pooled pair; CE over the pairs of the batch."""
        pooled = pool_hidden(self._cast(hidden), batch["attention_mask"], self.pooling)  # (B, H)
        logits = self.classifier(self.dropout(pooled))  # (B, C)
        tensors = {"score": self.ranking_score(logits.detach())}
        if "rank_labels" not in batch:
            return HeadOutput(logits=logits, tensors=tensors)
        labels = batch["rank_labels"].to(logits.device)
        if int(labels.max()) >= self.num_labels:
            raise ValueError(f"rank label id >= num_labels ({self.num_labels}) in rank_labels")
        term = summed_term(F.cross_entropy(logits, labels, reduction="none"), logits)
        return HeadOutput(logits=logits, loss_terms={"rank_ce": term}, tensors=tensors)

    def loss_units(self, batch: Batch) -> dict[str, Tensor]:
        """One unit per (question, comment) pair: ``rank_ce`` is summed over the pairs."""
        return {"rank_ce": torch.tensor(batch["rank_labels"].shape[0])}

    @torch.no_grad()
    def decode(self, output: HeadOutput, batch: Batch, features: list[Features]) -> list[WindowPrediction]:
        """Probabilities of every relevance level and the ranking score of each pair."""
        if len(features) != output.logits.shape[0]:
            raise ValueError(f"{len(features)} Features for a batch of {output.logits.shape[0]}")
        probs = output.logits.detach().float().softmax(-1).cpu()
        scores = self.ranking_score(output.logits.detach()).cpu()
        return [
            WindowPrediction(
                task=f.task,
                doc_id=f.doc_id,
                window=f.window,
                rank_probs=probs[b].tolist(),
                rank_score=float(scores[b]),
                group_id=f.group_id,
                candidate_id=f.candidate_id,
            )
            for b, f in enumerate(features)
        ]
