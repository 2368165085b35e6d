"""Errors that carry the location of bad input, so users can fix their files."""

from __future__ import annotations

from dataclasses import dataclass


class MtpeftError(Exception):
    """Base class of mtpeft's own errors: the CLI prints these as one line, without a traceback."""


class ConfigError(MtpeftError):
    """A configuration value is invalid; the message names the field and the valid choices."""


@dataclass
class Location:
    """Where in an input a problem is: a file and, when known, a line or an element id."""

    file: str
    line: int | None = None
    element: str | None = None

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
        if self.element is not None:
            where += f" ({self.element})"
        return where


class FormatError(MtpeftError):
    """An input file does not follow its format.

    The message reads ``FILE[:LINE] [(ELEMENT)]: PROBLEM; expected WHAT``.
    """

    def __init__(self, location: Location, problem: str, expected: str | None = None) -> None:
        self.location = location
        self.problem = problem
        self.expected = expected
        message = f"{location}: {problem}"
        if expected:
            message += f"; expected {expected}"
        super().__init__(message)
