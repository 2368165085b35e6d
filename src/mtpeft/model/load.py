"""Load a trained model from a run folder or one of its checkpoints.

Imports run one way: the trainer and the evaluation import this module (the trainer for
:func:`load_named` when it resumes), this module imports only the checkpoint format
(``mtpeft.training.checkpoint``) and the model builder, never the trainer or the evaluation.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from mtpeft.config import RunConfig, load_config
from mtpeft.errors import ConfigError, MtpeftError
from mtpeft.model.build import BuiltModel, build_model
from mtpeft.model.packing import resolve_packing
from mtpeft.training import checkpoint as ckpt


def load_named(model: nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    """Copy saved tensors into the parameters of the same names; unknown names are an error."""
    params = dict(model.named_parameters())
    unknown = sorted(set(tensors) - set(params))
    if unknown:
        raise MtpeftError(f"checkpoint tensors that this model does not have: {unknown[:5]}")
    with torch.no_grad():
        for name, value in tensors.items():
            params[name].copy_(value)


def resolve_run(path: str | Path, pointer: str = "best") -> tuple[Path, Path]:
    """``(run_dir, checkpoints_root_or_step_folder)`` for a run folder or a ``step-N`` checkpoint."""
    path = Path(path)
    if (path / "config.yaml").is_file():
        root = path / "checkpoints"
        if not root.is_dir():
            raise ConfigError(f"{path} has no checkpoints/ folder: the run saved no checkpoint")
        return path, root
    if path.name.startswith("step-") and (path.parent.parent / "config.yaml").is_file():
        return path.parent.parent, path
    raise ConfigError(f"{path} is neither a run folder (with config.yaml) nor a checkpoints/step-N folder of one")


def load_trained(path: str | Path, pointer: str = "best", config: RunConfig | None = None) -> tuple[RunConfig, BuiltModel, int]:
    """The run's config, its model with the checkpoint's weights, and the checkpoint's step.

    ``pointer`` (``best`` or ``last``) is followed when ``path`` is a run folder; a run without a
    ``best`` checkpoint (no dev set) falls back to ``last``.
    """
    run_dir, where = resolve_run(path)
    config = config or load_config(run_dir / "config.yaml")
    if where.name == "checkpoints" and pointer == "best" and ckpt.read_pointer(where, "best") is None:
        pointer = "last"
    checkpoint = ckpt.load_checkpoint(where, pointer)
    built = build_model(config)
    built.model.backbone.load_adapters(checkpoint.folder("adapters"))
    load_named(built.model, {**checkpoint.tensors("heads"), **checkpoint.tensors("extra")})
    built.model.eval()
    # evaluate / predict / probe lay out their batches as the run's evaluation.packing says
    ev = config.evaluation
    built.model.prediction_packing = resolve_packing(
        built.model.backbone.inner_model, ev.packing, ev.packing_tokens, "evaluation.packing"
    )
    return config, built, checkpoint.step
