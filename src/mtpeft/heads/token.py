"""Token classification head: one label per token (BIO or a discontiguous-capable scheme).

The label scheme belongs to the task's encoder; this head only sees label ids in
``[0, num_labels)`` and ``IGNORE_INDEX`` where a token carries no loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mtpeft.heads.base import (
    HEADS,
    Batch,
    HeadOutput,
    TaskHead,
    collate_inputs,
    pad_int_rows,
    targets_present,
    zero_loss,
)
from mtpeft.tasks.features import IGNORE_INDEX, Features, WindowPrediction


@HEADS.register("token")
class TokenHead(TaskHead):
    """A linear classifier over token states; cross-entropy ignoring ``IGNORE_INDEX``.

    ``logits`` of the output are ``(B, T, num_labels)``.
    """

    kind = "token"

    def __init__(self, hidden_size: int, num_labels: int, dropout: float = 0.1) -> None:
        super().__init__(hidden_size, num_labels)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_size, num_labels)

    @staticmethod
    def collate(features: list[Features], pad_token_id: int) -> Batch:
        """``input_ids``, ``attention_mask`` and, with targets, ``labels`` (B, T) (padding ignored)."""
        batch = collate_inputs(features, pad_token_id)
        if targets_present(features, "token_labels"):
            for f in features:
                if len(f.token_labels) != len(f.input_ids):
                    raise ValueError(
                        f"task {f.task!r}, document {f.doc_id!r}, window {f.window}: "
                        f"{len(f.token_labels)} token_labels for {len(f.input_ids)} input_ids; "
                        "expected one label per token"
                    )
            batch["labels"] = pad_int_rows([f.token_labels for f in features], IGNORE_INDEX)
        return batch

    def forward(self, hidden: Tensor, batch: Batch) -> HeadOutput:
        """Token logits ``(B, T, C)``; loss = mean CE over tokens with a label."""
        logits = self.classifier(self.dropout(self._cast(hidden)))  # (B, T, C)
        if "labels" not in batch:
            return HeadOutput(loss=None, logits=logits)
        mask = batch["attention_mask"].to(logits.device).bool()
        labels = batch["labels"].to(logits.device).masked_fill(~mask, IGNORE_INDEX)
        labelled = labels != IGNORE_INDEX
        if labelled.any():
            loss = F.cross_entropy(logits[labelled], labels[labelled])
        else:  # nothing to learn in this batch, but keep the graph for a multi-task sum
            loss = zero_loss(logits)
        return HeadOutput(
            loss=loss,
            logits=logits,
            losses={"token_ce": loss.detach()},
            stats={"labelled_tokens": labelled.sum()},
        )

    @torch.no_grad()
    def decode(self, output: HeadOutput, batch: Batch, features: list[Features]) -> list[WindowPrediction]:
        """Argmax label and its probability for every token of each window (padding dropped)."""
        if len(features) != output.logits.shape[0]:
            raise ValueError(f"{len(features)} Features for a batch of {output.logits.shape[0]}")
        probs = output.logits.float().softmax(-1)
        confidence, label = probs.max(-1)  # (B, T)
        confidence, label = confidence.cpu(), label.cpu()
        predictions = []
        for b, f in enumerate(features):
            n = len(f.input_ids)
            predictions.append(
                WindowPrediction(
                    task=f.task,
                    doc_id=f.doc_id,
                    window=f.window,
                    token_labels=label[b, :n].tolist(),
                    token_confidences=confidence[b, :n].tolist(),
                )
            )
        return predictions
