"""Tables that stress the readers: inputs shared by the table, QA and reward tests."""

from __future__ import annotations


def span_bomb(rows: int = 40, cells: int = 30) -> str:
    """About 47 KB of HTML whose rowspans and colspans expand to tens of millions of slots."""
    cell = '<td rowspan="40" colspan="1000">x</td>'
    return "<table>" + "".join("<tr>" + cell * cells + "</tr>" for _ in range(rows)) + "</table>"
