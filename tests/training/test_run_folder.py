"""Run folder: config and environment files, refusal to overwrite, resume checks, JSON-lines logs."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from mtpeft.config import config_from_dict
from mtpeft.errors import MtpeftError
from mtpeft.training.run_folder import JsonlWriter, create_run_folder, package_versions


def _config(tmp_path, **training):
    return config_from_dict({"seed": 5, "output_dir": str(tmp_path / "run"), "tasks": [{"id": "x"}], "training": training})


def test_new_run_writes_config_and_environment(tmp_path):
    config = _config(tmp_path, max_steps=7)
    folder = create_run_folder(config, argv=["mtpeft", "train", "c.yaml"])
    saved = yaml.safe_load((folder.path / "config.yaml").read_text())
    assert saved == config.model_dump(mode="json") and saved["training"]["max_steps"] == 7
    env = json.loads((folder.path / "environment.json").read_text())
    assert env["seed"] == 5 and env["argv"] == ["mtpeft", "train", "c.yaml"]
    assert env["packages"]["torch"] == torch.__version__
    assert set(package_versions()) <= set(env["packages"]) and env["packages"]["torchjd"]
    assert env["device"]["type"] in ("cpu", "cuda") and env["python"]
    assert env["git"] is None or len(env["git"]["commit"]) == 40


def test_refuses_to_overwrite_and_checks_the_config_on_resume(tmp_path):
    create_run_folder(_config(tmp_path, max_steps=7))
    with pytest.raises(MtpeftError, match="already holds a run"):
        create_run_folder(_config(tmp_path, max_steps=7))
    with pytest.raises(MtpeftError, match=r"training\.lr: 0\.0002 -> 0\.1"):
        create_run_folder(_config(tmp_path, max_steps=7, lr=0.1), resume=True)
    folder = create_run_folder(_config(tmp_path, max_steps=7), resume=True, argv=["again"])
    env = json.loads((folder.path / "environment.json").read_text())
    assert env["resumed"][0]["argv"] == ["again"]
    with pytest.raises(MtpeftError, match="does not exist"):
        create_run_folder(config_from_dict({"output_dir": str(tmp_path / "nothing"), "tasks": [{"id": "x"}]}), resume=True)


def test_overwrite_replaces_a_run_folder_and_nothing_else(tmp_path):
    first = create_run_folder(_config(tmp_path, max_steps=7))
    (first.path / "final_metrics.json").write_text("{}")
    folder = create_run_folder(_config(tmp_path, max_steps=9), overwrite=True)
    assert not (folder.path / "final_metrics.json").exists()
    assert yaml.safe_load((folder.path / "config.yaml").read_text())["training"]["max_steps"] == 9
    with pytest.raises(MtpeftError, match="exclude each other"):
        create_run_folder(_config(tmp_path), overwrite=True, resume=True)
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    config = config_from_dict({"output_dir": str(other), "tasks": [{"id": "x"}]})
    with pytest.raises(MtpeftError, match="not a run folder"):
        create_run_folder(config, overwrite=True)
    assert (other / "keep.txt").read_text() == "mine"


def test_jsonl_append_sanitise_and_truncate(tmp_path):
    log = JsonlWriter(tmp_path / "train_log.jsonl")
    for step in (1, 2, 3, 4):
        log.append({"step": step, "loss": torch.tensor(step / 2), "losses": {"a": float("nan") if step == 2 else 1.0}})
    lines = (tmp_path / "train_log.jsonl").read_text().splitlines()
    assert len(lines) == 4 and json.loads(lines[1])["losses"]["a"] is None  # strict JSON: NaN -> null
    assert json.loads(lines[0])["loss"] == 0.5
    assert log.truncate_after(2) == 2  # a resume from step 2 drops what was logged after it
    assert [r["step"] for r in log.read()] == [1, 2]
    assert log.truncate_after(2) == 0
