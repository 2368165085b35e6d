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
    summed_term,
)
from mtpeft.heads.normalisation import MentionNormaliser, cui_predictions
from mtpeft.tasks.features import IGNORE_INDEX, Features, WindowPrediction


@HEADS.register("token")
class TokenHead(TaskHead):
    """A linear classifier over token states; cross-entropy ignoring ``IGNORE_INDEX``.

    ``logits`` of the output are ``(B, T, num_labels)``. With ``cui_classes`` (2014 T7) the head
    also classifies each mention's CUI (:class:`~mtpeft.heads.normalisation.MentionNormaliser`,
    loss term ``cui_ce``); its decoded pieces are the tokens tagged other than label 0 (the
    scheme's ``O``).
    """

    kind = "token"

    def __init__(self, hidden_size: int, num_labels: int, dropout: float = 0.1, cui_classes: int = 0) -> None:
        super().__init__(hidden_size, num_labels)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_size, num_labels)
        self.normaliser = MentionNormaliser(hidden_size, cui_classes, dropout) if cui_classes else None

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
        return batch | MentionNormaliser.collate(features)

    def forward(self, hidden: Tensor, batch: Batch) -> HeadOutput:
        """Token logits ``(B, T, C)``; loss term ``token_ce``: CE summed over tokens with a label."""
        h = self._cast(hidden)
        logits = self.classifier(self.dropout(h))  # (B, T, C)
        cui_terms, tensors = self.normaliser.outputs(h, batch) if self.normaliser is not None else ({}, {})
        if "labels" not in batch:
            return HeadOutput(logits=logits, tensors=tensors)
        labelled = self._labelled(batch).to(logits.device)
        labels = batch["labels"].to(logits.device)
        per_token = F.cross_entropy(logits[labelled], labels[labelled], reduction="none")
        return HeadOutput(
            logits=logits,
            loss_terms={"token_ce": summed_term(per_token, logits), **cui_terms},
            tensors=tensors,
            stats={"labelled_tokens": labelled.sum()},
        )

    @staticmethod
    def _labelled(batch: Batch) -> Tensor:
        """``(B, T)`` bool: attended tokens with a label (the units of ``token_ce``)."""
        return batch["attention_mask"].bool() & (batch["labels"] != IGNORE_INDEX)

    def loss_units(self, batch: Batch) -> dict[str, Tensor]:
        cui = MentionNormaliser.loss_units(batch) if self.normaliser is not None else {}
        return {"token_ce": self._labelled(batch).sum(), **cui}

    @torch.no_grad()
    def decode(self, output: HeadOutput, batch: Batch, features: list[Features]) -> list[WindowPrediction]:
        """Argmax label and its probability for every token of each window (padding dropped)."""
        if len(features) != output.logits.shape[0]:
            raise ValueError(f"{len(features)} Features for a batch of {output.logits.shape[0]}")
        probs = output.logits.float().softmax(-1)
        confidence, label = probs.max(-1)  # (B, T)
        confidence, label = confidence.cpu(), label.cpu()
        tagged = [[(t, t) for t in (label[b, : len(f.input_ids)] != 0).nonzero().squeeze(1).tolist()]
                  for b, f in enumerate(features)]  # fmt: skip
        cuis = cui_predictions(output.tensors.get("cui_token_logits"), tagged)
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
                    cui_ranges=cuis[b][0],
                    cui_logits=cuis[b][1],
                )
            )
        return predictions
