"""Fixtures for model tests: the tiny Llama with the real tokenizer, and sample features per task."""

from __future__ import annotations

import pytest

from mtpeft.backbone import Backbone, tiny_llama
from mtpeft.config import config_from_dict
from mtpeft.samples import sample_path
from mtpeft.tasks.ids import STUDY_TASKS

ALL_TASKS = STUDY_TASKS


def make_config(strategy: str = "s3a", tasks=ALL_TASKS, **strategy_options):
    return config_from_dict(
        {
            "seed": 0,
            "model": {"backbone": "tiny"},
            "strategy": {"name": strategy, "lora_dropout": 0.0, **strategy_options},
            "tasks": [{"id": t, "train": str(sample_path(t, "train")), "options": {"max_length": 64}} for t in tasks],
        }
    )


@pytest.fixture
def tiny_backbone(tokenizer) -> Backbone:
    return Backbone(model=tiny_llama(0), tokenizer=tokenizer, name="tiny", source="test")


@pytest.fixture(scope="session")
def sample_documents():
    """Three training documents of each task, read from the shipped samples."""
    from mtpeft.model.build import build_task

    config = make_config()
    return {tc.id: build_task(tc).read(tc.train).documents[:3] for tc in config.tasks}


def features_for(built, documents, tokenizer, per_task: int = 2):
    """The first ``per_task`` features of each task of ``built`` (with targets)."""
    out = {}
    for task_id, task in built.tasks.items():
        encoded = task.encode(documents[task_id], tokenizer)
        assert encoded.features, f"{task_id}: no features from the samples"
        out[task_id] = encoded.features[:per_task]
    return out
