"""The report as plain data (sections of text, tables and images), rendered to HTML and Markdown."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Text:
    text: str


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]
    caption: str | None = None


@dataclass
class Image:
    path: Path  # a PNG written beside the Markdown twin; the HTML embeds its bytes
    alt: str
    caption: str | None = None


Block = Text | Table | Image


@dataclass
class Section:
    title: str
    blocks: list[Block | Section] = field(default_factory=list)

    def add(self, block: Block | Section) -> Section:
        self.blocks.append(block)
        return self


@dataclass
class Report:
    title: str
    sections: list[Section] = field(default_factory=list)

    def tables(self) -> list[Table]:
        return [b for b in _walk(self.sections) if isinstance(b, Table)]

    def images(self) -> list[Image]:
        return [b for b in _walk(self.sections) if isinstance(b, Image)]


def _walk(blocks):
    for block in blocks:
        if isinstance(block, Section):
            yield from _walk(block.blocks)
        else:
            yield block
