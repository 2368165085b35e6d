"""The run folder (``docs/run-folder.md``): config, environment, JSON-lines logs.

:func:`create_run_folder` refuses to write over another run, and on ``--resume`` refuses a
config that differs from the one the run started with (the resumed run would not be the same
experiment); :class:`JsonlWriter` appends one JSON object per line and, on resume, drops the
lines written after the checkpoint so the logs read as if the run had never stopped.
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import json
import math
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mtpeft.errors import MtpeftError

PACKAGES = (
    "mtpeft", "torch", "transformers", "peft", "accelerate", "bitsandbytes", "torchjd",
    "safetensors", "tokenizers", "numpy", "tensorboard",
)  # fmt: skip
CONFIG_FILE = "config.yaml"
ENVIRONMENT_FILE = "environment.json"


def jsonable(value: Any) -> Any:
    """``value`` with tensors/numpy scalars as Python numbers and NaN/inf as ``None`` (strict JSON)."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):  # torch / numpy
        return jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class JsonlWriter:
    """Append-only JSON-lines file; each :meth:`append` is one line, flushed at once."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def append(self, record: Mapping[str, Any]) -> None:
        line = json.dumps(jsonable(record), allow_nan=False, sort_keys=False)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")

    def read(self) -> list[dict[str, Any]]:
        """Every record written so far (empty when the file does not exist)."""
        if not self.path.is_file():
            return []
        with self.path.open(encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.strip()]

    def truncate_after(self, step: int) -> int:
        """Drop the records whose ``step`` is greater than ``step`` (written after the checkpoint
        a run resumes from); rewrites the file atomically and returns how many were dropped."""
        records = self.read()
        kept = [r for r in records if r.get("step", 0) <= step]
        if len(kept) == len(records):
            return 0
        tmp = self.path.with_name(self.path.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as handle:
            for record in kept:
                handle.write(json.dumps(record, allow_nan=False) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)
        return len(records) - len(kept)


def package_versions(names: Sequence[str] = PACKAGES) -> dict[str, str | None]:
    """Installed version of each distribution (``None`` when not installed)."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_state(directory: str | Path | None = None) -> dict[str, Any] | None:
    """``{"commit", "dirty"}`` of the git checkout holding ``directory`` (default: mtpeft's source), or None."""
    if directory is None:
        directory = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(directory), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
        if commit.returncode != 0:
            return None
        status = subprocess.run(
            ["git", "-C", str(directory), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip()) if status.returncode == 0 else None}


def device_info() -> dict[str, Any]:
    """The accelerator torch sees (CUDA name and count), else the CPU."""
    import torch

    if torch.cuda.is_available():
        return {
            "type": "cuda",
            "name": torch.cuda.get_device_name(0),
            "count": torch.cuda.device_count(),
            "cuda": torch.version.cuda,
            "bf16": torch.cuda.is_bf16_supported(),
        }
    return {"type": "cpu", "name": platform.processor() or platform.machine(), "count": os.cpu_count()}


def environment_info(seed: int, argv: Sequence[str] | None = None) -> dict[str, Any]:
    """What ``environment.json`` holds: seed, versions, python, platform, device, git, command line."""
    return {
        "seed": seed,
        "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "argv": list(sys.argv if argv is None else argv),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": package_versions(),
        "device": device_info(),
        "git": git_state(),
    }


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, Mapping):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    if isinstance(data, list):
        out = {}
        for i, value in enumerate(data):
            out.update(_flatten(value, f"{prefix}{i}."))
        return out or {prefix[:-1]: []}
    return {prefix[:-1]: data}


def config_differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Dotted keys whose values differ between two config dicts (``a.b: old -> new``)."""
    a, b = _flatten(old), _flatten(new)
    keys = sorted(set(a) | set(b))
    return [f"{k}: {a.get(k, '<absent>')!r} -> {b.get(k, '<absent>')!r}" for k in keys if a.get(k) != b.get(k)]


@dataclass
class RunFolder:
    """Paths and log writers of one run."""

    path: Path

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def tensorboard(self) -> Path:
        return self.path / "tensorboard"

    @property
    def train_log(self) -> JsonlWriter:
        return JsonlWriter(self.path / "train_log.jsonl")

    @property
    def metrics(self) -> JsonlWriter:
        return JsonlWriter(self.path / "metrics.jsonl")

    @property
    def conflicts_path(self) -> Path:
        return self.path / "conflicts.jsonl"

    def logs(self) -> Iterator[JsonlWriter]:
        """Every step-indexed JSON-lines log (to truncate on resume)."""
        yield self.train_log
        yield self.metrics
        yield JsonlWriter(self.conflicts_path)


def create_run_folder(
    config: Any,
    *,
    argv: Sequence[str] | None = None,
    resume: bool = False,
    overwrite: bool = False,
    dump: Callable[[Any, Path], None] | None = None,
) -> RunFolder:
    """Create (or, with ``resume``, reopen) ``config.output_dir``; write ``config.yaml`` and ``environment.json``.

    ``config`` is a :class:`mtpeft.config.RunConfig`. A new run refuses a folder that already holds
    a ``config.yaml`` unless ``overwrite`` (then that run folder is deleted first; a folder that
    is not a run folder is never deleted); a resumed run refuses a config that differs from the
    saved one (the message lists the differing fields). On resume, ``environment.json`` gains a
    ``resumed`` entry.
    """
    from mtpeft.config import dump_config

    dump = dump or dump_config
    folder = RunFolder(Path(config.output_dir))
    config_path = folder.path / CONFIG_FILE
    env_path = folder.path / ENVIRONMENT_FILE
    current = config.model_dump(mode="json")
    if resume and overwrite:
        raise MtpeftError("--resume and --overwrite exclude each other")
    if resume:
        if not config_path.is_file():
            raise MtpeftError(f"cannot resume: {config_path} does not exist (no run was started in {folder.path})")
        saved = yaml.safe_load(config_path.read_text()) or {}
        differences = config_differences(saved, current)
        if differences:
            raise MtpeftError(
                f"cannot resume {folder.path}: the config differs from the saved one: {'; '.join(differences)}"
            )
        environment = json.loads(env_path.read_text()) if env_path.is_file() else {}
        environment.setdefault("resumed", []).append(environment_info(config.seed, argv))
        _write_text_atomic(env_path, json.dumps(jsonable(environment), indent=2))
        return folder
    if config_path.exists():
        if not overwrite:
            raise MtpeftError(
                f"{folder.path} already holds a run ({CONFIG_FILE}); resume it with --resume, replace it with "
                "--overwrite, or choose another output_dir (e.g. output_dir=runs/other)"
            )
        shutil.rmtree(folder.path)
    elif overwrite and folder.path.exists() and any(folder.path.iterdir()):
        raise MtpeftError(f"--overwrite: {folder.path} is not a run folder (no {CONFIG_FILE}); not deleting it")
    folder.path.mkdir(parents=True, exist_ok=True)
    dump(config, config_path)
    _write_text_atomic(env_path, json.dumps(jsonable(environment_info(config.seed, argv)), indent=2))
    return folder


def _write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
