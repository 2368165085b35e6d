"""Step-level loss normalisation: accumulation equals one large batch, and every example weighs the
same under proportional sampling in mixed batches, through the trainer's own step."""

from __future__ import annotations

import pytest
import torch

from mtpeft.config import config_from_dict
from mtpeft.heads.base import HeadOutput, LossTerm
from mtpeft.model.build import build_model
from mtpeft.samples import sample_path
from mtpeft.training.data import load_task_data
from mtpeft.training.run_folder import create_run_folder
from mtpeft.training.sampling import TaskSampler
from mtpeft.training.step_losses import StepLosses, task_shares
from mtpeft.training.trainer import Trainer
from mtpeft.training.weighting import build_loss_strategy

# one task per head kind: token, span (with links), relation, ranking
TASKS = ("semeval2014t7", "semeval2015t14", "semeval2016t12", "semeval2017t3")


def _trainer(tmp_path, name, loss="equal", normalisation="step", **training) -> Trainer:
    config = config_from_dict({
        "seed": 0,
        "output_dir": str(tmp_path / name),
        "model": {"backbone": "tiny"},
        "strategy": {"name": "s3a", "lora_dropout": 0.0},  # no dropout: both layouts see the same network
        "tasks": [{"id": t, "train": str(sample_path(t, "train")), "options": {"max_length": 48},
                   "head_options": {"dropout": 0.0}, "limit": 4} for t in TASKS],
        "training": {"max_steps": 4, "max_grad_norm": None, "tensorboard": False, "conflict_every": 0,
                     "loss": {"strategy": loss, "normalisation": normalisation}, **training},
    })  # fmt: skip
    built = build_model(config)
    data = load_task_data(config, built.tasks, built.backbone.tokenizer)
    return Trainer(config, built, data, create_run_folder(config))


def _step_gradients(trainer: Trainer, batches: list[dict[str, list[int]]]) -> tuple[dict[str, torch.Tensor], dict]:
    """The gradients the optimiser receives in one ``_train_step`` over the given global batches."""
    drawn = iter(batches)
    trainer.samplers[0].next_batch = lambda: next(drawn)
    captured: dict[str, torch.Tensor] = {}

    def capture(optimizer, args, kwargs):
        for name, p in trainer.model.named_parameters():
            if p.grad is not None:
                captured[name] = p.grad.detach().clone()

    handle = trainer.optimizer.register_step_pre_hook(capture)
    record = trainer._train_step(0)
    handle.remove()
    assert next(drawn, None) is None, "the step must draw every micro-batch"
    return captured, record


# uneven: each task's count differs between the micro-batches (1 + 3, 3 + 1, 2 + 1, 1 + 2)
MICRO = [
    {"semeval2014t7": [0], "semeval2015t14": [0, 1, 2], "semeval2016t12": [0, 1], "semeval2017t3": [0]},
    {"semeval2014t7": [1, 2, 3], "semeval2015t14": [3], "semeval2016t12": [2], "semeval2017t3": [1, 2]},
]
WHOLE = [{t: MICRO[0][t] + MICRO[1][t] for t in TASKS}]


@pytest.mark.parametrize("loss", ["equal", "uncertainty", "pcgrad"])
def test_two_micro_batches_give_the_gradients_of_one_batch(tmp_path, loss):
    accumulated, record = _step_gradients(_trainer(tmp_path, "two", loss, grad_accum=2), MICRO)
    whole, whole_record = _step_gradients(_trainer(tmp_path, "one", loss), WHOLE)
    assert accumulated.keys() == whole.keys()
    moved = [name for name, gradient in whole.items() if gradient.abs().max() > 1e-4]
    assert any("lora_B" in name for name in moved) and all(any(f"heads.{t}." in n for n in moved) for t in TASKS)
    for name, gradient in whole.items():
        torch.testing.assert_close(accumulated[name], gradient, rtol=0, atol=1e-6, msg=name)
    # the train log shows the same step-level figures
    assert record["shares"] == pytest.approx(whole_record["shares"])
    assert record["units"] == whole_record["units"]
    for task in TASKS:
        assert record["losses"][task] == pytest.approx(whole_record["losses"][task], rel=1e-5)
        assert set(record["terms"][task]) == set(whole_record["terms"][task])
    assert set(record["terms"]["semeval2015t14"]) >= {"span_ce", "link_bce"}  # every term of every task


def test_micro_batch_normalisation_keeps_the_per_micro_batch_means(tmp_path):
    trainer = _trainer(tmp_path, "micro", normalisation="micro_batch", grad_accum=2)
    got, record = _step_gradients(trainer, MICRO)
    assert record["shares"] == {t: 1.0 for t in TASKS}

    reference = _trainer(tmp_path, "reference", grad_accum=2)  # the same initial weights (same seed)
    model = reference.model
    model.train()
    for indices in MICRO:  # the earlier definition, by hand: mean of sum_t (task mean of the micro-batch)
        batch = model.collate({t: [reference.data[t].train[i] for i in ids] for t, ids in indices.items()})
        outputs = model(batch).outputs
        (sum(outputs[t].loss for t in TASKS) / len(MICRO)).backward()
    for name, p in model.named_parameters():
        if name in got:
            torch.testing.assert_close(got[name], p.grad, rtol=0, atol=1e-6, msg=name)
    # and it is NOT one batch of twice the size: that is what the step normalisation fixes
    whole, _ = _step_gradients(_trainer(tmp_path, "whole", normalisation="micro_batch"), WHOLE)
    assert any(not torch.allclose(got[n], whole[n], rtol=0, atol=1e-4) for n in whole)


class _ExampleLosses:
    """Per-example losses as leaf tensors, so d(objective)/d(loss of example i) is its weight."""

    def __init__(self, batch: dict[str, list[int]], units_per_example: dict[str, int]) -> None:
        self.leaves = {t: torch.ones(len(ids), dtype=torch.float64, requires_grad=True) for t, ids in batch.items()}
        self.units = units_per_example

    def outputs(self) -> dict[str, HeadOutput]:
        out = {}
        for task, leaf in self.leaves.items():
            # each example's loss spread over its units; the term's units are all units of the batch
            term = LossTerm(total=leaf.sum(), units=torch.tensor(len(leaf) * self.units[task]))
            out[task] = HeadOutput(logits=torch.zeros(0), loss_terms={"ce": term})
        return out


def _per_example_weights(normalisation: str, batch_mode: str = "mixed", steps: int = 4000) -> dict[str, float]:
    """Average weight of one example of each task in the ``equal`` objective, over sampled steps."""
    sizes = {"big": 5000, "small": 100}  # 50:1, as in the issue
    units = {"big": 1, "small": 1}
    sampler = TaskSampler(sizes, 8, seed=3, strategy="proportional", batch_mode=batch_mode)
    strategy = build_loss_strategy("equal", list(sizes))
    total_weight = dict.fromkeys(sizes, 0.0)
    examples = dict.fromkeys(sizes, 0)
    for _ in range(steps):
        batch = sampler.next_batch()
        fake = _ExampleLosses(batch, units)
        step = StepLosses(
            normalisation,
            denominators=[{(t, "ce"): float(len(ids) * units[t]) for t, ids in batch.items()}],
            units={(t, "ce"): float(len(ids) * units[t]) for t, ids in batch.items()},
            shares=task_shares([batch]) if normalisation == "step" else dict.fromkeys(batch, 1.0),
            scale=1.0,
        )
        total, _ = strategy.combine(step.task_losses(0, fake.outputs()), step.shares)
        total.backward()
        for task, leaf in fake.leaves.items():
            total_weight[task] += float(leaf.grad.sum())
            examples[task] += len(leaf)
    return {t: total_weight[t] / examples[t] for t in sizes}


def test_every_example_weighs_the_same_under_proportional_mixed_sampling():
    weights = _per_example_weights("step")
    assert weights["big"] == pytest.approx(1 / 8) and weights["small"] == pytest.approx(1 / 8)
    # the earlier per-micro-batch task means: an example of the small task weighs several times more
    old = _per_example_weights("micro_batch")
    assert old["small"] / old["big"] > 3


def test_a_tasks_expected_weight_is_its_sampling_share():
    sizes = {"big": 5000, "small": 100}
    p_small = 100 / 5100
    for batch_mode in ("mixed", "per_task"):
        sampler = TaskSampler(sizes, 8, seed=4, strategy="proportional", batch_mode=batch_mode)
        shares = [task_shares([sampler.next_batch()]).get("small", 0.0) for _ in range(20000)]
        assert sum(shares) / len(shares) == pytest.approx(p_small, rel=0.1), batch_mode


def test_a_head_term_that_loss_units_did_not_count_is_an_error():
    step = StepLosses("step", denominators=[{("a", "ce"): 2.0}], units={("a", "ce"): 2.0}, shares={"a": 1.0}, scale=1.0)
    out = HeadOutput(logits=torch.zeros(0), loss_terms={"other": LossTerm(torch.tensor(1.0), torch.tensor(1))})
    with pytest.raises(Exception, match="'other'.*loss_units"):
        step.task_losses(0, {"a": out})
