"""Loss strategies: registry, equal and uncertainty maths, gradient strategies on a toy model."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from mtpeft.errors import ConfigError
from mtpeft.registry import UnknownNameError
from mtpeft.training.gradients import shared_size, task_gradients
from mtpeft.training.weighting import LOSS_STRATEGIES, build_loss_strategy
from tests.training.toy import ToyMultiTask, toy_batches

TASKS = ["a", "b", "c"]


def test_every_strategy_declares_what_it_needs():
    for name in LOSS_STRATEGIES.names():
        assert isinstance(LOSS_STRATEGIES.get(name).needs_per_task_gradients, bool), name
    assert not LOSS_STRATEGIES.get("equal").needs_per_task_gradients
    assert not LOSS_STRATEGIES.get("uncertainty").needs_per_task_gradients
    assert LOSS_STRATEGIES.get("pcgrad").needs_per_task_gradients
    assert LOSS_STRATEGIES.get("upgrad").needs_per_task_gradients


def test_bad_names_and_options():
    with pytest.raises(UnknownNameError, match="equal.*pcgrad.*uncertainty"):
        build_loss_strategy("pcgard", TASKS)
    with pytest.raises(ConfigError, match="no_such_option"):
        build_loss_strategy("mgda", TASKS, {"no_such_option": 1})
    with pytest.raises(ConfigError, match="no_such_option"):
        build_loss_strategy("equal", TASKS, {"no_such_option": 1})
    with pytest.raises(ConfigError, match="regression_tasks"):
        build_loss_strategy("uncertainty", TASKS, {"regression_tasks": ["zz"]})


def test_equal_is_the_sum():
    losses = {"a": torch.tensor(1.5), "b": torch.tensor(0.25)}
    total, weights = build_loss_strategy("equal", TASKS).combine(losses)
    assert total.item() == pytest.approx(1.75)
    assert weights == {"a": 1.0, "b": 1.0}


def test_uncertainty_weighting_by_hand():
    strategy = build_loss_strategy("uncertainty", ["cls", "reg"], {"regression_tasks": ["reg"]})
    s_cls, s_reg = 0.5, -1.0
    with torch.no_grad():
        strategy.log_variances.copy_(torch.tensor([s_cls, s_reg]))
    l_cls, l_reg = 2.0, 3.0
    losses = {"cls": torch.tensor(l_cls, requires_grad=True), "reg": torch.tensor(l_reg, requires_grad=True)}
    total, weights = strategy.combine(losses)
    # Kendall et al.: L/sigma^2 + log sigma (classification), L/(2 sigma^2) + log sigma (regression), s = log sigma^2
    expected = math.exp(-s_cls) * l_cls + s_cls / 2 + 0.5 * math.exp(-s_reg) * l_reg + s_reg / 2
    assert total.item() == pytest.approx(expected)
    assert weights == pytest.approx({"cls": math.exp(-s_cls), "reg": 0.5 * math.exp(-s_reg)})
    total.backward()
    assert strategy.log_variances.grad.tolist() == pytest.approx(
        [-math.exp(-s_cls) * l_cls + 0.5, -0.5 * math.exp(-s_reg) * l_reg + 0.5]
    )
    assert losses["cls"].grad.item() == pytest.approx(weights["cls"])


def test_uncertainty_log_variances_reach_their_optimum():
    # For fixed losses, s minimising c e^{-s} L + s/2 satisfies e^{-s} = 1 / (2 c L).
    strategy = build_loss_strategy("uncertainty", ["cls", "reg"], {"regression_tasks": ["reg"]})
    optimizer = torch.optim.SGD(strategy.parameters(), lr=0.2)
    losses = {"cls": torch.tensor(0.8), "reg": torch.tensor(4.0)}
    for _ in range(3000):
        optimizer.zero_grad()
        strategy.combine(losses)[0].backward()
        optimizer.step()
    s = strategy.log_variances.detach()
    assert torch.exp(-s).tolist() == pytest.approx([1 / (2 * 1.0 * 0.8), 1 / (2 * 0.5 * 4.0)], rel=1e-4)


def _linear_losses(rows: torch.Tensor, param: nn.Parameter) -> dict[str, torch.Tensor]:
    """Task t's loss is ``rows[t] @ param``: its gradient is exactly ``rows[t]``."""
    return {f"t{i}": row @ param for i, row in enumerate(rows)}


def _direction(strategy_name: str, rows: torch.Tensor, seed: int = 0, **options) -> torch.Tensor:
    param = nn.Parameter(torch.zeros(rows.shape[1]))
    strategy = build_loss_strategy(strategy_name, [f"t{i}" for i in range(len(rows))], options, seed=seed)
    strategy.backward(_linear_losses(rows, param), [param], [])
    strategy.finish([param])
    return param.grad


def test_pcgrad_on_hand_made_2d_gradients():
    g1, g2 = torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 1.0])
    assert g1 @ g2 < 0  # conflicting
    g1_pc = g1 - (g1 @ g2) / (g2 @ g2) * g2  # project each onto the normal plane of the other
    g2_pc = g2 - (g2 @ g1) / (g1 @ g1) * g1
    assert _direction("pcgrad", torch.stack([g1, g2])).tolist() == pytest.approx((g1_pc + g2_pc).tolist())
    # with no conflict PCGrad is the plain sum
    h1, h2 = torch.tensor([1.0, 0.0]), torch.tensor([1.0, 2.0])
    assert _direction("pcgrad", torch.stack([h1, h2])).tolist() == pytest.approx((h1 + h2).tolist())


def test_pcgrad_order_is_seeded_private_and_resumable():
    rows = torch.tensor([[1.0, 0.2, 0.0], [-0.9, 1.0, 0.1], [-0.5, -1.0, 0.3]])
    results = {tuple(_direction("pcgrad", rows, seed=s).tolist()) for s in range(12)}
    assert len(results) > 1  # the task order is random and matters here
    assert torch.equal(_direction("pcgrad", rows, seed=5), _direction("pcgrad", rows, seed=5))

    global_before = torch.get_rng_state()
    strategy = build_loss_strategy("pcgrad", ["t0", "t1", "t2"], seed=5)
    jacobian = rows.clone()
    strategy.aggregate(jacobian, ["t0", "t1", "t2"])
    assert torch.equal(torch.get_rng_state(), global_before)  # the training RNG is untouched

    state = json.loads(json.dumps(strategy.state()))
    following = [strategy.aggregate(jacobian, ["t0", "t1", "t2"])[0] for _ in range(5)]
    resumed = build_loss_strategy("pcgrad", ["t0", "t1", "t2"], seed=5)
    resumed.load_state(state)
    assert all(torch.equal(a, resumed.aggregate(jacobian, ["t0", "t1", "t2"])[0]) for a in following)


@pytest.mark.parametrize("name", ["equal", "uncertainty", "pcgrad", "upgrad", "mgda"])
def test_gradient_memory_scales_with_the_shared_parameters(name):
    model = ToyMultiTask(TASKS)
    shared = model.shared_parameters()
    strategy = build_loss_strategy(name, TASKS)
    strategy.backward(model.losses(toy_batches(TASKS)), shared, model.other_parameters(), keep_per_task=True)
    result = strategy.finish(shared)
    assert set(result.per_task_gradients) == set(TASKS)
    n_shared = sum(p.numel() for p in shared)
    assert n_shared == shared_size(shared) < sum(p.numel() for p in model.backbone.parameters())
    for grad in result.per_task_gradients.values():
        assert grad.shape == (n_shared,)
    assert all(p.grad is None for p in model.backbone.parameters())  # frozen: never touched
    assert all(p.grad is not None for p in shared + model.other_parameters())


@pytest.mark.parametrize("name", ["pcgrad", "upgrad", "mgda", "imtlg"])
def test_private_parameters_get_only_their_own_task_gradient(name):
    model = ToyMultiTask(TASKS)
    losses = model.losses(toy_batches(TASKS))
    reference = {t: torch.autograd.grad(losses[t], list(model.heads[t].parameters()), retain_graph=True) for t in TASKS}
    expected_shared = task_gradients(losses, model.shared_parameters(), retain_graph=True)
    strategy = build_loss_strategy(name, TASKS)
    strategy.backward(losses, model.shared_parameters(), model.other_parameters())
    result = strategy.finish(model.shared_parameters())
    for t in TASKS:
        for p, g in zip(model.heads[t].parameters(), reference[t]):
            assert torch.allclose(p.grad, g)
        assert torch.allclose(result.per_task_gradients[t], expected_shared[t])
    # and the shared parameters got the aggregation of those per-task gradients
    jacobian = torch.stack([expected_shared[t] for t in TASKS])
    direction, _ = build_loss_strategy(name, TASKS).aggregate(jacobian, TASKS)
    got = torch.cat([p.grad.reshape(-1) for p in model.shared_parameters()])
    assert torch.allclose(got, direction, atol=1e-6)


def test_gradient_accumulation_aggregates_the_summed_task_gradients():
    model = ToyMultiTask(TASKS)
    shared = model.shared_parameters()
    micro = [toy_batches(TASKS, seed=s) for s in (1, 2)]
    summed = None
    for batch in micro:
        grads = task_gradients(model.losses(batch), shared, scale=0.5)
        summed = grads if summed is None else {t: summed[t] + grads[t] for t in TASKS}
    direction, _ = build_loss_strategy("pcgrad", TASKS, seed=9).aggregate(torch.stack([summed[t] for t in TASKS]), TASKS)

    strategy = build_loss_strategy("pcgrad", TASKS, seed=9)
    for batch in micro:
        strategy.backward(model.losses(batch), shared, model.other_parameters(), scale=0.5)
    strategy.finish(shared)
    assert torch.allclose(torch.cat([p.grad.reshape(-1) for p in shared]), direction, atol=1e-6)


def test_combining_strategy_keeps_per_task_gradients_only_when_asked():
    model = ToyMultiTask(TASKS)
    strategy = build_loss_strategy("equal", TASKS)
    losses = model.losses(toy_batches(TASKS))
    expected = task_gradients(losses, model.shared_parameters(), retain_graph=True)
    strategy.backward(losses, model.shared_parameters(), model.other_parameters(), keep_per_task=True)
    result = strategy.finish(model.shared_parameters())
    assert all(torch.allclose(result.per_task_gradients[t], expected[t]) for t in TASKS)
    # the shared gradient is the sum of the task gradients
    got = torch.cat([p.grad.reshape(-1) for p in model.shared_parameters()])
    assert torch.allclose(got, sum(expected.values()), atol=1e-6)
    model.zero_grad()
    strategy.backward(model.losses(toy_batches(TASKS)), model.shared_parameters(), model.other_parameters())
    assert strategy.finish(model.shared_parameters()).per_task_gradients is None


def test_equal_and_sum_agree_on_a_model():
    model = ToyMultiTask(TASKS)
    batches = toy_batches(TASKS)
    sum(model.losses(batches).values()).backward()
    reference = [p.grad.clone() for p in model.parameters() if p.requires_grad]
    model.zero_grad()
    strategy = build_loss_strategy("equal", TASKS)
    strategy.backward(model.losses(batches), model.shared_parameters(), model.other_parameters())
    strategy.finish(model.shared_parameters())
    assert all(torch.allclose(p.grad, r) for p, r in zip([p for p in model.parameters() if p.requires_grad], reference))


def test_weights_cover_every_micro_batch_of_the_step():
    # per-task batches: each micro-batch holds one task; the step's weights name all of them
    model = ToyMultiTask(TASKS)
    strategy = build_loss_strategy("uncertainty", TASKS)
    for task in ("a", "c"):
        strategy.backward(model.losses(toy_batches([task])), model.shared_parameters(), model.other_parameters(), scale=0.5)
    assert set(strategy.finish(model.shared_parameters()).weights) == {"a", "c"}
    gradient = build_loss_strategy("pcgrad", TASKS)
    for task in ("c", "a"):
        gradient.backward(model.losses(toy_batches([task])), model.shared_parameters(), model.other_parameters())
    result = gradient.finish(model.shared_parameters())
    assert list(result.per_task_gradients) == ["a", "c"]  # rows in the run's task order
    assert set(result.weights) == {"a", "c"}


def test_gradient_strategy_without_shared_parameters_is_the_plain_sum():
    model = ToyMultiTask(TASKS)
    batches = toy_batches(TASKS)
    sum(model.losses(batches).values()).backward()
    reference = [p.grad.clone() for p in model.parameters() if p.requires_grad]
    model.zero_grad()
    everything = [p for p in model.parameters() if p.requires_grad]
    strategy = build_loss_strategy("upgrad", TASKS)
    strategy.backward(model.losses(batches), [], everything)
    assert strategy.finish([]).weights == {t: 1.0 for t in TASKS}
    assert all(torch.allclose(p.grad, r) for p, r in zip(everything, reference))


def test_equal_weighs_each_task_by_its_share():
    losses = {"a": torch.tensor(1.5), "b": torch.tensor(0.25)}
    total, weights = build_loss_strategy("equal", TASKS).combine(losses, {"a": 0.75, "b": 0.25})
    assert total.item() == pytest.approx(0.75 * 1.5 + 0.25 * 0.25)
    assert weights == {"a": 1.0, "b": 1.0}


def test_uncertainty_over_micro_batches_is_the_objective_of_the_step():
    """Two micro-batches carrying parts of L_t give the gradient of sum_t pi_t (c e^{-s} L_t + s/2),
    the regulariser counted once, also for a task absent from both micro-batches of this process."""
    shares = {"a": 0.5, "b": 0.25, "c": 0.25}
    strategy = build_loss_strategy("uncertainty", TASKS)
    with torch.no_grad():
        strategy.log_variances.copy_(torch.tensor([0.3, -0.2, 0.1]))
    parts = [{"a": torch.tensor(0.5, requires_grad=True), "b": torch.tensor(1.0, requires_grad=True)},
             {"a": torch.tensor(0.25, requires_grad=True)}]  # fmt: skip
    for micro in parts:
        strategy.backward(micro, [], [], shares=shares)
    result = strategy.finish([])
    s = strategy.log_variances.detach()
    task_losses = {"a": 0.75, "b": 1.0, "c": 0.0}
    expected = [shares[t] * (-math.exp(-float(s[i])) * task_losses[t] + 0.5) for i, t in enumerate(TASKS)]
    assert strategy.log_variances.grad.tolist() == pytest.approx(expected)
    assert parts[0]["a"].grad.item() == pytest.approx(shares["a"] * math.exp(-float(s[0])))
    assert set(result.weights) == {"a", "b"}
    # the same objective in one call
    strategy.log_variances.grad = None
    total, _ = strategy.combine({t: torch.tensor(v) for t, v in task_losses.items()}, shares)
    total.backward()
    assert strategy.log_variances.grad.tolist() == pytest.approx(expected)


def test_gradient_strategies_aggregate_the_task_losses_without_shares():
    rows = torch.tensor([[1.0, 0.0], [-1.0, 1.0]])
    param = nn.Parameter(torch.zeros(2))
    strategy = build_loss_strategy("pcgrad", ["t0", "t1"], seed=0)
    strategy.backward(_linear_losses(rows, param), [param], [], shares={"t0": 0.9, "t1": 0.1})
    strategy.finish([param])
    assert torch.allclose(param.grad, _direction("pcgrad", rows))
