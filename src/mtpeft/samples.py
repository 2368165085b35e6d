"""Where the shipped synthetic samples live, per task id and split."""

from __future__ import annotations

from pathlib import Path

from mtpeft.errors import ConfigError

SAMPLES_ROOT = Path(__file__).resolve().parents[2] / "data" / "samples"
"""``data/samples`` of the repository (samples are shipped with the source, not the wheel)."""

# Both levels of 2021 T6 read the same files.
_FOLDER = {"semeval2021t6_level1": "semeval2021t6", "semeval2021t6_level2": "semeval2021t6"}


def sample_path(task_id: str, split: str = "train") -> Path:
    """The sample folder/file of ``task_id`` for ``split`` (``train`` or ``dev``)."""
    folder = SAMPLES_ROOT / _FOLDER.get(task_id, task_id)
    candidates = sorted(folder.glob(f"{split}*")) if folder.is_dir() else []
    if not candidates:
        raise ConfigError(f"no {split} sample for task {task_id!r} under {folder}")
    return candidates[0]
