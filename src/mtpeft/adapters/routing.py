"""Per-row routing of PEFT LoRA adapters, in training mode, with gradients.

PEFT can mix adapters within a batch only at inference (``adapter_names=`` is refused in training
mode by ``LoraModel``) and only one adapter per row. mtpeft needs, for every row of a batch, a
*set* of adapters (the shared one and the row's task's private one), optionally fused, with
gradients. :class:`AdapterRouter` does that without changing PEFT's layers or weight format: within
:meth:`AdapterRouter.route`, every PEFT ``LoraLayer`` applies a :class:`RoutingPlan` through one of
two kernels (``adapters.kernel``):

* ``fused`` (the default; ``adapters/fused.py``): the layer's forward is replaced, for the routed
  call, by one autograd function computing the frozen projection, the adapters of every row, LoRA
  dropout and the scalar gate (the input read by one base GEMM and one ``A`` GEMM per row group, no
  masked copy of the input or ``(rows, out)`` delta kept for the backward);
* ``peft`` (``adapters/peft_kernel.py``): PEFT computes the frozen projection (its ``"__base__"``
  placeholder, passed by a pre-hook) and a forward hook adds each adapter's delta with PEFT's own
  ``lora_A``/``lora_B``/``lora_dropout`` modules. It is the fused kernel's reference, and the path of
  layers the fused kernel does not cover (said in the log).

No hook can skip PEFT's own base computation, so the fused kernel sets the LoRA layer's ``forward``
as an instance attribute (as accelerate's hooks do) and deletes it on :meth:`AdapterRouter.remove`.
Outside a ``route`` block both kernels are plain PEFT (all active adapters summed), and the adapters
save and load with plain ``peft``. Both draw one LoRA dropout mask per projection, shared by the
adapters of an example (and at ``output`` placement by its two copies), but from different random
streams: the same seed gives the same masks within a kernel, not across kernels.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from peft.tuners.lora import LoraLayer
from torch import Tensor, nn

from mtpeft.adapters import fused, fused_layout, peft_kernel
from mtpeft.adapters.plan import RoutingPlan, Rows, rows_from_indices
from mtpeft.errors import ConfigError

__all__ = ["KERNELS", "AdapterRouter", "RoutingPlan", "Rows", "fusion_key", "rows_from_indices"]

logger = logging.getLogger(__name__)

KERNELS = ("peft", "fused")
"""Values of ``adapters.kernel``."""


def fusion_key(module_name: str) -> str:
    """Key of a projection's layer-fusion module in an ``nn.ModuleDict`` (dots are not allowed)."""
    return module_name.replace(".", "__")


def check_kernel(kernel: str) -> str:
    """``kernel`` if it is one of :data:`KERNELS`, else a :class:`ConfigError` listing them."""
    if kernel not in KERNELS:
        raise ConfigError(f"unknown adapters.kernel {kernel!r}; valid choices: {', '.join(KERNELS)}")
    return kernel


def _check_plain_lora(module_name: str, layer: LoraLayer) -> None:
    """Routing applies plain LoRA (``B A dropout(x) * scaling``): one error naming the adapter and
    the feature otherwise (neither kernel would apply DoRA's magnitude or a LoRA bias)."""
    for adapter in layer.lora_A:
        variant = getattr(layer, "lora_variant", {}).get(adapter)
        if layer.use_dora.get(adapter) or variant is not None:
            feature = "DoRA (use_dora=True)" if layer.use_dora.get(adapter) else f"the LoRA variant {type(variant).__name__}"
            raise ConfigError(f"adapter {adapter!r} on {module_name}: {feature} is not supported by per-row "
                              "routing, which applies plain LoRA")
        if getattr(layer, "lora_bias", {}).get(adapter):
            raise ConfigError(f"adapter {adapter!r} on {module_name}: lora_bias=True is not supported by per-row "
                              "routing, which applies plain LoRA")


def _fused_unsupported(layer: LoraLayer) -> str | None:
    """Why the fused kernel cannot run ``layer`` (it then uses the PEFT kernel), or None."""
    if not all(isinstance(layer.lora_A[a], nn.Linear) for a in layer.lora_A):
        return f"{type(layer).__name__} is not a linear LoRA layer"
    probabilities = set()
    for adapter, module in layer.lora_dropout.items():
        if isinstance(module, nn.Dropout):
            probabilities.add(float(module.p))
        elif isinstance(module, nn.Identity):
            probabilities.add(0.0)
        else:
            return f"adapter {adapter!r} uses the dropout module {type(module).__name__}, not nn.Dropout"
    if len(probabilities) > 1:  # the fused kernel draws one mask per projection, for all its adapters
        return f"its adapters have different LoRA dropout probabilities {sorted(probabilities)}"
    if any(p >= 1 for p in probabilities):
        return "LoRA dropout p = 1"
    return None


class AdapterRouter:
    """Routes every PEFT LoRA layer of ``model`` by the active :class:`RoutingPlan`.

    ``layer_fusions`` (optional) maps :func:`fusion_key` of each adapted module's name to the
    fusion module applied to its (shared, private) deltas when a plan has ``fuse_rows``.
    ``kernel``: ``"fused"`` or ``"peft"`` (see the module docstring).
    """

    def __init__(self, model: nn.Module, layer_fusions: nn.ModuleDict | None = None, kernel: str = "fused") -> None:
        self.kernel = check_kernel(kernel)
        self._plan: RoutingPlan | None = None
        self._layouts: dict[tuple, fused_layout.Layout] = {}
        self._handles = []
        self._patched: list[LoraLayer] = []
        self.layer_names: list[str] = []
        self._warned_trainable_base = False
        self.peft_kernel_layers: list[str] = []
        """Layers run by the PEFT kernel although ``kernel`` is ``"fused"`` (the reason is logged)."""
        for name, module in model.named_modules():
            if not isinstance(module, LoraLayer):
                continue
            _check_plain_lora(name, module)
            fusion = layer_fusions[fusion_key(name)] if layer_fusions is not None else None
            reason = _fused_unsupported(module) if kernel == "fused" else None
            if reason is not None:
                logger.warning("adapters.kernel=fused: %s: %s; this projection uses the PEFT kernel", name, reason)
                self.peft_kernel_layers.append(name)
            if kernel == "fused" and reason is None:
                module.forward = self._make_fused_forward(module, fusion)
                self._patched.append(module)
            else:
                self._handles.append(module.register_forward_pre_hook(self._pre_hook, with_kwargs=True))
                self._handles.append(module.register_forward_hook(self._make_hook(fusion)))
            self.layer_names.append(name)
        if not self.layer_names:
            raise ValueError("the model has no PEFT LoRA layers to route")

    @contextmanager
    def route(self, plan: RoutingPlan) -> Iterator[None]:
        """Within this block, every LoRA layer applies ``plan`` instead of PEFT's active adapters."""
        if self._plan is not None:
            raise RuntimeError("routing plans do not nest")
        self._plan = plan
        self._layouts = {}
        try:
            yield
        finally:
            self._plan = None
            self._layouts = {}

    @property
    def active_plan(self) -> RoutingPlan | None:
        return self._plan

    def _check_rows(self, x: Tensor) -> None:
        if x.shape[0] != self._plan.batch_size:
            raise RuntimeError(f"routing plan is for {self._plan.batch_size} rows, the layer got {x.shape[0]}")

    # ------------------------------------------------------------------ peft kernel: hooks
    def _pre_hook(self, module: nn.Module, args: tuple, kwargs: dict):
        if self._plan is None:
            return None
        self._check_rows(args[0])
        return args, {**kwargs, "adapter_names": ["__base__"] * args[0].shape[0]}

    def _make_hook(self, fusion: nn.Module | None):
        def hook(module: LoraLayer, args: tuple, output: Tensor) -> Tensor | None:
            if self._plan is None:
                return None
            return peft_kernel.routed_output(module, args[0], output, self._plan, fusion)

        return hook

    # ------------------------------------------------------------------ fused kernel
    def _layout(self, present: tuple[str, ...], gated: bool) -> fused_layout.Layout:
        """The plan's layout for a layer holding the adapters ``present`` (made once per plan)."""
        key = (present, gated)
        if key not in self._layouts:
            self._layouts[key] = fused_layout.layout_for(self._plan, set(present), gated)
        return self._layouts[key]

    def _make_fused_forward(self, layer: LoraLayer, fusion: nn.Module | None):
        peft_forward = type(layer).forward.__get__(layer)
        scalar_gate = fusion is not None and peft_kernel.is_scalar_gate(fusion)
        proj = fused.Projection.of(layer, fusion.gate if scalar_gate else None)

        def forward(x: Tensor, *args, **kwargs) -> Tensor:
            plan = self._plan
            if plan is None:
                return peft_forward(x, *args, **kwargs)
            self._check_rows(x)
            if proj.base_weight_trainable():
                # the fused function assumes a frozen W: calls with a trainable one take the PEFT kernel
                if not self._warned_trainable_base:
                    logger.warning("adapters.kernel=fused: the frozen projections were made trainable; routed calls "
                                   "with a trainable base weight use the PEFT kernel")
                    self._warned_trainable_base = True
                output = peft_forward(x, *args, **{**kwargs, "adapter_names": ["__base__"] * x.shape[0]})
                return peft_kernel.routed_output(layer, x, output, plan, fusion)
            fusing = fusion is not None and plan.fuse_rows is not None
            layout = self._layout(tuple(proj.lora_A._modules), fusing and scalar_gate)
            if not layout.groups:
                return proj.base(x, *args, **kwargs)
            if not fusing or scalar_gate or not layout.both_kinds:
                return fused.routed_projection(proj, x, layout, gated=fusing and scalar_gate)
            # Fusions other than the scalar gate need the dense deltas S and P: the fused function
            # gives the base output and the rank-level h of every row group, autograd the rest.
            y, hs = fused.routed_projection(proj, x, layout, rank_only=True)
            parts = [peft_kernel.Part(*p) for p in fused.parts_of(proj, x, layout, hs)]
            return y + peft_kernel.fuse_dense(fusion, parts, plan).to(y.dtype)

        return forward

    def remove(self) -> None:
        """Remove the hooks and the fused forwards (the model is plain PEFT again)."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        for layer in self._patched:
            del layer.forward
        self._patched.clear()
