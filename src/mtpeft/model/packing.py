"""Padding-free (packed) batches: several examples share one row, each attending only to itself.

A step's examples (any mix of tasks) are laid out in rows of one width ``W``: each example's
tokens are copied into a row at some offset, with ``position_ids`` restarting at 0 for it. With
``attention_mask=None`` and ``use_cache=False``, transformers reads those positions as packed
sequences (``masking_utils.find_packed_sequence_indices``) and builds block-diagonal causal masks
(SDPA, eager, flex; varlen with flash-attention), so every example's states equal those of its
unpacked forward. :meth:`PackedLayout.unpack` hands each task its examples' states back as the
padded ``(B_t, T_t, H)`` tensor its head expects (zeros on padding), so heads are unchanged.

Rows mix tasks. The rows are a task-ordered sequence: each task's examples are packed
first-fit-decreasing, first into the room left at the end of the previous task's last row, then
into new rows, ordered fullest first, so that the least-full row is left for the next task; a
task's tokens are therefore one contiguous range of the flattened ``(R * W)`` batch, and routing
per token (:mod:`mtpeft.adapters.token_rows`) stays one slice per adapter. One task per row would
keep row routing but leaves every task's last row part empty: on the public-data workload of the
benchmark (2021 T6 both levels + 2016 T3, 24 examples a step) the real-token share is 0.86 for one
task per row against 0.93 for mixed rows (0.31 padded), and over the demo's steps (8 examples of
six tasks) 0.72 against 0.91 (0.57 padded); per-token routing of contiguous task ranges costs
nothing measurable (``benchmarks/RESULTS.md``).

The width: between the longest example and ``budget`` tokens, the one that computes fewest
positions. Why a budget at all: SDPA with a block mask still computes every ``W x W`` score on
CPU, so a row's attention cost grows with ``W`` (on SmolLM2-135M a forward and backward of 1024
tokens took 12 s as one row of 1024 and 7.5 s as four rows of 256). An example longer than the
budget is never truncated: ``W`` becomes its length and it fills a row of its own.

Where packing cannot apply (the backbone ignores ``position_ids`` or builds no block masks; the
transformers guide "Padding-free training" says the ``position_ids`` path serves standard
attention only, not linear-attention or convolution models), which :func:`packed_attention_problem`
checks once per model by running it, :class:`GroupedLayout` runs the step's rows in forwards of
similar lengths instead. Both are exact.

Why hand-written: TRL's ``DataCollatorWithFlattening`` and torchtune's ``PackedDataset`` pack
single-task token streams for a language-model loss; here heads need their examples' states
back per task, with adapters routed per example (per token in a mixed row), which neither provides.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from mtpeft.errors import ConfigError

DEFAULT_BUDGET = 256
"""Tokens per packed row (see the module docstring for why not more on a CPU)."""

Mode = Literal["packed", "grouped", "padded"]
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Packing:
    """How a batch's examples reach the backbone: ``packed`` rows of at most ``budget`` tokens
    (unless one example is longer), ``grouped`` forwards of similar lengths, or ``padded``."""

    mode: Mode = "packed"
    budget: int = DEFAULT_BUDGET
    mix_tasks: bool = True
    """Rows may hold several tasks (routing per token); ``False``: one task per row (the measured
    alternative, ``benchmarks/``)."""

    def __post_init__(self) -> None:
        if self.mode not in ("packed", "grouped", "padded"):
            raise ConfigError(f"unknown packing mode {self.mode!r}; valid choices: packed, grouped, padded")
        if self.budget < 1:
            raise ConfigError(f"packing budget must be >= 1 token, got {self.budget}")


# ---------------------------------------------------------------------------------- the packer

Slot = tuple[int, int]
"""``(group, example)``: an example of a group (task) of the batch."""


def pack_rows(lengths: Sequence[Sequence[int]], width: int, mix: bool = True) -> list[list[Slot]]:
    """Rows of ``width`` tokens holding every example; groups in order, each contiguous.

    ``lengths[g][i]`` is the length of example ``i`` of group ``g`` (each ``<= width``); ``mix``:
    a group may start in the room the previous group left (else each row holds one group).
    Returns the rows, each a list of slots in the order they sit in the row.
    """
    rows: list[list[Slot]] = []
    free = 0  # room left at the end of the last row
    for g, group in enumerate(lengths):
        free = free if mix else 0
        order = sorted(range(len(group)), key=lambda i: (-group[i], i))
        head = []
        for i in order:
            if group[i] <= free:
                head.append(i)
                free -= group[i]
        if head:
            rows[-1].extend((g, i) for i in head)
        bins: list[list[int]] = []
        fill: list[int] = []
        taken = set(head)
        for i in order:  # first fit, longest first
            if i in taken:
                continue
            for b in range(len(bins)):
                if fill[b] + group[i] <= width:
                    bins[b].append(i)
                    fill[b] += group[i]
                    break
            else:
                bins.append([i])
                fill.append(group[i])
        ranked = sorted(range(len(bins)), key=lambda b: -fill[b])  # least full last: the next group fills it
        rows.extend([(g, i) for i in bins[b]] for b in ranked)
        if bins:
            free = width - fill[ranked[-1]]
    return rows


def choose_width(lengths: Sequence[Sequence[int]], budget: int, mix: bool = True) -> tuple[int, list[list[Slot]]]:
    """The row width (longest example ... ``max(longest, budget)``) with the fewest computed
    positions ``rows x width`` (ties: the narrower), and its rows."""
    flat = [n for group in lengths for n in group]
    longest, total = max(flat), sum(flat)
    top = max(longest, min(total, budget))
    step = max(1, (top - longest) // 32)
    best: tuple[int, int, list[list[Slot]]] | None = None
    for width in sorted({*range(longest, top + 1, step), top}):
        rows = pack_rows(lengths, width, mix)
        if best is None or len(rows) * width < best[0]:
            best = (len(rows) * width, width, rows)
    return best[1], best[2]


# ---------------------------------------------------------------------------------- layouts


def _lengths(mask: Tensor) -> list[int]:
    return [int(n) for n in mask.sum(1)]


@dataclass
class PackedLayout:
    """Where every example of a batch sits in ``R`` packed rows of width ``W``.

    ``token_groups[j]`` is the group (task) whose route token ``j`` of the flattened batch takes
    (padding at a row's end takes its row's last example's group, so each group stays one range);
    ``index`` picks, for each group in order, its ``(B_g, T_g)`` padded grid from the flattened
    states, with ``R * W`` (a zero row) on padding.
    """

    input_ids: Tensor  # (R, W)
    position_ids: Tensor  # (R, W)
    token_groups: list[int]
    index: Tensor  # (sum_g B_g * T_g,)
    shapes: list[tuple[int, int]]  # (B_g, T_g)
    real_tokens: int

    @classmethod
    def build(
        cls, inputs: Sequence[tuple[Tensor, Tensor]], budget: int, pad_token_id: int, mix: bool = True
    ) -> PackedLayout:
        """From each group's right-padded ``(input_ids, attention_mask)``, both ``(B_g, T_g)``."""
        lengths = [_lengths(mask) for _, mask in inputs]
        if any(n < 1 for group in lengths for n in group):
            raise ValueError("cannot pack an example without tokens")
        width, rows = choose_width(lengths, budget, mix)
        ids = torch.full((len(rows), width), pad_token_id, dtype=torch.long)
        positions = torch.zeros((len(rows), width), dtype=torch.long)
        token_groups: list[int] = []
        starts: dict[Slot, int] = {}
        for r, row in enumerate(rows):
            offset = 0
            for g, i in row:
                n = lengths[g][i]
                ids[r, offset : offset + n] = inputs[g][0][i, :n]
                positions[r, offset : offset + n] = torch.arange(n)
                starts[(g, i)] = r * width + offset
                token_groups.extend([g] * n)
                offset += n
            # padding: positions keep counting (one more "example" transformers masks apart)
            positions[r, offset:] = torch.arange(width - offset)
            token_groups.extend([row[-1][0]] * (width - offset))
        blank = len(rows) * width
        grids = []
        for g, (group_ids, _) in enumerate(inputs):
            b, t = group_ids.shape
            grid = torch.full((b, t), blank, dtype=torch.long)
            for i, n in enumerate(lengths[g]):
                grid[i, :n] = torch.arange(starts[(g, i)], starts[(g, i)] + n)
            grids.append(grid.view(-1))
        return cls(ids, positions, token_groups, torch.cat(grids), [tuple(x.shape) for x, _ in inputs],
                   sum(map(sum, lengths)))

    @property
    def positions(self) -> int:
        """Positions the backbone computes (``R x W``)."""
        return self.input_ids.numel()

    def unpack(self, hidden: Tensor) -> list[Tensor]:
        """``(R, W, H)`` packed states -> each group's ``(B_g, T_g, H)`` (zeros on padding)."""
        flat = hidden.reshape(-1, hidden.shape[-1])
        flat = torch.cat([flat, flat.new_zeros(1, flat.shape[1])])
        picked = flat.index_select(0, self.index.to(hidden.device))
        return [p.view(b, t, -1) for p, (b, t) in zip(picked.split([b * t for b, t in self.shapes]), self.shapes)]

    def run(self, backbone: nn.Module, routes: Sequence, device: torch.device) -> list[Tensor]:
        """Each group's states through ``backbone`` (a :class:`MultiAdapterBackbone`); group ``g``
        routed by ``routes[g]``."""
        hidden = backbone(
            self.input_ids.to(device),
            None,
            position_ids=self.position_ids.to(device),
            token_routes=[routes[g] for g in self.token_groups],
        )
        return self.unpack(hidden)


@dataclass
class GroupedLayout:
    """The fallback where packing cannot apply: the batch's rows (groups in order) in a few
    forwards of similar lengths, each padded only to its own longest row."""

    inputs: list[tuple[Tensor, Tensor]]  # per group (input_ids, attention_mask)
    buckets: list[list[int]]  # rows (in group order over the whole batch), each bucket sorted

    MAX_FORWARDS = 4

    @classmethod
    def build(cls, inputs: Sequence[tuple[Tensor, Tensor]]) -> GroupedLayout:
        lengths = [n for _, mask in inputs for n in _lengths(mask)]
        return cls(list(inputs), length_buckets(lengths, cls.MAX_FORWARDS))

    @property
    def real_tokens(self) -> int:
        return sum(int(mask.sum()) for _, mask in self.inputs)

    @property
    def positions(self) -> int:
        lengths = [n for _, mask in self.inputs for n in _lengths(mask)]
        return sum(len(b) * max(lengths[i] for i in b) for b in self.buckets)

    def run(self, backbone: nn.Module, routes: Sequence, device: torch.device) -> list[Tensor]:
        ids = _pad_cat([x for x, _ in self.inputs])
        mask = _pad_cat([m for _, m in self.inputs])
        row_routes = [routes[g] for g, (x, _) in enumerate(self.inputs) for _ in range(x.shape[0])]
        lengths = mask.sum(1)
        width = ids.shape[1]
        pieces, order = [], []
        for bucket in self.buckets:
            rows = torch.tensor(bucket)
            n = int(lengths[rows].max())
            hidden = backbone(ids[rows, :n].to(device), mask[rows, :n].to(device), routes=[row_routes[i] for i in bucket])
            pieces.append(nn.functional.pad(hidden, (0, 0, 0, width - n)))
            order.extend(bucket)
        inverse = torch.empty(len(order), dtype=torch.long)
        inverse[torch.tensor(order)] = torch.arange(len(order))
        joint = torch.cat(pieces).index_select(0, inverse.to(device))  # (B, width, H), batch row order
        sizes = [x.shape for x, _ in self.inputs]
        return [h[:, : s[1]] for h, s in zip(joint.split([s[0] for s in sizes]), sizes)]


def _pad_cat(tensors: Sequence[Tensor]) -> Tensor:
    width = max(t.shape[1] for t in tensors)
    return torch.cat([nn.functional.pad(t, (0, width - t.shape[1])) for t in tensors])


def length_buckets(lengths: Sequence[int], max_buckets: int) -> list[list[int]]:
    """At most ``max_buckets`` groups of row indices, by length, with the fewest padded positions
    (dynamic programming over the rows sorted by length); each group lists its rows in order."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    n = len(order)
    k = min(max_buckets, n)
    inf = float("inf")
    # cost[j][m]: fewest positions for the first m sorted rows in j buckets; the longest row of a
    # bucket [a, m) is order[a] (sorted descending)
    cost = [[inf] * (n + 1) for _ in range(k + 1)]
    cut = [[0] * (n + 1) for _ in range(k + 1)]
    cost[0][0] = 0
    for j in range(1, k + 1):
        for m in range(1, n + 1):
            for a in range(j - 1, m):
                c = cost[j - 1][a] + (m - a) * lengths[order[a]]
                if c < cost[j][m]:
                    cost[j][m], cut[j][m] = c, a
    j = min(range(1, k + 1), key=lambda j: (cost[j][n], j))
    buckets, m = [], n
    while j:
        a = cut[j][m]
        buckets.append(sorted(order[a:m]))
        m, j = a, j - 1
    return buckets[::-1]


# ---------------------------------------------------------------------------------- support

_PROBLEMS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_SAID: set[str] = set()


def attention_implementation(model: nn.Module) -> str:
    return str(getattr(getattr(model, "config", None), "_attn_implementation", None) or "unknown")


def packed_attention_problem(model: nn.Module) -> str | None:
    """``None`` where ``model`` (a transformers decoder) honours packed rows, else why not.

    Checked once per model by running it: two short sequences packed in one row (positions
    restarting at 0, no attention mask) must give each the states of its own forward, and the
    second must not change when the first does. Cached per model object.
    """
    if model in _PROBLEMS:
        return _PROBLEMS[model]
    parameter = next(model.parameters())
    vocab = int(getattr(model.config, "vocab_size", 16))
    first, other, second = ([t % vocab for t in ids] for ids in ([3, 5, 7], [11, 13, 2], [4, 6, 8, 9]))

    def states(ids: list[int], positions: list[int] | None = None) -> Tensor:
        kwargs = {"use_cache": False}
        if positions is not None:
            kwargs.update(position_ids=torch.tensor([positions], device=parameter.device), attention_mask=None)
        out = model(input_ids=torch.tensor([ids], device=parameter.device), **kwargs).last_hidden_state[0]
        return out.double()

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            alone = torch.cat([states(first), states(second)])
            packed = states(first + second, [0, 1, 2, 0, 1, 2, 3])
            changed = states(other + second, [0, 1, 2, 0, 1, 2, 3])[3:]
    except (TypeError, ValueError, RuntimeError) as error:
        problem: str | None = f"a packed forward failed ({type(error).__name__}: {error})"
    else:
        scale = alone.abs().max().clamp(min=1e-12)
        tolerance = 1e-3 if parameter.dtype in (torch.float32, torch.float64) else 3e-2
        if ((packed - alone).abs().max() / scale) > tolerance:
            problem = "packed examples do not get the states of their own forward (no block-diagonal mask)"
        elif ((changed - packed[3:]).abs().max() / scale) > tolerance:
            problem = "a packed example's states depend on its neighbour"
        else:
            problem = None
    finally:
        model.train(was_training)
    _PROBLEMS[model] = problem
    return problem


def resolve_packing(model: nn.Module, setting: bool | str, budget: int, option: str) -> Packing:
    """The :class:`Packing` of a ``packing`` option (``auto``, true, false) for ``model``, a
    transformers decoder: ``auto`` packs where exact, else groups by length (said once); ``true``
    raises :class:`ConfigError` naming ``option`` and the attention implementation where it cannot."""
    if setting not in ("auto", True, False):
        raise ConfigError(f"{option}: expected auto, true or false, got {setting!r}")
    if setting is False:
        return Packing("padded", budget)
    problem = packed_attention_problem(model)
    if problem is None:
        return Packing("packed", budget)
    implementation = attention_implementation(model)
    if setting is True:
        raise ConfigError(
            f"{option}=true, but this backbone's attention implementation ({implementation}) cannot honour "
            f"packed rows: {problem}; set {option}=auto (length-grouped batches) or false"
        )
    message = (f"{option}: the backbone's attention ({implementation}) cannot honour packed rows ({problem}); "
               "using length-grouped batches instead")
    if message not in _SAID:
        _SAID.add(message)
        logger.warning(message)
    return Packing("grouped", budget)
