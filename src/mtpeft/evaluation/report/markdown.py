"""The Markdown twin of the report; images are the PNG files beside it, linked relatively."""

from __future__ import annotations

import os
from pathlib import Path

from mtpeft.evaluation.report.document import Image, Report, Section, Table, Text
from mtpeft.evaluation.results import markdown_table


def _section(section: Section, level: int, base: Path) -> list[str]:
    lines = [f"{'#' * min(level, 6)} {section.title}", ""]
    for block in section.blocks:
        if isinstance(block, Section):
            lines += _section(block, level + 1, base)
        elif isinstance(block, Table):
            if block.caption:
                lines += [f"**{block.caption}**", ""]
            lines += [markdown_table(block.headers, block.rows), ""]
        elif isinstance(block, Image):
            target = Path(os.path.relpath(block.path, base)).as_posix()
            alt = block.alt.replace("[", "\\[").replace("]", "\\]")
            lines += [f"![{alt}]({target})", ""]
            if block.caption:
                lines += [f"*{block.caption}*", ""]
        elif isinstance(block, Text):
            lines += [block.text, ""]
    return lines


def render_markdown(report: Report, base: Path) -> str:
    """The report as Markdown; image links are relative to ``base`` (the folder of the .md file)."""
    lines = [f"# {report.title}", ""]
    for section in report.sections:
        lines += _section(section, 2, base)
    return "\n".join(lines).rstrip() + "\n"
