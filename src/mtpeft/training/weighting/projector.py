"""A dual-cone projector for torchjd's UPGrad and DualProj that needs only scipy.

torchjd's default projector calls the ``quadprog`` QP solver through ``qpsolvers`` (the
``torchjd[quadprog_projector]`` extra), which this project does not install. The QP is small
(one variable per task) and has only lower bounds, so it has an exact non-negative least-squares
form that scipy solves with Lawson-Hanson's active-set method:

    min_v v^T G v  subject to  v >= u
    with G = L L^T (Cholesky) and v = u + x, x >= 0:
    min_x || L^T x - (-L^T u) ||^2  subject to  x >= 0      (scipy.optimize.nnls)

Like torchjd's projector, G is first normalised by its trace and regularised by ``reg_eps * I``.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.linalg import cholesky
from scipy.optimize import nnls
from torch import Tensor
from torchjd.linalg import DualConeProjector


class ScipyDualConeProjector(DualConeProjector):
    """Projection weights ``W`` (same shape as ``U``, ``[..., m]``) for the Gramian ``G`` (``[m, m]``)."""

    def __init__(self, *, norm_eps: float = 1e-4, reg_eps: float = 1e-4) -> None:
        if norm_eps < 0 or reg_eps < 0:
            raise ValueError(f"norm_eps and reg_eps must be >= 0, got {norm_eps}, {reg_eps}")
        self.norm_eps = norm_eps
        self.reg_eps = reg_eps

    def __call__(self, U: Tensor, G: Tensor) -> Tensor:
        gramian = G.detach().cpu().double().numpy()
        m = gramian.shape[0]
        trace = float(np.trace(gramian))
        gramian = np.zeros_like(gramian) if trace < self.norm_eps else gramian / trace
        gramian = gramian + self.reg_eps * np.eye(m)
        lower_t = cholesky(gramian, lower=True).T  # L^T, (m, m)
        us = U.detach().cpu().double().numpy()
        flat = us.reshape(-1, m)
        out = np.empty_like(flat)
        for row, u in enumerate(flat):
            x, _ = nnls(lower_t, -lower_t @ u)
            out[row] = u + x
        return torch.as_tensor(out.reshape(us.shape), device=G.device, dtype=G.dtype)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(norm_eps={self.norm_eps}, reg_eps={self.reg_eps})"
