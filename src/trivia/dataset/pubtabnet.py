"""PubTabNet annotations as HTML: the ground truth the demo and the data engine start from."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any


def _cell_html(tokens: list[str]) -> str:
    # Single-character tokens are text and must be escaped ("<", "&"); longer ones are markup
    # such as "<b>" that PubTabNet keeps inside cells.
    return "".join(escape(token, quote=False) if len(token) == 1 else token for token in tokens)


def pubtabnet_html(annotation: Mapping[str, Any]) -> str:
    """Build the full HTML table of one PubTabNet ``html`` annotation.

    ``annotation`` is the record's ``html`` object: ``structure.tokens`` hold the table's tags
    without cell text, ``cells[i].tokens`` the text of the i-th cell in reading order. Each cell's
    text goes before the matching ``</td>``, and the result is wrapped the way PubTabNet's own
    ground truth is (``<html><body><table>…</table></body></html>``).
    """
    structure: list[str] = annotation["structure"]["tokens"]
    cells: list[Mapping[str, Any]] = annotation["cells"]
    closing_tags = structure.count("</td>")
    if closing_tags != len(cells):
        raise ValueError(
            f"structure has {closing_tags} cells but {len(cells)} cell texts are given"
        )
    texts = iter(cells)
    parts: list[str] = []
    for token in structure:
        if token == "</td>":
            parts.append(_cell_html(next(texts)["tokens"]))
        parts.append(token)
    return "<html><body><table>" + "".join(parts) + "</table></body></html>"
