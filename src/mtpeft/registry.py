"""Small name -> object registries, filled by a decorator next to the class.

Every extension point of mtpeft (tasks, heads, fusion rules, loss weightings, samplers,
metrics) is a :class:`Registry`. Looking up an unknown name raises a :class:`KeyError`
subclass whose message lists the valid choices, so a typo in a config is one clear line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from mtpeft.errors import MtpeftError

T = TypeVar("T")


class UnknownNameError(KeyError, MtpeftError):
    """An unknown name was looked up in a registry; the message lists the valid names."""

    def __str__(self) -> str:  # KeyError quotes its argument; we want the plain sentence
        return str(self.args[0])


class Registry(Generic[T]):
    """A named collection of classes or factories.

    >>> FUSIONS = Registry("fusion")
    >>> @FUSIONS.register("gated")
    ... class Gated: ...
    >>> FUSIONS.get("gated") is Gated
    True
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[name] = obj
            return obj

        return decorator

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}; valid choices: {', '.join(sorted(self._items)) or '(none)'}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))

    def __len__(self) -> int:
        return len(self._items)
