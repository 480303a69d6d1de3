"""The report's tables: headers and rows of strings, rendered as Markdown (escaped) and as HTML."""

from __future__ import annotations

import html
from dataclasses import dataclass

from qfx.safety import md_text

__all__ = ["Table"]


@dataclass(frozen=True)
class Table:
    """Headers and rows of strings; rendered as Markdown and as HTML."""

    headers: list[str]
    rows: list[list[str]]
    align_right: int = 1  # columns from this index on are numbers

    def markdown(self) -> str:
        rule = ["---" if i < self.align_right else "---:" for i in range(len(self.headers))]
        lines = [[md_text(c) for c in self.headers], rule, *([md_text(c) for c in row] for row in self.rows)]
        return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)

    def html(self) -> str:
        def cell(tag: str, i: int, text: str) -> str:
            cls = ' class="num"' if i >= self.align_right else ""
            text = html.escape(text).replace("**", "")
            return f"<{tag}{cls}>{text}</{tag}>"

        head = "".join(cell("th", i, h) for i, h in enumerate(self.headers))
        body = "".join("<tr>" + "".join(cell("td", i, c) for i, c in enumerate(r)) + "</tr>" for r in self.rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
