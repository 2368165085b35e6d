"""``mtpeft train`` under ``accelerate launch`` with 2 CPU processes (gloo) equals 1 process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
import yaml
from safetensors.torch import load_file

from mtpeft.samples import sample_path


def _config(path, output_dir, loss):
    path.write_text(yaml.safe_dump({
        "seed": 0,
        "output_dir": str(output_dir),
        "model": {"backbone": "tiny"},
        "strategy": {"name": "s3a", "lora_dropout": 0.0},  # each process draws its own dropout masks
        # a ranking task (one unit per example) and a token task (a varying number of tokens per
        # example): the loss terms are normalised by the units of both processes
        "tasks": [{"id": t, "train": str(sample_path(t, "train")), "dev": str(sample_path(t, "dev")),
                   "options": {"max_length": 48}, "head_options": {"dropout": 0.0}, "limit": 4}
                  for t in ("semeval2017t3", "semeval2014t7")],
        "training": {"max_steps": 3, "batch_size": 4, "eval_every": 100, "checkpoint_every": 100,
                     "tensorboard": False, "conflict_every": 0, "loss": {"strategy": loss}},
    }))


@pytest.mark.parametrize("loss", ["equal", "pcgrad"])
def test_two_processes_match_one_on_the_same_global_batch(tmp_path, loss):
    if shutil.which("accelerate") is None:
        pytest.fail("accelerate's launcher is missing: it is a dependency of mtpeft")
    config = tmp_path / "run.yaml"
    _config(config, tmp_path / "one", loss)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "mtpeft", "train", str(config)], check=True, env=env, capture_output=True)
    _config(config, tmp_path / "two", loss)
    # --multi_gpu selects accelerate's torchrun launcher; without GPUs the processes use gloo on CPU
    launch = ["accelerate", "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
              "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "mtpeft", "train", str(config)]
    done = subprocess.run(launch, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]

    assert json.loads((tmp_path / "two" / "params.json").read_text())["processes"] == 2
    for adapter in ("shared", "private_semeval2017t3", "private_semeval2014t7"):
        one = load_file(tmp_path / "one" / "adapters" / adapter / "adapter_model.safetensors")
        two = load_file(tmp_path / "two" / "adapters" / adapter / "adapter_model.safetensors")
        assert any(v.abs().max() > 0 for k, v in one.items() if "lora_B" in k)  # it trained
        for key in one:
            torch.testing.assert_close(two[key], one[key], atol=1e-6, rtol=1e-5)
    metrics = [json.loads((tmp_path / r / "final_metrics.json").read_text())["tasks"] for r in ("one", "two")]
    assert metrics[1]["semeval2017t3"] == pytest.approx(metrics[0]["semeval2017t3"])
    assert metrics[1]["semeval2014t7"] == pytest.approx(metrics[0]["semeval2014t7"])
