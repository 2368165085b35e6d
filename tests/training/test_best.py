"""`best` selection: the final evaluation competes like every other; commands say what they load."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from mtpeft.cli.main import app
from mtpeft.training import checkpoint as ckpt
from mtpeft.training.run import train
from mtpeft.training.trainer import Trainer
from tests.training.test_fit import make_config

TASKS = ("semeval2017t3",)


@pytest.fixture(scope="module")
def improving_run(tmp_path_factory):
    """4 steps, evaluated at step 3 and at the end (step 4); every evaluation beats the one before."""
    run = tmp_path_factory.mktemp("best") / "run"
    patch = pytest.MonkeyPatch()
    patch.setattr(Trainer, "selection_score", lambda self, results: float(self.state.step))
    try:
        train(make_config(run, tasks=TASKS, max_steps=4, eval_every=3, checkpoint_every=100, conflict_every=0))
    finally:
        patch.undo()
    return run


def test_best_is_the_last_step_when_the_last_evaluation_is_the_best(improving_run):
    assert ckpt.read_pointer(improving_run / "checkpoints", "best")["step"] == 4
    final = json.loads((improving_run / "final_metrics.json").read_text())
    assert final["step"] == 4 and final["best_step"] == 4 and final["best_score"] == 4.0
    assert final["selection_metric"] == "mean"
    # the best checkpoint holds the final weights: the adapters saved at the end of the run
    best = ckpt.load_checkpoint(improving_run / "checkpoints", "best")
    saved = (best.folder("adapters") / "shared" / "adapter_model.safetensors").read_bytes()
    assert saved == (improving_run / "adapters" / "shared" / "adapter_model.safetensors").read_bytes()


def test_the_last_step_is_evaluated_once(tmp_path):
    run = tmp_path / "run"
    train(make_config(run, tasks=TASKS, max_steps=4, eval_every=2, checkpoint_every=100, conflict_every=0))
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [2, 4]  # the periodic evaluation of step 4 is the final one


def test_evaluate_and_probe_say_which_checkpoint_they_loaded(improving_run):
    result = CliRunner().invoke(app, ["evaluate", str(improving_run)])
    assert result.exit_code == 0, result.output
    assert "checkpoints/step-4 (best: selection score 4.0000; last)" in result.output
    step_folder = improving_run / "checkpoints" / "step-4"
    result = CliRunner().invoke(app, ["probe", str(step_folder), "--max-examples", "8"])
    assert result.exit_code == 0, result.output
    assert "loaded " + str(step_folder) + " (best: selection score 4.0000; last)" in result.output


def test_a_run_without_best_says_so(tmp_path):
    root = tmp_path / "checkpoints"
    ckpt.save_checkpoint(root, 3, state={})
    assert ckpt.describe(tmp_path / "checkpoints", 3, "best").endswith("(last; the run has no 'best' checkpoint)")
    ckpt.save_checkpoint(root, 5, state={}, best=True, metric=0.25)
    assert ckpt.describe(root / "step-3", 3) == f"{root / 'step-3'} (named by no pointer)"
    assert ckpt.describe(root, 5, "best") == f"{root / 'step-5'} (best: selection score 0.2500; last)"
