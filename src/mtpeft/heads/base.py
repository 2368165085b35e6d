"""What every task head shares: the output type, the interface, the registry and the factory.

A head turns the backbone's hidden states ``(B, T, H)`` of one task's batch into a loss and the
scores its ``decode`` needs. Each head kind owns its ``collate`` (``list[Features]`` -> tensors),
because only the head knows how its targets are laid out. Conventions shared by all heads:

* padding is on the RIGHT; ``attention_mask`` is 1 on real tokens, 0 on padding;
* targets are present for all examples of a batch or for none (inference): a mixed batch is an
  error, because a missing target would otherwise read as "no span / no relation" and train
  the model towards it;
* heads that classify candidates (span, relation) have ``num_labels + 1`` output columns, the
  LAST one (``null_index == num_labels``) meaning "no span" / "no relation", so label ids of
  :class:`~mtpeft.tasks.features.Features` are used unchanged;
* a head's loss is made of :class:`LossTerm` s, each the SUM of a per-unit loss over the batch and
  the number of its units (tokens, candidate spans, slot pairs, entity pairs, examples), so that
  the trainer can normalise every term by its unit count over a whole optimiser step (all
  micro-batches, all processes) and gradient accumulation equals one large batch. The unit
  counts are known from the collated batch alone (:meth:`TaskHead.loss_units`), before any
  forward pass; ``forward`` reports the same counts. ``HeadOutput.loss`` is the batch's own
  mean (each term's sum over its own units, weighted), for evaluation losses and benchmarks.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from mtpeft.errors import ConfigError
from mtpeft.registry import Registry
from mtpeft.tasks.features import Features, WindowPrediction

Batch = dict[str, Tensor]
"""The tensors a head's ``collate`` builds; every value is a tensor, batch dimension first."""


@dataclass
class LossTerm:
    """One part of a head's loss: ``total``, the SUM of a per-unit loss over the batch (0-dim, with
    its graph), ``units``, how many units it sums over (0-dim count), and ``weight``, the term's
    weight in the task's loss (e.g. the span head's ``link_weight``).

    The task's loss over a set of micro-batches is ``sum_terms weight * sum(total) / sum(units)``:
    a term with no units contributes 0 (its ``total`` is a 0 still connected to the graph).
    """

    total: Tensor
    units: Tensor
    weight: float = 1.0

    def mean(self) -> Tensor:
        """``total / units`` (0 when there are no units)."""
        return self.total / self.units.clamp(min=1).to(self.total.dtype)


@dataclass
class HeadOutput:
    """What a head's ``forward`` returns.

    ``logits`` are the head's main raw scores (shape depends on the head, see its docstring);
    ``loss_terms`` the parts of its loss (empty when the batch carries no targets);
    ``tensors`` holds any other tensor its ``decode`` needs (candidate indices, pair scores);
    ``stats`` 0-dim tensors of counts worth reporting (e.g. gold pairs outside the relation
    window). They stay tensors so a training step needs no device synchronisation; call
    ``int()`` when logging.
    """

    logits: Tensor
    loss_terms: dict[str, LossTerm] = field(default_factory=dict)
    tensors: dict[str, Tensor] = field(default_factory=dict)
    stats: dict[str, Tensor] = field(default_factory=dict)

    @property
    def loss(self) -> Tensor | None:
        """This batch's loss: ``sum_terms weight * total / units``; ``None`` without targets."""
        if not self.loss_terms:
            return None
        return sum(term.weight * term.mean() for term in self.loss_terms.values())

    @property
    def losses(self) -> dict[str, Tensor]:
        """Each term's mean over this batch's units (detached, for logging)."""
        return {name: term.mean().detach() for name, term in self.loss_terms.items()}


class TaskHead(nn.Module, ABC):
    """Base class of the task heads: typed primitives in, :class:`HeadOutput` out."""

    kind: str = ""

    def __init__(self, hidden_size: int, num_labels: int) -> None:
        super().__init__()
        if hidden_size < 1:
            raise ConfigError(f"{type(self).__name__}: hidden_size must be >= 1, got {hidden_size}")
        if num_labels < 1:
            raise ConfigError(f"{type(self).__name__}: num_labels must be >= 1, got {num_labels}")
        self.hidden_size = hidden_size
        self.num_labels = num_labels

    @staticmethod
    @abstractmethod
    def collate(features: list[Features], pad_token_id: int) -> Batch:
        """Pad ``input_ids`` (RIGHT), build ``attention_mask`` and this head kind's targets."""

    @abstractmethod
    def forward(self, hidden: Tensor, batch: Batch) -> HeadOutput:
        """Score hidden states ``(B, T, H)`` of ``batch``; loss when the batch has targets."""

    @abstractmethod
    def decode(self, output: HeadOutput, batch: Batch, features: list[Features]) -> list[WindowPrediction]:
        """One :class:`WindowPrediction` per ``Features`` (same order), confidences in [0, 1]."""

    @abstractmethod
    def loss_units(self, batch: Batch) -> dict[str, Tensor]:
        """Term name -> 0-dim unit count of a collated batch WITH targets, before any forward.

        Equals the ``units`` of the :class:`LossTerm` s that ``forward`` returns on that batch
        (tested for every head), so a trainer can normalise by the counts of a whole step first.
        """

    def num_parameters(self, trainable_only: bool = False) -> int:
        """Number of parameters of this head (only those with ``requires_grad`` if asked)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    def _cast(self, hidden: Tensor) -> Tensor:
        """Hidden states in the head's dtype (a bf16 or 4-bit backbone feeds an fp32 head)."""
        dtype = next(self.parameters()).dtype
        return hidden if hidden.dtype == dtype else hidden.to(dtype)


HEADS: Registry[type[TaskHead]] = Registry("head kind")


def create_task_head(kind: str, hidden_size: int, num_labels: int, **options: object) -> TaskHead:
    """Build the head registered as ``kind`` (token, span, relation, ranking).

    ``options`` are the head's own keyword arguments (e.g. ``max_span_len`` for span); an
    unknown option raises :class:`ConfigError` listing the valid ones.
    """
    cls = HEADS.get(kind)
    params = inspect.signature(cls.__init__).parameters
    valid = [name for name in params if name not in ("self", "hidden_size", "num_labels")]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ConfigError(
            f"unknown option(s) {', '.join(unknown)} for head kind {kind!r}; valid options: {', '.join(valid)}"
        )
    return cls(hidden_size=hidden_size, num_labels=num_labels, **options)


# --- helpers shared by the collate functions -------------------------------------------------


def _where(f: Features) -> str:
    return f"task {f.task!r}, document {f.doc_id!r}, window {f.window}"


def check_features(features: list[Features]) -> None:
    """Raise ``ValueError`` unless ``features`` is a non-empty list of one task, each consistent.

    These are contract violations of an encoder (a bug), not bad user input, hence ValueError.
    """
    if not features:
        raise ValueError("cannot collate an empty list of Features")
    tasks = sorted({f.task for f in features})
    if len(tasks) > 1:
        raise ValueError(f"a head collates Features of one task, got several: {', '.join(tasks)}")
    for f in features:
        if not f.input_ids:
            raise ValueError(f"{_where(f)}: empty input_ids")
        if len(f.token_offsets) != len(f.input_ids):
            raise ValueError(
                f"{_where(f)}: {len(f.token_offsets)} token_offsets for {len(f.input_ids)} input_ids; "
                "expected one offset per token"
            )


def targets_present(features: list[Features], name: str) -> bool:
    """Whether the field ``name`` is filled; all-or-none, a mixed batch raises ``ValueError``."""
    filled = [getattr(f, name) is not None for f in features]
    if any(filled) and not all(filled):
        missing = next(f for f, ok in zip(features, filled) if not ok)
        raise ValueError(
            f"{_where(missing)}: {name} is None while other Features of the batch have it; "
            "expected targets for all examples of a batch (training) or for none (inference)"
        )
    return all(filled)


def pad_int_rows(rows: list[list[int]], pad_value: int, width: int | None = None) -> Tensor:
    """Right-pad lists of ints into a ``(len(rows), width)`` int64 tensor."""
    width = max((len(r) for r in rows), default=0) if width is None else width
    out = torch.full((len(rows), width), pad_value, dtype=torch.long)
    for i, row in enumerate(rows):
        if row:
            out[i, : len(row)] = torch.tensor(row, dtype=torch.long)
    return out


def pad_tuples(rows: list[list[tuple[int, ...]]], size: int) -> Tensor:
    """Right-pad lists of ``size``-tuples into ``(B, max_len, size)``; padding rows are -1."""
    width = max((len(r) for r in rows), default=0)
    out = torch.full((len(rows), width, size), -1, dtype=torch.long)
    for i, row in enumerate(rows):
        if row:
            out[i, : len(row)] = torch.tensor(row, dtype=torch.long).view(len(row), size)
    return out


def collate_inputs(features: list[Features], pad_token_id: int) -> Batch:
    """``input_ids`` (B, T) padded RIGHT with ``pad_token_id`` and ``attention_mask`` (B, T)."""
    check_features(features)
    input_ids = pad_int_rows([f.input_ids for f in features], pad_token_id)
    lengths = torch.tensor([len(f.input_ids) for f in features])
    attention_mask = (torch.arange(input_ids.shape[1])[None, :] < lengths[:, None]).long()
    return {"input_ids": input_ids, "attention_mask": attention_mask}


def check_token_range(f: Features, what: str, start: int, end: int) -> None:
    """Raise ``ValueError`` unless ``0 <= start <= end < len(input_ids)`` (end inclusive)."""
    if not 0 <= start <= end < len(f.input_ids):
        raise ValueError(
            f"{_where(f)}: {what} token range ({start}, {end}) is outside the window; "
            f"expected 0 <= start <= end < {len(f.input_ids)} (end inclusive)"
        )


def zero_loss(logits: Tensor) -> Tensor:
    """A 0 loss still connected to the graph, for a batch whose targets have no units."""
    return logits.sum() * 0.0


def summed_term(per_unit: Tensor, like: Tensor, weight: float = 1.0) -> LossTerm:
    """A :class:`LossTerm` from the per-unit losses ``per_unit`` (any shape, already masked to
    the units); ``like`` keeps the graph connected when there are no units."""
    total = per_unit.sum() if per_unit.numel() else zero_loss(like)
    return LossTerm(total=total, units=torch.tensor(per_unit.numel(), device=like.device), weight=weight)
