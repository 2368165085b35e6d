"""Parameter accounting that can be quoted in a paper.

Counts come from real module shapes (instantiated on the ``meta`` device when weights are absent),
never from a formula that assumes square projections: in Llama-3.2-3B ``k_proj``/``v_proj`` map
3072 -> 1024 and the MLP 3072 -> 8192, so a LoRA of rank ``r`` on a projection ``in -> out`` costs
``r * (in + out)`` and the per-rank cost of a model is the sum of ``in + out`` over its targets.

The ablations compare, at an equal trainable budget (heads excluded, they are identical):

* A1: shared LoRA only (rank ``r1``);
* A2: private LoRA per task only (rank ``r2`` each);
* A3: shared + private, summed, no fusion;
* A4: shared + private + gated fusion (its parameters count towards the budget).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from mtpeft.adapters.fusion import create_fusion
from mtpeft.adapters.model import DEFAULT_TARGET_MODULES, MultiAdapterBackbone, _default_fusion_options
from mtpeft.errors import MtpeftError

VARIANTS = ("A1", "A2", "A3", "A4")
VARIANT_DESCRIPTIONS = {
    "A1": "shared LoRA only",
    "A2": "private LoRA per task only",
    "A3": "shared + private, no fusion (sum)",
    "A4": "shared + private + gated fusion",
}


class ParityError(MtpeftError):
    """Trainable budgets differ by more than the tolerance."""


@dataclass
class ParameterCounts:
    """Parameters by component; ``routes`` tells which components serve which task."""

    backbone: int
    adapters: dict[str, int]
    fusion: int
    heads: dict[str, int] = field(default_factory=dict)
    other: dict[str, int] = field(default_factory=dict)  # e.g. cross-level attention, loss weights
    routes: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def trainable(self) -> int:
        return sum(self.adapters.values()) + self.fusion + sum(self.heads.values()) + sum(self.other.values())

    def active_for(self, task: str) -> int:
        """Trainable parameters that act on one example of ``task``."""
        adapters = sum(self.adapters[a] for a in self.routes.get(task, ()))
        return adapters + self.fusion + self.heads.get(task, 0) + sum(self.other.values())

    def rows(self) -> list[tuple[str, int]]:
        """(component, count) rows for a table; the backbone is frozen."""
        out = [("backbone (frozen)", self.backbone)]
        out += [(f"adapter {name}", n) for name, n in self.adapters.items()]
        out.append(("fusion", self.fusion))
        out += [(f"head {task}", n) for task, n in self.heads.items()]
        out += [(name, n) for name, n in self.other.items()]
        return out


def count_parameters(
    backbone: MultiAdapterBackbone,
    heads: dict[str, nn.Module] | None = None,
    other: dict[str, nn.Module] | None = None,
) -> ParameterCounts:
    """Count a built model's parameters by component (exact: sums ``numel()``)."""
    adapter_params = {name: sum(p.numel() for p in backbone.adapter_parameters(name).values()) for name in backbone.adapter_ranks}
    lora_ids = {id(p) for name in backbone.adapter_ranks for p in backbone.adapter_parameters(name).values()}
    base = sum(p.numel() for p in backbone.peft_model.parameters() if id(p) not in lora_ids)
    return ParameterCounts(
        backbone=base,
        adapters=adapter_params,
        fusion=sum(p.numel() for p in backbone.fusion_parameters().values()),
        heads={t: sum(p.numel() for p in h.parameters()) for t, h in (heads or {}).items()},
        other={n: sum(p.numel() for p in m.parameters()) for n, m in (other or {}).items()},
        routes={t: r.adapters() for t, r in backbone.routes.items()},
    )


def _targets(model: nn.Module, target_modules: Sequence[str]) -> list[nn.Module]:
    wanted = set(target_modules)
    return [m for n, m in model.named_modules() if isinstance(m, nn.Linear) and n.rsplit(".", 1)[-1] in wanted]


def lora_cost_per_rank(model: nn.Module, target_modules: Sequence[str] = DEFAULT_TARGET_MODULES) -> int:
    """Trainable parameters of a rank-1 LoRA on ``target_modules``: sum of ``in + out`` (real shapes)."""
    return sum(m.in_features + m.out_features for m in _targets(model, target_modules))


def fusion_cost(
    model: nn.Module,
    fusion: str,
    placement: str,
    target_modules: Sequence[str] = DEFAULT_TARGET_MODULES,
    fusion_options: dict | None = None,
) -> int:
    """Parameters of the fusion modules a :class:`MultiAdapterBackbone` would build (meta device)."""
    if fusion == "sum":
        return 0
    options = fusion_options if fusion_options is not None else _default_fusion_options(fusion, placement)
    with torch.device("meta"):
        if placement == "output":
            return sum(p.numel() for p in create_fusion(fusion, model.config.hidden_size, **options).parameters())
        return sum(
            sum(p.numel() for p in create_fusion(fusion, m.out_features, **options).parameters())
            for m in _targets(model, target_modules)
        )


def verify_parameter_parity(counts: dict[str, int], tolerance: float = 0.05) -> None:
    """Raise :class:`ParityError` naming every variant whose budget is off the first one's by > tolerance."""
    if not counts:
        raise ValueError("no counts to compare")
    reference_name, reference = next(iter(counts.items()))
    off = {n: c / reference - 1 for n, c in counts.items() if abs(c / reference - 1) > tolerance}
    if off:
        details = ", ".join(f"{n} {counts[n]:,} ({d:+.1%})" for n, d in off.items())
        raise ParityError(
            f"trainable budgets out of the {tolerance:.0%} tolerance against {reference_name} "
            f"({reference:,}): {details}"
        )


@dataclass
class AblationVariant:
    name: str
    shared_rank: int
    private_rank: int
    trainable: int
    ratio: float  # to A1


@dataclass
class AblationPlan:
    variants: dict[str, AblationVariant]
    num_tasks: int
    per_rank: int
    fusion_params: int
    backbone_params: int
    explanation: str


def _candidates(max_rank: int):
    return range(1, max_rank + 1)


def calculate_ablation_ranks(
    model: nn.Module,
    num_tasks: int,
    *,
    target_rank: int = 16,
    private_ratio: float = 0.5,
    tolerance: float = 0.05,
    fusion: str = "gated",
    placement: str = "output",
    target_modules: Sequence[str] = DEFAULT_TARGET_MODULES,
    fusion_options: dict | None = None,
) -> AblationPlan:
    """Integer ranks giving A1-A4 equal trainable budgets within ``tolerance``.

    A1's rank is ``target_rank`` if the others can match it, else the nearest rank that lets them
    (searching outwards). For A3/A4 among the (shared, private) pairs within tolerance the solver
    prefers private/shared closest to ``private_ratio`` (the default 16:8), then the smallest
    deviation. Budgets are computed from the real module shapes of ``model``.
    """
    if num_tasks < 1:
        raise ValueError("num_tasks must be >= 1")
    unit = lora_cost_per_rank(model, target_modules)
    fusion_params = fusion_cost(model, fusion, placement, target_modules, fusion_options)
    max_rank = 4 * target_rank

    def best_pair(budget: int, extra: int) -> tuple[int, int, int] | None:
        found = []
        for rs in _candidates(max_rank):
            for rp in _candidates(max_rank):
                total = (rs + num_tasks * rp) * unit + extra
                deviation = abs(total / budget - 1)
                if deviation <= tolerance:
                    found.append((abs(rp / rs - private_ratio), deviation, rs, rp, total))
        if not found:
            return None
        _, _, rs, rp, total = min(found)
        return rs, rp, total

    order = sorted(_candidates(max_rank), key=lambda r: (abs(r - target_rank), -r))
    for r1 in order:
        budget = r1 * unit
        r2 = max(1, round(r1 / num_tasks))
        a2 = num_tasks * r2 * unit
        if abs(a2 / budget - 1) > tolerance:
            continue
        a3, a4 = best_pair(budget, 0), best_pair(budget, fusion_params)
        if a3 is None or a4 is None:
            continue
        variants = {
            "A1": AblationVariant("A1", r1, 0, budget, 1.0),
            "A2": AblationVariant("A2", 0, r2, a2, a2 / budget),
            "A3": AblationVariant("A3", a3[0], a3[1], a3[2], a3[2] / budget),
            "A4": AblationVariant("A4", a4[0], a4[1], a4[2], a4[2] / budget),
        }
        why = (
            f"A1 rank {r1}" + ("" if r1 == target_rank else f" (target {target_rank} has no solution within "
            f"{tolerance:.0%} for {num_tasks} tasks: A2 needs {num_tasks} x r2 = r1)") +
            f"; A2 {num_tasks} x rank {r2}; A3 shared {a3[0]} + {num_tasks} x private {a3[1]}; "
            f"A4 shared {a4[0]} + {num_tasks} x private {a4[1]} + {fusion_params:,} {fusion} fusion parameters "
            f"({placement} placement). Per-rank LoRA cost {unit:,} parameters."
        )
        return AblationPlan(variants, num_tasks, unit, fusion_params, sum(p.numel() for p in model.parameters()), why)
    raise ParityError(
        f"no integer ranks up to {max_rank} bring A1-A4 within {tolerance:.0%} for {num_tasks} tasks; "
        "raise the tolerance or the target rank"
    )


def build_ablation_variant(
    model: nn.Module,
    variant: AblationVariant,
    tasks: Sequence[str],
    *,
    fusion: str = "gated",
    placement: str = "output",
    target_modules: Sequence[str] = DEFAULT_TARGET_MODULES,
    fusion_options: dict | None = None,
) -> MultiAdapterBackbone:
    """Instantiate one ablation variant (on whatever device ``model`` is, ``meta`` included)."""
    from mtpeft.adapters.model import Route

    if variant.name == "A1":
        adapters, routes = {"shared": variant.shared_rank}, {t: Route(shared=("shared",)) for t in tasks}
    elif variant.name == "A2":
        adapters = {f"private_{t}": variant.private_rank for t in tasks}
        routes = {t: Route(private=f"private_{t}") for t in tasks}
    else:
        adapters = {"shared": variant.shared_rank, **{f"private_{t}": variant.private_rank for t in tasks}}
        routes = {t: Route(shared=("shared",), private=f"private_{t}") for t in tasks}
    return MultiAdapterBackbone(
        model,
        adapters,
        routes,
        target_modules=target_modules,
        fusion=fusion if variant.name == "A4" else "sum",
        placement=placement,
        fusion_options=fusion_options,
    )
