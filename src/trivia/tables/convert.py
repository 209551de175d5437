"""Conversions between formats, all through the logical `Table`."""

from __future__ import annotations

import lxml.html

from trivia.tables.html import html_to_table, table_to_html
from trivia.tables.otsl import otsl_to_table, table_to_otsl
from trivia.tables.parsing import find_table
from trivia.tables.validity import detect_format


def otsl_to_html(otsl: str) -> str:
    """OTSL to ``<table>…</table>`` with rowspan/colspan and escaped text; never raises.

    Malformed or truncated OTSL is repaired by the rules in `trivia.tables.otsl`.
    """
    return table_to_html(otsl_to_table(otsl))


def html_to_otsl(html: str) -> str:
    """The first table in `html` as OTSL; ``""`` when there is no table."""
    table = html_to_table(html)
    return "" if table is None else table_to_otsl(table)


def to_html(text: str) -> str:
    """A model completion in either format as an HTML ``<table>…</table>``; never raises.

    OTSL is converted. HTML keeps its own markup (``<b>``, ``<sup>``, row groups: TEDS counts
    them) and is only cut down to its first table as lxml reads it, which closes what truncation
    left open; with no table in it the result is an empty ``<table></table>``.
    """
    if detect_format(text) == "otsl":
        return otsl_to_html(text)
    table = find_table(text)
    if table is None:
        return "<table></table>"
    return lxml.html.tostring(table, encoding="unicode", with_tail=False)
