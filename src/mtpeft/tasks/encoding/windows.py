"""Overlapping windows over a long token sequence, and merging predictions back.

A document of ``n`` tokens is cut into windows of at most ``max_length`` tokens; consecutive
windows share ``stride`` tokens (the Hugging Face meaning of ``stride``: the overlap). Every token
is *owned* by exactly one window: inside an overlap the boundary is the middle, so each token is
predicted by the window that gives it the most context on both sides. Training labels outside
the owned range are ``IGNORE_INDEX`` (context only), and merging takes each token's prediction
from its owner, so the merged prediction equals an unsplit one wherever the model sees enough
context.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from mtpeft.errors import ConfigError

T = TypeVar("T")


@dataclass(frozen=True)
class Window:
    """Document tokens ``[start, end)`` of one window; it owns ``[owned_start, owned_end)``."""

    index: int
    start: int
    end: int
    owned_start: int
    owned_end: int

    @property
    def local_owned(self) -> tuple[int, int]:
        """The owned tokens as an inclusive range of window positions (``Features.owned``)."""
        return self.owned_start - self.start, self.owned_end - 1 - self.start

    def owns(self, token: int) -> bool:
        """Whether document token ``token`` is owned by this window."""
        return self.owned_start <= token < self.owned_end

    def contains(self, first: int, last: int) -> bool:
        """Whether document tokens ``first..last`` (inclusive) all lie in this window."""
        return self.start <= first and last < self.end


def check_window_options(max_length: int, stride: int) -> None:
    """Raise :class:`ConfigError` unless ``max_length >= 1`` and ``0 <= stride < max_length``."""
    if max_length < 1:
        raise ConfigError(f"max_length must be >= 1, got {max_length}")
    if not 0 <= stride < max_length:
        raise ConfigError(f"stride (overlap of windows) must be in [0, max_length={max_length}), got {stride}")


def plan_windows(n_tokens: int, max_length: int, stride: int) -> list[Window]:
    """Windows covering ``n_tokens`` tokens (none for an empty document).

    Windows start every ``max_length - stride`` tokens; the last one ends at ``n_tokens``.
    """
    check_window_options(max_length, stride)
    step = max_length - stride
    spans: list[tuple[int, int]] = []
    start = 0
    while start < n_tokens:
        end = min(start + max_length, n_tokens)
        spans.append((start, end))
        if end == n_tokens:
            break
        start += step
    windows = []
    for k, (start, end) in enumerate(spans):
        owned_start = 0 if k == 0 else (start + spans[k - 1][1]) // 2
        owned_end = n_tokens if k == len(spans) - 1 else (spans[k + 1][0] + end) // 2
        windows.append(Window(k, start, end, owned_start, owned_end))
    return windows


def owner(windows: Sequence[Window], token: int) -> Window:
    """The window that owns document token ``token``."""
    for window in windows:
        if window.owns(token):
            return window
    raise IndexError(f"token {token} is in no window (document of {windows[-1].owned_end if windows else 0} tokens)")


def merge_owned(owned: Sequence[tuple[int, int]], per_window: Sequence[Sequence[T]]) -> list[T]:
    """One value per document token: the owned slice of each window, windows in order.

    ``owned[k]`` is window k's ``Features.owned`` (inclusive window positions) and
    ``per_window[k]`` one value per token of window k. Owned ranges partition the document, so
    the result has one value per document token, each from the window that owns it.
    """
    if len(per_window) != len(owned):
        raise ValueError(f"{len(per_window)} window predictions for {len(owned)} windows")
    merged: list[T] = []
    for k, ((first, last), values) in enumerate(zip(owned, per_window)):
        if not 0 <= first <= last < len(values):
            raise ValueError(f"window {k}: owned range ({first}, {last}) outside its {len(values)} values")
        merged.extend(values[first : last + 1])
    return merged
