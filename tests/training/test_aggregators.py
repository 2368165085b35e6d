"""torchjd aggregators wrapped as loss strategies, and the scipy dual-cone projector."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from mtpeft.errors import ConfigError
from mtpeft.training.weighting import LOSS_STRATEGIES, build_loss_strategy
from mtpeft.training.weighting.projector import ScipyDualConeProjector

CAGRAD_AVAILABLE = importlib.util.find_spec("cvxpy") is not None and importlib.util.find_spec("clarabel") is not None
GRADIENT_STRATEGIES = [n for n in LOSS_STRATEGIES.names() if LOSS_STRATEGIES.get(n).needs_per_task_gradients]
RUNNABLE = [n for n in GRADIENT_STRATEGIES if n != "cagrad" or CAGRAD_AVAILABLE]


def aggregate(name: str, jacobian: torch.Tensor, **options) -> tuple[torch.Tensor, dict[str, float]]:
    tasks = [f"t{i}" for i in range(len(jacobian))]
    return build_loss_strategy(name, tasks, options, seed=0).aggregate(jacobian, tasks)


def test_upgrad_documented_example():
    # The example of torchjd.aggregation's documentation (UPGrad on a 2 x 3 Jacobian).
    direction, weights = aggregate("upgrad", torch.tensor([[-4.0, 1.0, 1.0], [6.0, 1.0, 1.0]]))
    assert direction.tolist() == pytest.approx([0.2929, 1.9004, 1.9004], abs=1e-4)
    assert list(weights.values()) == pytest.approx([1.1109, 0.7894], abs=1e-4)


@pytest.mark.parametrize("name", ["upgrad", "mgda", "dualproj"])
def test_orthogonal_gradients_give_their_mean(name):
    # Nothing conflicts: UPGrad and DualProj reduce to the mean; MGDA's minimum-norm point of the
    # hull of two orthogonal equal-norm vectors is also their mean.
    jacobian = 2.0 * torch.eye(3)[:2]
    direction, _ = aggregate(name, jacobian)
    assert direction.tolist() == pytest.approx(jacobian.mean(0).tolist(), abs=1e-3)


@pytest.mark.parametrize("name", ["upgrad", "mgda", "dualproj"])
def test_identical_gradients_give_that_gradient(name):
    g = torch.tensor([0.5, -1.0, 2.0])
    direction, _ = aggregate(name, torch.stack([g, g, g]))
    assert direction.tolist() == pytest.approx(g.tolist(), abs=1e-3)


def test_pcgrad_sums_identical_and_orthogonal_gradients():
    g = torch.tensor([0.5, -1.0, 2.0])
    assert aggregate("pcgrad", torch.stack([g, g]))[0].tolist() == pytest.approx((2 * g).tolist())
    e = torch.eye(3)[:2]
    assert aggregate("pcgrad", e)[0].tolist() == pytest.approx(e.sum(0).tolist())


def test_upgrad_never_conflicts_with_a_task():
    generator = torch.Generator().manual_seed(0)
    for _ in range(10):
        jacobian = torch.randn(4, 12, generator=generator)
        direction, _ = aggregate("upgrad", jacobian)
        assert (jacobian @ direction >= -1e-4).all()


def test_projector_solves_its_quadratic_program():
    # KKT conditions of  min_v v^T G v  s.t. v >= u:  G v >= 0,  v >= u,  (G v)_i (v_i - u_i) = 0.
    generator = torch.Generator().manual_seed(1)
    jacobian = torch.randn(4, 6, generator=generator, dtype=torch.float64)
    gramian = jacobian @ jacobian.T
    projector = ScipyDualConeProjector(norm_eps=0.0, reg_eps=0.0)
    u = torch.randn(3, 4, generator=generator, dtype=torch.float64)
    v = projector(u, gramian)
    normalised = gramian / gramian.trace()
    for row_u, row_v in zip(u, v):
        grad = normalised @ row_v
        assert (row_v >= row_u - 1e-9).all()
        assert (grad >= -1e-9).all()
        assert torch.allclose(grad * (row_v - row_u), torch.zeros(4, dtype=torch.float64), atol=1e-9)


@pytest.mark.parametrize("name", RUNNABLE)
def test_every_aggregator_runs_and_is_deterministic(name):
    jacobian = torch.randn(3, 8, generator=torch.Generator().manual_seed(2))
    first, weights = aggregate(name, jacobian)
    again, _ = aggregate(name, jacobian)
    assert first.shape == (8,) and torch.isfinite(first).all()
    assert torch.equal(first, again)
    assert set(weights) in ({"t0", "t1", "t2"}, set())


@pytest.mark.skipif(CAGRAD_AVAILABLE, reason="cvxpy is installed: CAGrad runs")
def test_cagrad_without_its_solver_is_a_clear_config_error():
    with pytest.raises(ConfigError, match="cvxpy"):
        build_loss_strategy("cagrad", ["a", "b"])


def test_options_reach_the_aggregator():
    jacobian = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    direction, weights = aggregate("upgrad", jacobian, pref_vector=[0.75, 0.25])
    assert list(weights.values()) == pytest.approx([0.75, 0.25], abs=1e-3)
    with pytest.raises(ConfigError, match="bogus"):
        build_loss_strategy("fairgrad", ["a", "b"], {"alpha": 1.0, "bogus": 1})
