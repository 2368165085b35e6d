"""The NaN/inf guard: skip, count, stop after too many in a row."""

from __future__ import annotations

import math

import pytest
import torch

from mtpeft.errors import MtpeftError
from mtpeft.training.nonfinite import NonFiniteGuard, NonFiniteLossError


def test_skips_counts_and_resets():
    guard = NonFiniteGuard(max_in_row=3)
    assert guard.check({"a": torch.tensor(1.0), "b": 2.0}, step=1)
    assert not guard.check({"a": torch.tensor(float("nan")), "b": torch.tensor(1.0)}, step=2)
    assert guard.skipped == 1 and guard.in_row == 1 and math.isnan(guard.last_bad["a"]) and "b" not in guard.last_bad
    assert not guard.check_value("grad_norm", torch.tensor(float("inf")), step=3)
    assert guard.in_row == 2
    assert guard.check({"a": torch.tensor(0.5)}, step=4)  # a finite step resets the run, not the total
    assert guard.in_row == 0 and guard.skipped == 2


def test_raises_a_clear_error_after_max_in_row():
    guard = NonFiniteGuard(max_in_row=2)
    assert not guard.check({"a": torch.tensor(float("inf"))}, step=7)
    with pytest.raises(NonFiniteLossError, match=r"step 8: non-finite a=nan; 2 steps in a row.*max_nonfinite_in_row=2") as info:
        guard.check({"a": torch.tensor(float("nan"))}, step=8)
    assert isinstance(info.value, MtpeftError)


def test_state_round_trip():
    guard = NonFiniteGuard(max_in_row=3)
    guard.check({"a": float("nan")}, step=1)
    other = NonFiniteGuard(max_in_row=3)
    other.load_state_dict(guard.state_dict())
    assert not other.check({"a": float("nan")}, step=2)
    with pytest.raises(NonFiniteLossError):
        other.check({"a": float("nan")}, step=3)  # the run of bad steps survived the resume
