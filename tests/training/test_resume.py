"""Checkpoint -> resume gives bit-identical next steps: optimizer, scheduler, RNG, sampler, strategy."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from mtpeft.config import TrainingConfig
from mtpeft.training.checkpoint import load_checkpoint, save_checkpoint
from mtpeft.training.rng import get_rng_state, seed_everything, set_rng_state
from mtpeft.training.sampling import TaskSampler
from mtpeft.training.schedule import build_optimization
from mtpeft.training.weighting import build_loss_strategy
from tests.training.toy import ToyMultiTask

TASKS = ["a", "b", "c"]
SIZES = {"a": 9, "b": 5, "c": 3}
DATA = {t: (torch.randn(n, 6, generator=torch.Generator().manual_seed(i)), torch.randn(n)) for i, (t, n) in enumerate(SIZES.items())}


class Run:
    """A miniature training loop over the building blocks (the real one is the trainer's fit())."""

    def __init__(self, strategy_name: str) -> None:
        seed_everything(11)
        self.model = ToyMultiTask(TASKS)
        self.strategy = build_loss_strategy(strategy_name, TASKS, seed=11)
        config = TrainingConfig(max_steps=12, lr=0.05, weight_decay=0.01, warmup_ratio=0.25, schedule="cosine")
        self.optimizer, self.scheduler = build_optimization(
            config,
            {f"shared.{n}": p for n, p in self.model.shared.named_parameters()},
            {f"heads.{n}": p for n, p in self.model.heads.named_parameters()},
            {"log_variances": p for p in self.strategy.parameters()},
        )
        self.sampler = TaskSampler(SIZES, 4, seed=11, batch_mode="mixed")
        self.step = 0

    def train(self, steps: int) -> list[float]:
        lrs = []
        for _ in range(steps):
            batch = self.sampler.next_batch()
            # dropout draws from the global torch RNG, python/numpy draws from theirs
            noise = random.random() + float(np.random.rand())
            inputs = {
                t: (torch.nn.functional.dropout(DATA[t][0][idx], 0.3) + noise, DATA[t][1][idx])
                for t, idx in batch.items()
            }
            self.strategy.backward(self.model.losses(inputs), self.model.shared_parameters(), self.model.other_parameters())
            self.strategy.finish(self.model.shared_parameters())
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad()
            self.step += 1
            lrs.append(self.scheduler.get_last_lr()[0])
        return lrs

    def save(self, root) -> None:
        save_checkpoint(
            root,
            self.step,
            tensors={"model": self.model.state_dict(), "extra": self.strategy.state_dict()},
            state={"sampler": self.sampler.state_dict(), "rng": get_rng_state(), "strategy": self.strategy.state()},
            optimizer=self.optimizer.state_dict(),
            scheduler=self.scheduler.state_dict(),
        )

    def load(self, root) -> None:
        ckpt = load_checkpoint(root)
        self.model.load_state_dict(ckpt.tensors("model"))
        self.strategy.load_state_dict(ckpt.tensors("extra"))
        self.strategy.load_state(ckpt.state["strategy"])
        self.optimizer.load_state_dict(ckpt.optimizer_state())
        self.scheduler.load_state_dict(ckpt.scheduler_state())
        self.sampler.load_state_dict(ckpt.state["sampler"])
        set_rng_state(ckpt.state["rng"])
        self.step = ckpt.step


@pytest.mark.parametrize("strategy", ["uncertainty", "pcgrad"])
def test_resume_gives_identical_next_steps(tmp_path, strategy):
    reference = Run(strategy)
    reference_lrs = reference.train(12)

    first = Run(strategy)
    lrs = first.train(5)
    first.save(tmp_path / "checkpoints")
    del first
    seed_everything(999)  # a new process starts from another RNG state
    resumed = Run(strategy)
    resumed.load(tmp_path / "checkpoints")
    lrs += resumed.train(7)

    assert lrs == reference_lrs
    for (name, a), b in zip(reference.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name
    assert all(torch.equal(a, b) for a, b in zip(reference.strategy.parameters(), resumed.strategy.parameters()))


def test_rng_round_trip():
    seed_everything(3)
    state = get_rng_state()
    expected = (random.random(), float(np.random.rand()), torch.rand(2))
    random.random(), np.random.rand(), torch.rand(5)
    set_rng_state(state)
    got = (random.random(), float(np.random.rand()), torch.rand(2))
    assert got[:2] == expected[:2] and torch.equal(got[2], expected[2])


def test_seed_everything_makes_indexing_backward_deterministic():
    # The backward of advanced indexing with repeated indices (index_put_ with accumulate) is
    # order-dependent with several threads unless deterministic algorithms are on.
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        seed_everything(0)
        x = torch.randn(4, 60, 64, requires_grad=True)
        rows, cols = torch.randint(0, 4, (5000,)), torch.randint(0, 60, (5000,))
        weights = torch.randn(5000, 64)
        grads = []
        for _ in range(10):
            x.grad = None
            (x[rows, cols] * weights).sum().backward()
            grads.append(x.grad.clone())
        assert all(torch.equal(grads[0], g) for g in grads)
    finally:
        torch.set_num_threads(previous_threads)
