"""Atomic checkpoints: a folder per step, valid only once completely written.

Layout of ``checkpoints/step-<N>/`` (``docs/run-folder.md``): one ``<name>.safetensors`` per
named state dict (``heads``, ``extra``), one sub-folder per folder writer (``adapters`` via
``model.save_adapters``), ``optimizer.pt`` / ``scheduler.pt`` (``torch.save`` of tensors and
plain Python values only, loaded with ``weights_only=True``: nothing is unpickled), ``state.json``
(step, sampler and RNG states, metrics) and ``COMPLETE`` (the manifest: every file and its size).

Writing goes to a hidden ``.tmp-step-<N>-*`` folder in the same directory; every file is fsynced,
``COMPLETE`` is written last, then ``os.replace`` renames the folder to ``step-<N>``. A crash at
any point leaves either no ``step-<N>`` or a complete one; a folder without a ``COMPLETE`` that
matches its files never loads. The ``last`` and ``best`` pointers are small JSON files
(``{"step", "path", "metric"}``), also replaced atomically.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from mtpeft.errors import MtpeftError
from mtpeft.training.run_folder import jsonable

COMPLETE = "COMPLETE"
STATE_FILE = "state.json"
OPTIMIZER_FILE = "optimizer.pt"
SCHEDULER_FILE = "scheduler.pt"
POINTERS = ("last", "best")
_PLAIN = (bool, int, float, str, type(None))


class CheckpointError(MtpeftError):
    """A checkpoint is missing, incomplete or does not fit."""


@dataclass
class Checkpoint:
    """A complete checkpoint folder; parts are read on demand."""

    path: Path
    step: int
    state: dict[str, Any]
    """The JSON state saved with it (``step`` included)."""

    def tensors(self, name: str) -> dict[str, Tensor]:
        """The state dict saved as ``<name>.safetensors``."""
        path = self.path / f"{name}.safetensors"
        if not path.is_file():
            raise CheckpointError(f"{path}: checkpoint has no tensors {name!r}")
        return load_file(path)

    def folder(self, name: str) -> Path:
        """The sub-folder written by the folder writer ``name`` (e.g. ``adapters``)."""
        path = self.path / name
        if not path.is_dir():
            raise CheckpointError(f"{path}: checkpoint has no folder {name!r}")
        return path

    def optimizer_state(self, map_location: str | torch.device | None = None) -> dict[str, Any]:
        return self._torch_file(OPTIMIZER_FILE, map_location)

    def scheduler_state(self) -> dict[str, Any]:
        return self._torch_file(SCHEDULER_FILE, "cpu")

    def _torch_file(self, name: str, map_location: Any) -> dict[str, Any]:
        path = self.path / name
        if not path.is_file():
            raise CheckpointError(f"{path}: checkpoint has no {name}")
        return torch.load(path, map_location=map_location, weights_only=True)


def _check_plain(value: Any, where: str) -> None:
    """Refuse anything ``torch.load(weights_only=True)`` would not read back (no arbitrary pickles)."""
    if isinstance(value, Tensor) or isinstance(value, _PLAIN):
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            _check_plain(item, f"{where}[{key!r}]")
        return
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_plain(item, f"{where}[{i}]")
        return
    raise TypeError(f"{where}: {type(value).__name__} cannot be saved as plain data (tensors and Python values only)")


def _unshared(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """CPU, contiguous tensors; tensors sharing storage (tied weights) are copied, as safetensors requires."""
    out: dict[str, Tensor] = {}
    storages: set[int] = set()
    for key, value in state_dict.items():
        tensor = value.detach().cpu().contiguous()
        pointer = tensor.untyped_storage().data_ptr()
        out[key] = tensor.clone() if pointer in storages else tensor
        storages.add(pointer)
    return out


def _fsync_file(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _manifest(folder: Path) -> dict[str, int]:
    return {
        p.relative_to(folder).as_posix(): p.stat().st_size
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != COMPLETE
    }


def save_checkpoint(
    root: str | Path,
    step: int,
    *,
    tensors: Mapping[str, Mapping[str, Tensor]] | None = None,
    folders: Mapping[str, Callable[[Path], Any]] | None = None,
    state: Mapping[str, Any] | None = None,
    optimizer: Mapping[str, Any] | None = None,
    scheduler: Mapping[str, Any] | None = None,
    best: bool = False,
    metric: float | None = None,
    keep_last: int | None = None,
) -> Path:
    """Write ``root/step-<step>`` atomically, point ``last`` (and ``best`` if ``best``) at it, prune.

    Args:
        root: the run's ``checkpoints/`` folder.
        tensors: name -> state dict, each saved as ``<name>.safetensors`` (e.g. ``heads``, ``extra``).
        folders: name -> writer called with ``<checkpoint>/<name>`` (e.g. ``adapters``: ``model.save_adapters``).
        state: JSON-able dict (sampler, RNG, strategy and guard states, metrics); ``step`` is added.
        optimizer, scheduler: their ``state_dict()``; tensors and plain Python values only.
        best, metric: also point ``best`` here, recording ``metric``.
        keep_last: keep only the newest ``keep_last`` step folders (never the ``best`` or ``last`` ones).
    Returns the final folder.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(root)
    for name, value in (("optimizer", optimizer), ("scheduler", scheduler)):
        if value is not None:
            _check_plain(value, name)
    tmp = root / f".tmp-step-{step}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    for name, state_dict in (tensors or {}).items():
        save_file(_unshared(state_dict), str(tmp / f"{name}.safetensors"))
    for name, writer in (folders or {}).items():
        writer(tmp / name)
    if optimizer is not None:
        torch.save(dict(optimizer), tmp / OPTIMIZER_FILE)
    if scheduler is not None:
        torch.save(dict(scheduler), tmp / SCHEDULER_FILE)
    payload = {"step": step, **jsonable(dict(state or {}))}
    (tmp / STATE_FILE).write_text(json.dumps(payload, allow_nan=False))
    for path in tmp.rglob("*"):
        if path.is_file():
            _fsync_file(path)
    manifest = {"step": step, "files": _manifest(tmp)}
    (tmp / COMPLETE).write_text(json.dumps(manifest, indent=1))
    _fsync_file(tmp / COMPLETE)
    _fsync_dir(tmp)

    final = root / f"step-{step}"
    if final.exists():  # re-saving a step (e.g. after a resume): move the old one out of the way first
        old = root / f".old-step-{step}-{uuid.uuid4().hex[:8]}"
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)
    _fsync_dir(root)
    write_pointer(root, "last", step)
    if best:
        write_pointer(root, "best", step, metric)
    if keep_last is not None:
        prune_checkpoints(root, keep_last)
    return final


def _remove_stale_temporaries(root: Path) -> None:
    # Left by a crash during a previous save (this process writes one checkpoint at a time).
    for path in root.glob(".tmp-step-*"):
        shutil.rmtree(path, ignore_errors=True)
    for path in root.glob(".old-step-*"):
        shutil.rmtree(path, ignore_errors=True)


def write_pointer(root: str | Path, name: str, step: int, metric: float | None = None) -> None:
    """Atomically make ``root/<name>`` (``last`` or ``best``) name ``step-<step>``."""
    if name not in POINTERS:
        raise ValueError(f"unknown pointer {name!r}; valid: {POINTERS}")
    root = Path(root)
    tmp = root / f".{name}.tmp"
    tmp.write_text(json.dumps(jsonable({"step": step, "path": f"step-{step}", "metric": metric})))
    _fsync_file(tmp)
    os.replace(tmp, root / name)
    _fsync_dir(root)


def read_pointer(root: str | Path, name: str) -> dict[str, Any] | None:
    """The JSON of ``root/<name>``, or None when there is no such pointer."""
    path = Path(root) / name
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{path}: pointer is not valid JSON ({error})") from None


def describe(path: str | Path, step: int, requested: str | None = None) -> str:
    """Which checkpoint a command loaded, in words: ``step-<step>`` and the pointers that name it.

    ``path`` is what the command was given: a run folder (then ``requested``, ``best`` or
    ``last``, is the pointer it asked for, and a missing one is said), its ``checkpoints/``
    folder, or a ``step-<N>`` folder. e.g. ``runs/x/checkpoints/step-6 (best: selection score
    0.4123; last)``.
    """
    path = Path(path)
    if path.name.startswith("step-"):
        root, requested = path.parent, None
    else:
        root = path / "checkpoints" if (path / "checkpoints").is_dir() else path
    names = []
    for name in ("best", "last"):
        pointer = read_pointer(root, name)
        if pointer is not None and pointer.get("step") == step:
            metric = pointer.get("metric")
            names.append(f"{name}: selection score {metric:.4f}" if name == "best" and metric is not None else name)
    if requested is not None and not any(n.startswith(requested) for n in names):
        names.append(f"the run has no {requested!r} checkpoint")
    return f"{root / f'step-{step}'} ({'; '.join(names) or 'named by no pointer'})"


def validate(folder: str | Path) -> int:
    """The step of a complete checkpoint folder; :class:`CheckpointError` if it is not one."""
    folder = Path(folder)
    marker = folder / COMPLETE
    if not marker.is_file():
        raise CheckpointError(f"{folder}: not a complete checkpoint (no {COMPLETE} marker: the save did not finish)")
    try:
        manifest = json.loads(marker.read_text())
    except json.JSONDecodeError:
        raise CheckpointError(f"{marker}: unreadable manifest; the checkpoint is not valid") from None
    actual = _manifest(folder)
    missing = [f for f in manifest["files"] if f not in actual]
    wrong = [f for f, size in manifest["files"].items() if f in actual and actual[f] != size]
    if missing or wrong:
        raise CheckpointError(
            f"{folder}: files missing {missing[:5]} or of the wrong size {wrong[:5]}; not a valid checkpoint"
        )
    return int(manifest["step"])


def list_checkpoints(root: str | Path) -> list[tuple[int, Path]]:
    """Complete ``step-<N>`` folders under ``root``, oldest first (incomplete ones are left out)."""
    found = []
    for path in Path(root).glob("step-*"):
        try:
            found.append((validate(path), path))
        except CheckpointError:
            continue
    return sorted(found)


def load_checkpoint(path: str | Path, pointer: str = "last") -> Checkpoint:
    """Open a checkpoint: a ``step-<N>`` folder, or a ``checkpoints/`` root (following ``pointer``).

    With a root whose pointer is missing (a crash before the first pointer was written) the
    newest complete checkpoint is used. Raises :class:`CheckpointError` when nothing valid is found.
    """
    path = Path(path)
    if not (path / COMPLETE).is_file() and not path.name.startswith("step-"):
        target = read_pointer(path, pointer)
        if target is not None:
            path = path / target["path"]
        else:
            complete = list_checkpoints(path)
            if not complete or pointer != "last":
                raise CheckpointError(f"{path}: no {pointer!r} checkpoint")
            path = complete[-1][1]
    step = validate(path)
    state = json.loads((path / STATE_FILE).read_text())
    return Checkpoint(path=path, step=step, state=state)


def prune_checkpoints(root: str | Path, keep_last: int) -> list[Path]:
    """Delete all but the newest ``keep_last`` complete checkpoints, sparing ``best`` and ``last``."""
    if keep_last < 1:
        raise ValueError(f"keep_last must be >= 1, got {keep_last}")
    root = Path(root)
    protected = {p["path"] for name in POINTERS if (p := read_pointer(root, name))}
    complete = list_checkpoints(root)
    removed = []
    for _, path in complete[: max(len(complete) - keep_last, 0)]:
        if path.name not in protected:
            shutil.rmtree(path)
            removed.append(path)
    return removed
