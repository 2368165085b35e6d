"""Every shipped config in configs/ loads, validates, points at data that exists and builds a model.

Models are built on the tiny backbone (``model.backbone=tiny``, float32) so the test stays fast; sweep
configs are expanded (ablation ranks solved for that backbone) and every run's config is built.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mtpeft.backbone import load_backbone
from mtpeft.config import RunConfig, load_config
from mtpeft.model.build import build_model
from mtpeft.sweep import load_sweep
from mtpeft.tasks.ids import STUDY_TASKS
from mtpeft.testing import ENV_VAR, require_shared_data

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted((REPO / "configs").glob("*.yaml"))
TINY = ["model.backbone=tiny", "model.dtype=float32"]


def run_configs(path: Path) -> list[RunConfig]:
    """The run configs a file stands for: itself, or every run of its sweep.

    A config that reads the real SemEval files (through ``$MTPEFT_SHARED_DATA``) is skipped, with a
    message, where they are absent: reading its training files is part of building its model.
    """
    if ENV_VAR in path.read_text():
        require_shared_data("")
    if "sweep" in (yaml.safe_load(path.read_text()) or {}):
        return [run.config for run in load_sweep(path, TINY).runs]
    return [load_config(path, TINY)]


def test_the_expected_configs_are_shipped():
    assert {p.name for p in CONFIGS} >= {"demo.yaml", "strategies.yaml", "ablations.yaml", "llama-3.2-3b.yaml"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_validates_and_its_data_exists(path):
    for config in run_configs(path):
        for task in config.tasks:
            for split in ("train", "dev", "test"):
                location = getattr(task, split)
                if location is not None:
                    assert (REPO / location).exists(), f"{path.name}: task {task.id} {split} {location} does not exist"


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_builds_on_the_tiny_backbone(path):
    built_kinds = set()
    for config in run_configs(path):
        key = config.model_dump_json(exclude={"seed", "output_dir"})
        if key in built_kinds:  # seeds of one configuration build the same model
            continue
        built_kinds.add(key)
        built = build_model(config, load_backbone("tiny", seed=config.seed))
        assert set(built.model.heads) == set(config.task_ids())
        assert built.model.parameter_counts().trainable > 0


def test_the_demo_is_the_main_job():
    config = load_config(REPO / "configs" / "demo.yaml")
    assert config.model.backbone == "embedded"
    assert (config.strategy.name, config.strategy.fusion) == ("s3a", "gated")
    assert set(config.task_ids()) == set(STUDY_TASKS)
    assert all(t.train.startswith("data/samples/") and t.dev.startswith("data/samples/") for t in config.tasks)
    assert config.evaluation.before_training and config.evaluation.report


def test_the_sweeps_share_data_and_budget_and_cover_the_study():
    strategies = load_sweep(REPO / "configs" / "strategies.yaml", TINY)
    ablations = load_sweep(REPO / "configs" / "ablations.yaml", TINY)
    assert [r.label for r in strategies.runs[::3]] == ["s1", "s2", "s3a", "s3b", "s4", "s5"]
    assert sorted({r.label for r in ablations.runs}) == ["A1", "A2", "A3", "A4"]
    for plan in (strategies, ablations):
        assert {r.seed for r in plan.runs} == {0, 1, 2}
        configs = [r.config for r in plan.runs]
        assert len({c.model_dump_json(include={"tasks", "training", "evaluation"}) for c in configs}) == 1
    assert strategies.runs[0].config.tasks == ablations.runs[0].config.tasks
    assert strategies.runs[0].config.training == ablations.runs[0].config.training


def test_the_llama_setting():
    config = load_config(REPO / "configs" / "llama-3.2-3b.yaml")
    assert config.model.backbone.endswith("Llama-3.2-3B") and config.model.dtype == "bfloat16"
    assert set(config.task_ids()) == set(STUDY_TASKS)
