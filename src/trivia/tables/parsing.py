"""The one way this package reads HTML: lxml's HTML parser, made total.

Every reader of HTML here (`html_to_table`, `normalize_html`, `to_html`) goes through
`find_table`, so that they all see the same tree for the same text, the tree lxml gives the
PubTabNet TEDS implementation (comments dropped, UTF-8).
"""

from __future__ import annotations

import re

import lxml.html
from lxml import etree

# NUL (which libxml2 turns into U+FFFD) and lone surrogates (which UTF-8 cannot carry) have no
# place in HTML text; everything else survives a round trip through lxml.
_UNPARSABLE = re.compile("[\x00\ud800-\udfff]")
_LEADING_INTEGER = re.compile(r"[\t\n\f\r ]*\+?([0-9]+)")

#: HTML's own limits: browsers clamp ``colspan`` to 1000 and ``rowspan`` to 65534.
MAX_COLSPAN = 1000
MAX_ROWSPAN = 65534


def strip_unparsable(text: str) -> str:
    """Drop the characters that no HTML parser keeps as written (NUL, lone surrogates)."""
    return _UNPARSABLE.sub("", text)


def find_table(text: str) -> lxml.html.HtmlElement | None:
    """The first ``<table>`` element lxml finds in `text`, or None; never raises."""
    cleaned = strip_unparsable(text)
    if not cleaned.strip():
        return None
    # A fresh parser per call: lxml parsers must not be shared between threads.
    parser = lxml.html.HTMLParser(remove_comments=True, remove_pis=True, encoding="utf-8")
    try:
        root = lxml.html.document_fromstring(cleaned.encode("utf-8"), parser=parser)
    except (etree.ParserError, ValueError):
        return None
    return next(root.iter("table"), None)


def _leading_integer(value: str | None) -> int | None:
    """HTML's rules for parsing a non-negative integer: ``"2.0"`` is 2, ``"abc"`` is None."""
    if value is None:
        return None
    match = _LEADING_INTEGER.match(value)
    if match is None:
        return None
    digits = match.group(1).lstrip("0") or "0"
    return 10**9 if len(digits) > 9 else int(digits)


def parse_colspan(value: str | None) -> int:
    """A ``colspan`` attribute as browsers read it: 1 when absent, invalid or 0; at most 1000."""
    n = _leading_integer(value)
    return 1 if not n else min(n, MAX_COLSPAN)


def parse_rowspan(value: str | None) -> int:
    """A ``rowspan`` as browsers read it: 1 when absent or invalid, at most 65534.

    0 is kept: it means "to the end of the row group", which only the caller can resolve.
    """
    n = _leading_integer(value)
    return 1 if n is None else min(n, MAX_ROWSPAN)
