"""One self-contained HTML page: inline CSS, images as base64 ``data:`` URIs, no script, no link."""

from __future__ import annotations

import base64
import html
import re

from mtpeft.evaluation.report.document import Image, Report, Section, Table, Text

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1400px;
       padding: 0 1em; color: #222; line-height: 1.4; }
h1 { border-bottom: 2px solid #444; }
h2 { border-bottom: 1px solid #bbb; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
td.num { white-space: nowrap; }
div.wide { overflow-x: auto; }
th { background: #f0f0f0; }
tr:nth-child(even) td { background: #fafafa; }
caption { caption-side: top; text-align: left; font-weight: 600; padding-bottom: 0.3em; }
figure { display: inline-block; margin: 0.5em 1em 0.5em 0; vertical-align: top; }
figcaption { font-size: 0.85em; color: #555; }
img { max-width: 100%; }
nav ul { columns: 2; }
p.note { color: #555; font-style: italic; }
"""


def _anchor(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "section"


def _cell(text: str) -> str:
    """Numbers, intervals and ``n/a`` do not wrap; labels do."""
    numeric = bool(re.fullmatch(r"[-+<\[\]\d.,±% ()a-z/]*", text)) and bool(re.search(r"\d|n/a", text))
    return f'<td class="num">{html.escape(text)}</td>' if numeric else f"<td>{html.escape(text)}</td>"


def _table(table: Table) -> str:
    parts = ['<div class="wide"><table>']
    if table.caption:
        parts.append(f"<caption>{html.escape(table.caption)}</caption>")
    parts.append("<thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in table.headers) + "</tr></thead>")
    parts.append("<tbody>")
    for row in table.rows:
        parts.append("<tr>" + "".join(_cell(str(c)) for c in row) + "</tr>")
    parts.append("</tbody></table></div>")
    return "\n".join(parts)


def _image(image: Image) -> str:
    data = base64.b64encode(image.path.read_bytes()).decode("ascii")
    caption = f"<figcaption>{html.escape(image.caption)}</figcaption>" if image.caption else ""
    return f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(image.alt, quote=True)}">{caption}</figure>'


def _section(section: Section, level: int) -> str:
    heading = min(level, 6)
    parts = [f'<section id="{_anchor(section.title)}"><h{heading}>{html.escape(section.title)}</h{heading}>']
    for block in section.blocks:
        if isinstance(block, Section):
            parts.append(_section(block, level + 1))
        elif isinstance(block, Table):
            parts.append(_table(block))
        elif isinstance(block, Image):
            parts.append(_image(block))
        elif isinstance(block, Text):
            parts.append(f'<p class="note">{html.escape(block.text)}</p>')
    parts.append("</section>")
    return "\n".join(parts)


def render_html(report: Report) -> str:
    """The whole page as a string (UTF-8); it references no file and no network resource."""
    toc = "".join(f'<li><a href="#{_anchor(s.title)}">{html.escape(s.title)}</a></li>' for s in report.sections)
    body = "\n".join(_section(s, 2) for s in report.sections)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{html.escape(report.title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f"<h1>{html.escape(report.title)}</h1>\n<nav><ul>{toc}</ul></nav>\n{body}\n</body>\n</html>\n"
    )
