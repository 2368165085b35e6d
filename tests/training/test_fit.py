"""End-to-end training on the tiny Llama: resume equals uninterrupted, same seed same result, outputs."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from mtpeft.config import config_from_dict
from mtpeft.samples import sample_path
from mtpeft.training.run import train
from mtpeft.training.trainer import Trainer

TASKS = ("semeval2014t7", "semeval2016t12", "semeval2017t3", "semeval2021t6_level2")


def make_config(output_dir, strategy="s3a", loss="equal", tasks=TASKS, **training):
    values = dict(max_steps=6, batch_size=4, eval_every=3, checkpoint_every=3, log_every=1, conflict_every=2,
                  loss={"strategy": loss}, tensorboard=False)
    values.update(training)
    return config_from_dict({
        "seed": 0,
        "output_dir": str(output_dir),
        "model": {"backbone": "tiny"},
        "strategy": {"name": strategy, "lora_dropout": 0.1},  # dropout on: resume must restore the RNG
        "tasks": [
            {"id": t, "train": str(sample_path(t, "train")), "dev": str(sample_path(t, "dev")),
             "options": {"max_length": 48}, "limit": 6}
            for t in tasks
        ],
        "training": values,
    })


def _adapter_weights(run_dir):
    weights = {}
    for path in sorted((run_dir / "adapters").glob("*/adapter_model.safetensors")):
        weights.update({f"{path.parent.name}/{k}": v for k, v in load_file(path).items()})
    return weights


def _assert_same_run(a, b):
    wa, wb = _adapter_weights(a), _adapter_weights(b)
    assert wa.keys() == wb.keys() and wa
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key
    fa = json.loads((a / "final_metrics.json").read_text())["tasks"]
    fb = json.loads((b / "final_metrics.json").read_text())["tasks"]
    assert fa == fb


@pytest.mark.parametrize("loss", ["equal", "uncertainty", "pcgrad"])
def test_resume_after_a_crash_equals_an_uninterrupted_run(tmp_path, monkeypatch, loss):
    straight = tmp_path / "straight"
    train(make_config(straight, loss=loss))

    crashed = tmp_path / "crashed"
    original = Trainer._train_step

    def crash_at_step_5(self, stage_index):
        if self.state.step == 4:  # the 5th step: after the checkpoint of step 3
            raise KeyboardInterrupt("simulated kill")
        return original(self, stage_index)

    monkeypatch.setattr(Trainer, "_train_step", crash_at_step_5)
    with pytest.raises(KeyboardInterrupt):
        train(make_config(crashed, loss=loss))
    monkeypatch.setattr(Trainer, "_train_step", original)
    assert not (crashed / "final_metrics.json").exists()
    train(make_config(crashed, loss=loss), resume=True)

    _assert_same_run(straight, crashed)
    logged = [json.loads(line)["step"] for line in (crashed / "train_log.jsonl").read_text().splitlines()]
    assert logged == sorted(set(logged)) == [1, 2, 3, 4, 5, 6]  # the crashed run's extra lines were dropped


def test_same_seed_same_metrics_and_weights(tmp_path):
    train(make_config(tmp_path / "a"))
    train(make_config(tmp_path / "b"))
    _assert_same_run(tmp_path / "a", tmp_path / "b")


def test_run_folder_holds_what_reproduces_and_reports_the_run(tmp_path):
    run = tmp_path / "run"
    train(make_config(run, loss="pcgrad", tensorboard=True))
    for name in ("config.yaml", "environment.json", "train_log.jsonl", "conflicts.jsonl", "metrics.jsonl",
                 "final_metrics.json", "params.json", "data_report.json"):
        assert (run / name).is_file(), name
    assert list((run / "tensorboard").glob("events.*"))
    environment = json.loads((run / "environment.json").read_text())
    assert environment["seed"] == 0 and "torch" in json.dumps(environment)
    conflicts = [json.loads(line) for line in (run / "conflicts.jsonl").read_text().splitlines()]
    assert [c["step"] for c in conflicts] == [2, 4, 6]
    assert all(0.0 <= c["conflict_fraction"] <= 1.0 for c in conflicts)
    final = json.loads((run / "final_metrics.json").read_text())
    assert set(final["tasks"]) == set(TASKS)
    assert (run / "adapters" / "shared" / "adapter_config.json").is_file()
    assert (run / "checkpoints" / "best").is_file() and (run / "checkpoints" / "last").is_file()


def test_resume_refuses_a_different_config(tmp_path):
    from mtpeft.errors import MtpeftError

    train(make_config(tmp_path / "r"))
    with pytest.raises(MtpeftError, match="training.lr"):
        train(make_config(tmp_path / "r", lr=1e-3), resume=True)


def test_nonfinite_losses_are_skipped_then_stop_with_a_clear_error(tmp_path, monkeypatch):
    from mtpeft.model.multitask import MultiTaskModel
    from mtpeft.training.nonfinite import NonFiniteLossError

    original = MultiTaskModel.forward

    def nan_loss(self, batch):
        out = original(self, batch)
        for output in out.outputs.values():
            for term in output.loss_terms.values():
                term.total = term.total * float("nan")
        return out

    monkeypatch.setattr(MultiTaskModel, "forward", nan_loss)
    with pytest.raises(NonFiniteLossError, match="3 steps in a row"):
        train(make_config(tmp_path / "nan", max_nonfinite_in_row=3))
    lines = [json.loads(line) for line in (tmp_path / "nan" / "train_log.jsonl").read_text().splitlines()]
    assert [line["skipped_nonfinite"] for line in lines] == [1, 2]


@pytest.mark.parametrize("strategy", ["s2", "s3b", "s4"])
def test_other_strategies_train(tmp_path, strategy):
    results = train(make_config(tmp_path / strategy, strategy=strategy, max_steps=4))
    assert set(results) == set(TASKS)
    log = [json.loads(line) for line in (tmp_path / strategy / "train_log.jsonl").read_text().splitlines()]
    if strategy == "s4":  # level-1 tasks first, then level-2
        assert [line["stage"] for line in log] == ["level1", "level1", "level2", "level2"]
        assert set(log[0]["losses"]) <= {"semeval2014t7"}
