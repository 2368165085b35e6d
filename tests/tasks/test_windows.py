"""Overlapping windows: coverage, ownership, merge equals unsplit."""

from __future__ import annotations

import pytest

from mtpeft.errors import ConfigError
from mtpeft.tasks.encoding.windows import merge_owned, owner, plan_windows

CASES = [(0, 8, 2), (1, 8, 2), (8, 8, 2), (9, 8, 2), (100, 8, 0), (100, 8, 7), (1000, 64, 16), (37, 10, 5)]


@pytest.mark.parametrize(("n", "max_length", "stride"), CASES)
def test_windows_cover_and_ownership_partitions(n: int, max_length: int, stride: int) -> None:
    windows = plan_windows(n, max_length, stride)
    assert (len(windows) == 0) == (n == 0)
    if not n:
        return
    assert windows[0].start == 0 and windows[-1].end == n
    assert all(w.end - w.start <= max_length for w in windows)
    for a, b in zip(windows, windows[1:]):
        assert a.end - b.start == stride  # consecutive windows share `stride` tokens
    owned = [t for w in windows for t in range(w.owned_start, w.owned_end)]
    assert owned == list(range(n))  # every token owned once, in order
    for w in windows:
        assert w.start <= w.owned_start < w.owned_end <= w.end
        first, last = w.local_owned
        assert 0 <= first <= last < w.end - w.start
    assert all(owner(windows, t).owns(t) for t in range(n))


@pytest.mark.parametrize(("n", "max_length", "stride"), CASES)
def test_merge_of_owned_parts_equals_unsplit(n: int, max_length: int, stride: int) -> None:
    values = [f"v{t}" for t in range(n)]
    windows = plan_windows(n, max_length, stride)
    per_window = [values[w.start : w.end] for w in windows]
    assert merge_owned([w.local_owned for w in windows], per_window) == values


def test_owned_is_the_middle_of_the_overlap() -> None:
    first, second = plan_windows(12, 8, 4)
    assert (second.start, first.end) == (4, 8)
    assert first.owned_end == second.owned_start == 6


def test_merge_rejects_mismatched_inputs() -> None:
    windows = plan_windows(10, 6, 2)
    with pytest.raises(ValueError, match="window predictions"):
        merge_owned([w.local_owned for w in windows], [[0] * 6])
    with pytest.raises(ValueError, match="outside"):
        merge_owned([(0, 7)], [[0] * 6])


@pytest.mark.parametrize(("max_length", "stride"), [(0, 0), (8, 8), (8, -1)])
def test_bad_window_options(max_length: int, stride: int) -> None:
    with pytest.raises(ConfigError):
        plan_windows(10, max_length, stride)
