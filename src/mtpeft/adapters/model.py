"""A frozen backbone carrying named LoRA adapters, routed per example, with optional fusion.

Every strategy of the study is a choice of adapters and of a :class:`Route` per task:

====  =====================================  ==============================================
S1    one adapter per task                   ``Route(private="task_<t>")``
S2    one shared adapter                     ``Route(shared=("shared",))``
S3a   shared + private per task, fused       ``Route(shared=("shared",), private="private_<t>")``
S3b   shared + one adapter per level         ``Route(shared=("shared",), private="level<k>")``
====  =====================================  ==============================================

Placements of the fusion (both cost and parameters are documented in the README):

* ``layer``: inside each adapted projection the shared and private low-rank deltas are fused.
  One backbone pass; fusion parameters per projection (a scalar gate: ``2 * out + 1`` each).
* ``output``: the batch is duplicated; the first copy runs with shared adapters only, the second
  with private adapters only, as ONE batched forward through the router; the two final hidden
  states are fused once. Two backbone passes' compute; fusion parameters once, at hidden size.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from peft.utils import set_peft_model_state_dict
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from mtpeft.adapters.fusion import FUSIONS, create_fusion
from mtpeft.adapters.routing import AdapterRouter, RoutingPlan, check_kernel, fusion_key, rows_from_indices
from mtpeft.adapters.token_rows import TokenRows
from mtpeft.errors import ConfigError

DEFAULT_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
PLACEMENTS = ("layer", "output")
FUSION_FILE = "fusion.safetensors"
LAYOUT_FILE = "mtpeft_adapters.json"


@dataclass(frozen=True)
class Route:
    """The adapters one example passes through: summed shared ones, and at most one private one."""

    shared: tuple[str, ...] = ()
    private: str | None = None

    def adapters(self) -> tuple[str, ...]:
        return self.shared + ((self.private,) if self.private else ())


def linear_module_names(model: nn.Module) -> set[str]:
    """Leaf names (``q_proj``, ...) of the linear layers of ``model``: the valid LoRA targets."""
    return {name.rsplit(".", 1)[-1] for name, m in model.named_modules() if isinstance(m, nn.Linear) and name}


def _linear_type_names(model: nn.Module) -> set[str]:
    # bitsandbytes' Linear4bit subclasses nn.Linear, so 4-bit models are covered too.
    return linear_module_names(model)


class MultiAdapterBackbone(nn.Module):
    """A frozen transformer with named LoRA adapters and per-example routing.

    Args:
        model: the backbone (e.g. ``LlamaModel``); its parameters are frozen here.
        adapters: adapter name -> LoRA rank.
        routes: task id -> :class:`Route` through those adapters.
        target_modules: leaf names of the projections to adapt.
        lora_alpha: LoRA alpha for every adapter; ``None`` gives ``2 * rank`` (scaling 2).
        lora_dropout: dropout on the adapter input.
        fusion: name in :data:`~mtpeft.adapters.fusion.FUSIONS` mixing shared and private.
        placement: ``"layer"`` or ``"output"`` (see the module docstring).
        fusion_options: keyword arguments of the fusion class (e.g. ``gate_rank``); when absent,
            a gated fusion gets a scalar gate at ``layer`` placement and a rank-16 gate at ``output``.
        kernel: how routed projections are computed, ``"fused"`` (one autograd function per
            projection, ``adapters/fused.py``) or ``"peft"`` (PEFT's modules behind hooks); the
            weights and their format are the same (``adapters/routing.py``).
    """

    def __init__(
        self,
        model: nn.Module,
        adapters: dict[str, int],
        routes: dict[str, Route],
        *,
        target_modules: Sequence[str] = DEFAULT_TARGET_MODULES,
        lora_alpha: float | None = None,
        lora_dropout: float = 0.05,
        fusion: str = "sum",
        placement: str = "layer",
        fusion_options: dict | None = None,
        kernel: str = "fused",
    ) -> None:
        super().__init__()
        check_kernel(kernel)
        self._validate(model, adapters, routes, target_modules, fusion, placement)
        self.adapter_ranks = dict(adapters)
        self.routes = dict(routes)
        self.target_modules = tuple(target_modules)
        self.fusion_name = fusion
        self.placement = placement
        self.fusion_options = dict(fusion_options) if fusion_options is not None else _default_fusion_options(
            fusion, placement
        )
        model.requires_grad_(False)

        names = list(adapters)
        for i, name in enumerate(names):
            config = LoraConfig(
                r=adapters[name],
                lora_alpha=lora_alpha if lora_alpha is not None else 2 * adapters[name],
                lora_dropout=lora_dropout,
                target_modules=list(self.target_modules),
                bias="none",
            )
            if i == 0:
                self.peft_model: PeftModel = get_peft_model(model, config, adapter_name=name)
            else:
                self.peft_model.add_adapter(name, config)
        # All adapters active and trainable; routing decides which ones act on which rows.
        self.peft_model.base_model.set_adapter(names)

        self.layer_fusions: nn.ModuleDict | None = None
        self.output_fusion: nn.Module | None = None
        uses_fusion = any(r.shared and r.private for r in routes.values())
        if uses_fusion and placement == "layer" and fusion != "sum":
            self.layer_fusions = nn.ModuleDict(
                {
                    fusion_key(name): create_fusion(fusion, module.out_features, **self.fusion_options)
                    for name, module in self._lora_layers()
                }
            )
        if uses_fusion and placement == "output":
            self.output_fusion = create_fusion(fusion, model.config.hidden_size, **self.fusion_options)
        self._move_fusions_to_backbone_device()
        self.router = AdapterRouter(self.inner_model, self.layer_fusions, kernel=kernel)
        self._token_rows: TokenRows | None = None  # per-token routing of packed rows, made on first use

    # ------------------------------------------------------------------ construction helpers
    @staticmethod
    def _validate(model, adapters, routes, target_modules, fusion, placement) -> None:
        if not adapters:
            raise ConfigError("at least one adapter is required")
        for name, rank in adapters.items():
            if not isinstance(rank, int) or rank < 1:
                raise ConfigError(f"adapter {name!r}: rank must be a positive integer, got {rank!r}")
        valid = linear_module_names(model)
        unknown = [t for t in target_modules if t not in valid]
        if unknown or not target_modules:
            raise ConfigError(
                f"unknown target modules {unknown or '(none given)'}; valid choices for this model: "
                f"{', '.join(sorted(valid))}"
            )
        if placement not in PLACEMENTS:
            raise ConfigError(f"unknown fusion placement {placement!r}; valid choices: {', '.join(PLACEMENTS)}")
        FUSIONS.get(fusion)  # raises with the valid choices
        for task, route in routes.items():
            missing = [a for a in route.adapters() if a not in adapters]
            if missing:
                raise ConfigError(f"task {task!r} routes through undefined adapters {missing}; defined: {list(adapters)}")

    def _lora_layers(self):
        from peft.tuners.lora import LoraLayer

        return [(n, m) for n, m in self.inner_model.named_modules() if isinstance(m, LoraLayer)]

    def _move_fusions_to_backbone_device(self) -> None:
        device = next(p.device for p in self.peft_model.parameters() if p.requires_grad)
        for fusion in (self.layer_fusions, self.output_fusion):
            if fusion is not None:
                fusion.to(device)

    @property
    def inner_model(self) -> nn.Module:
        """The transformer with LoRA layers injected (PEFT's ``base_model.model``)."""
        return self.peft_model.base_model.model

    @property
    def config(self):
        return self.inner_model.config

    # ------------------------------------------------------------------ routing
    def plan(self, routes: Sequence[Route]) -> RoutingPlan:
        """The routing plan of a batch whose row ``i`` follows ``routes[i]`` (layer placement)."""
        shared_rows: dict[str, list[int]] = {}
        private_rows: dict[str, list[int]] = {}
        fuse: list[int] = []
        for i, route in enumerate(routes):
            for name in route.shared:
                shared_rows.setdefault(name, []).append(i)
            if route.private:
                private_rows.setdefault(route.private, []).append(i)
                if route.shared:
                    fuse.append(i)
        return RoutingPlan(
            batch_size=len(routes),
            shared={n: rows_from_indices(r) for n, r in shared_rows.items()},
            private={n: rows_from_indices(r) for n, r in private_rows.items()},
            fuse_rows=rows_from_indices(fuse) if fuse and self.layer_fusions is not None else None,
        )

    def output_plan(self, routes: Sequence[Route]) -> RoutingPlan:
        """Plan of the doubled batch of ``output`` placement: rows [0, B) shared, [B, 2B) private."""
        b = len(routes)
        shared_rows: dict[str, list[int]] = {}
        private_rows: dict[str, list[int]] = {}
        for i, route in enumerate(routes):
            for name in route.shared:
                shared_rows.setdefault(name, []).append(i)
            if route.private:
                private_rows.setdefault(route.private, []).append(i)
        return RoutingPlan(
            batch_size=2 * b,
            shared={n: rows_from_indices(r) for n, r in shared_rows.items()},
            private={n: rows_from_indices(r, offset=b) for n, r in private_rows.items()},
            tied_halves=True,
        )

    def routes_for(self, tasks: Sequence[str]) -> list[Route]:
        try:
            return [self.routes[t] for t in tasks]
        except KeyError as error:
            raise ConfigError(f"no route for task {error.args[0]!r}; routed tasks: {sorted(self.routes)}") from None

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        *,
        tasks: Sequence[str] | None = None,
        routes: Sequence[Route] | None = None,
        position_ids: Tensor | None = None,
        token_routes: Sequence[Route] | None = None,
    ) -> Tensor:
        """Final hidden states ``(B, T, H)``; row ``i`` is routed by ``tasks[i]`` (or ``routes[i]``).

        Packed rows (:mod:`mtpeft.model.packing`): ``position_ids`` ``(B, T)`` restart at 0 for each
        example and ``attention_mask`` is ``None``, so transformers builds block-diagonal causal
        masks (each example attends only to itself); rows that mix tasks give ``token_routes``, one
        route per token of the flattened ``(B * T)`` batch, instead of ``tasks``/``routes``.
        """
        units, per_token = self._units(input_ids, tasks, routes, token_routes)
        extra = {"use_cache": False} if position_ids is None else {"use_cache": False, "position_ids": position_ids}
        if self.output_fusion is None:
            with self.router.route(self.plan(units)), self._token_view(per_token, input_ids.shape):
                return self.inner_model(input_ids=input_ids, attention_mask=attention_mask, **extra).last_hidden_state
        b = input_ids.shape[0]
        doubled_mask = None if attention_mask is None else torch.cat([attention_mask, attention_mask])
        if position_ids is not None:
            extra["position_ids"] = torch.cat([position_ids, position_ids])
        doubled = torch.cat([input_ids, input_ids])
        with self.router.route(self.output_plan(units)), self._token_view(per_token, doubled.shape):
            hidden = self.inner_model(input_ids=doubled, attention_mask=doubled_mask, **extra).last_hidden_state
        shared, private = hidden.split(b)  # (B, T, H) each; backward: one concatenation, not two zero-padded slices
        both = [bool(r.shared and r.private) for r in units]
        fused = self.output_fusion(shared, private)
        if all(both):
            return fused
        # per row (B, 1, 1), or per token (B, T, 1)
        shape = (*input_ids.shape, 1) if per_token else (b, 1, 1)
        has_both = torch.tensor(both, device=hidden.device).view(shape)
        # Rows with only one kind of adapter keep that representation unfused.
        only_private = torch.tensor([not r.shared for r in units], device=hidden.device).view(shape)
        single = torch.where(only_private, private, shared)
        return torch.where(has_both, fused, single)

    def _units(self, input_ids, tasks, routes, token_routes) -> tuple[list[Route], bool]:
        """The routes of the router's rows: one per row, or one per token (``True``) for rows mixing routes."""
        if token_routes is not None:
            if tasks is not None or routes is not None:
                raise ValueError("give token_routes, or tasks/routes, not both")
            if len(token_routes) != input_ids.numel():
                raise ValueError(f"{len(token_routes)} token routes for a batch of {tuple(input_ids.shape)}")
            if len(set(token_routes)) > 1:
                return list(token_routes), True
            return [token_routes[0]] * input_ids.shape[0], False  # one route: rows suffice
        if routes is None:
            if tasks is None:
                raise ValueError("give either tasks or routes")
            routes = self.routes_for(tasks)
        if len(routes) != input_ids.shape[0]:
            raise ValueError(f"{len(routes)} routes for a batch of {input_ids.shape[0]}")
        return list(routes), False

    def _token_view(self, per_token: bool, shape: torch.Size):
        """Inside: LoRA layers see the ``(B, T)`` batch as ``B * T`` rows (:class:`TokenRows`)."""
        if not per_token:
            return nullcontext()
        if self._token_rows is None:  # installed after the router, so its output hook runs after the router's
            self._token_rows = TokenRows(self.inner_model)
        return self._token_rows.view(*shape)

    # ------------------------------------------------------------------ parameters and files
    def adapter_parameters(self, name: str) -> dict[str, nn.Parameter]:
        """The trainable parameters of one adapter, by full name."""
        marker = f".{name}."
        return {n: p for n, p in self.peft_model.named_parameters() if marker in n and "lora_" in n}

    def fusion_parameters(self) -> dict[str, nn.Parameter]:
        params = {}
        for prefix, module in (("layer_fusions", self.layer_fusions), ("output_fusion", self.output_fusion)):
            if module is not None:
                params.update({f"{prefix}.{n}": p for n, p in module.named_parameters()})
        return params

    def save_adapters(self, directory: str | Path) -> Path:
        """Save every adapter in PEFT's own format (``directory/<adapter>/``) and the fusion weights.

        Each ``directory/<adapter>`` loads with plain ``peft`` (``PeftModel.from_pretrained``).
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.peft_model.save_pretrained(directory, selected_adapters=list(self.adapter_ranks))
        fusion = {n: p.detach().cpu().contiguous() for n, p in self.fusion_parameters().items()}
        if fusion:
            save_file(fusion, directory / FUSION_FILE)
        layout = {
            "adapters": self.adapter_ranks,
            "routes": {t: {"shared": list(r.shared), "private": r.private} for t, r in self.routes.items()},
            "target_modules": list(self.target_modules),
            "fusion": self.fusion_name,
            "placement": self.placement,
            "fusion_options": self.fusion_options,
        }
        (directory / LAYOUT_FILE).write_text(json.dumps(layout, indent=2, sort_keys=True))
        return directory

    def load_adapters(self, directory: str | Path) -> None:
        """Load weights written by :meth:`save_adapters` into this (identically built) model."""
        directory = Path(directory)
        for name in self.adapter_ranks:
            path = directory / name / "adapter_model.safetensors"
            if not path.is_file():
                raise FileNotFoundError(f"{path}: adapter {name!r} is missing")
            state = load_file(path)
            result = set_peft_model_state_dict(self.peft_model, state, adapter_name=name)
            unexpected = [k for k in result.unexpected_keys if "lora_" in k]
            if unexpected:
                raise ValueError(f"{path}: weights that do not fit this model: {unexpected[:5]}")
        fusion_path = directory / FUSION_FILE
        expected = self.fusion_parameters()
        if expected:
            if not fusion_path.is_file():
                raise FileNotFoundError(f"{fusion_path}: the fusion weights are missing")
            state = load_file(fusion_path)
            if set(state) != set(expected):
                raise ValueError(f"{fusion_path}: fusion weights do not match this model's fusion")
            with torch.no_grad():
                for name, param in expected.items():
                    param.copy_(state[name])


def _default_fusion_options(fusion: str, placement: str) -> dict:
    if fusion == "gated":
        return {"gate_rank": 0 if placement == "layer" else 16}
    if fusion == "attention":
        return {"attn_dim": 8 if placement == "layer" else 64}
    return {}
