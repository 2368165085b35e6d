"""The trainer packs by default, and a packed run trains as the padded run does (tiny Llama)."""

from __future__ import annotations

import json

import pytest
from safetensors.torch import load_file

from mtpeft.config import config_from_dict
from mtpeft.model.multitask import MultiTaskModel
from mtpeft.samples import sample_path
from mtpeft.training.run import train

TASKS = ("semeval2014t7", "semeval2017t3", "semeval2021t6_level1", "semeval2021t6_level2")


def _config(output_dir, evaluation_packing="auto", **training):
    return config_from_dict({
        "seed": 0,
        "output_dir": str(output_dir),
        "model": {"backbone": "tiny"},
        # no LoRA dropout: its masks are drawn over the packed tensor, a different random draw
        "strategy": {"name": "s3a", "lora_dropout": 0.0},
        "tasks": [{"id": t, "train": str(sample_path(t, "train")), "dev": str(sample_path(t, "dev")),
                   "options": {"max_length": 48}, "limit": 4} for t in TASKS],
        "training": {"max_steps": 3, "batch_size": 6, "eval_every": 100, "checkpoint_every": 100, "log_every": 1,
                     "conflict_every": 0, "tensorboard": False, **training},
        "evaluation": {"packing": evaluation_packing},
    })


def test_packed_training_equals_padded_training(tmp_path, monkeypatch):
    layouts = {True: [], False: []}  # training, prediction
    collate = MultiTaskModel.collate

    def spy(self, features, packing=None):
        batch = collate(self, features, packing)
        layouts[self.training].append(type(batch.layout).__name__)
        return batch

    monkeypatch.setattr(MultiTaskModel, "collate", spy)
    runs = {}
    for name, packing in (("packed", "auto"), ("padded", False)):
        layouts[True].clear(), layouts[False].clear()
        train(_config(tmp_path / name, packing=packing, packing_tokens=64, evaluation_packing=packing))
        expected = {"PackedLayout"} if packing else {"NoneType"}
        assert set(layouts[True]) == expected and set(layouts[False]) == expected
        log = [json.loads(line) for line in (tmp_path / name / "train_log.jsonl").read_text().splitlines()]
        runs[name] = log
    packed, padded = runs["packed"], runs["padded"]
    assert [r["step"] for r in packed] == [r["step"] for r in padded] == [1, 2, 3]
    for a, b in zip(packed, padded):
        assert a["tokens"] == b["tokens"]  # real tokens, whatever the layout
        assert a["loss"] == pytest.approx(b["loss"], abs=1e-5)
    for path in sorted((tmp_path / "padded" / "adapters").glob("*/adapter_model.safetensors")):
        other = load_file(tmp_path / "packed" / "adapters" / path.parent.name / path.name)
        for key, value in load_file(path).items():
            assert (value - other[key]).abs().max() <= 1e-5, key
