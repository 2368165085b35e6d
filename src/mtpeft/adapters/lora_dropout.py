"""LoRA dropout masks of the fused kernel, drawn as the positions of the dropped elements.

``nn.Dropout`` draws one random number per input element (``bernoulli_``: about 7 ns an element on
the project's CPU, more than a rank-24 LoRA's own arithmetic) and PEFT keeps the masked copy of the
input and the mask for the backward. The fused kernel (``adapters/fused.py``) needs the same law, each
element dropped independently with probability ``p`` and the rest scaled by ``1 / (1 - p)``, but only
where the drops are: the gaps between successive drops of i.i.d. Bernoulli(``p``) trials are i.i.d.
Geometric(``p``), so the positions are a cumulative sum of ``~p * numel`` geometric draws from a
generator seeded by one draw of torch's default generator (``torch.manual_seed`` fixes every mask).
The kernel keeps the positions (int32, ``4 p`` bytes per input element) and zeroes them in a
transient copy of the input, in the forward and again in the backward; no mask is materialised.

Each gap is ``1 + floor(log(1 - u) / log(1 - p))`` of a float32 uniform ``u``: its law is exact up to
the 2^-24 resolution of ``u``, as that of torch's own float32 ``bernoulli_``. (``geometric_`` draws the
same law in float64 but cost 2.5 times as much here.)

Why by hand: torch has no sparse Bernoulli sampler.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor


def draw_seed() -> int:
    """A dropout seed from torch's default CPU generator."""
    return int(torch.randint(0, 2**62, (1,)).item())


def dropout_positions(numel: int, p: float, seed: int, device: torch.device | str = "cpu",
                      chunk: int | None = None) -> Tensor:
    """Sorted flat indices (int64) of the elements that a Bernoulli(``p``) dropout mask over ``numel``
    elements drops, for ``0 < p < 1``, from a generator seeded with ``seed``.

    ``chunk``: gaps drawn per round (default: the expected number of the remaining drops plus eight
    standard deviations, so one round nearly always suffices); the result does not depend on it.
    """
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    log_keep = math.log1p(-p)
    pieces, start = [], 0  # start: the first element not yet decided
    while True:
        expected = (numel - start) * p
        count = chunk or int(expected + 8 * math.sqrt(expected) + 64)
        # gap = 1 + floor(log(1 - u) / log(1 - p)) for u uniform in [0, 1) is Geometric(p)
        uniform = torch.rand(count, generator=generator, device=device)
        gaps = uniform.neg_().log1p_().div_(log_keep).to(torch.int64).add_(1)
        positions = gaps.cumsum_(0).add_(start - 1)
        last = int(positions[-1])
        if last >= numel:
            pieces.append(positions[: int(torch.searchsorted(positions, numel))])
            return pieces[0] if len(pieces) == 1 else torch.cat(pieces)
        pieces.append(positions)
        start = last + 1


def drop_positions(shape: Sequence[int], p: float, seed: int, tied_halves: bool = False,
                   device: torch.device | str = "cpu") -> Tensor:
    """Flat positions dropped in a tensor of ``shape``; with ``tied_halves`` the first half of dim 0
    is drawn and the second half repeats it (``output`` placement's two copies of an example)."""
    numel = math.prod(shape)
    if not tied_halves:
        return dropout_positions(numel, p, seed, device)
    half = dropout_positions(numel // 2, p, seed, device)
    return torch.cat([half, half + numel // 2])


def dropout_mask(shape: Sequence[int], p: float, seed: int, tied_halves: bool = False,
                 dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> Tensor:
    """The mask the fused kernel applies for ``seed``: 0 where dropped, ``1 / (1 - p)`` elsewhere
    (for references and tests; the kernel itself never builds it)."""
    mask = torch.full((math.prod(shape),), 1 / (1 - p), dtype=dtype, device=device)
    mask[drop_positions(shape, p, seed, tied_halves, device)] = 0
    return mask.view(*shape)
