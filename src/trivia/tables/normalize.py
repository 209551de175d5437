"""Benchmark normalisation of an HTML table, for scores comparable with OmniDocBench's.

This is a separate, named step: nothing in the package applies it implicitly, so raw PubTabNet
TEDS and normalised benchmark TEDS can both be computed from the same output.
"""

from __future__ import annotations

import re
import unicodedata

import lxml.html
from lxml import etree

from trivia.tables.parsing import find_table, parse_colspan, parse_rowspan

# Tags removed with their text kept. OmniDocBench removes sup/sub/span/div/p; the inline styles
# b/i/strong/em/u are ours (OmniDocBench keeps them, and TEDS then counts them as cell content).
_INLINE_TAGS = ("b", "i", "strong", "em", "u", "sup", "sub", "span", "div", "p")
_ROW_GROUPS = ("thead", "tbody", "tfoot")
_STRUCTURAL = frozenset(("table", "tr"))
_WHITESPACE = re.compile(r"\s+")
# Control characters XML cannot hold (lxml refuses them in a tree): no table text needs them.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _normal_text(text: str | None) -> str | None:
    if text is None:
        return None
    text = _WHITESPACE.sub(" ", unicodedata.normalize("NFKC", text.replace("\n", "")))
    return _CONTROL.sub("", text)


def _replace_with_text(element: lxml.html.HtmlElement, text: str) -> None:
    """Put `text` (and the element's tail) where `element` was, then remove it."""
    parent = element.getparent()
    previous = element.getprevious()
    text += element.tail or ""
    if previous is not None:
        previous.tail = (previous.tail or "") + text
    else:
        parent.text = (parent.text or "") + text
    parent.remove(element)


def _normal_spans(cell: lxml.html.HtmlElement) -> dict[str, str]:
    spans = {}
    rowspan = parse_rowspan(cell.get("rowspan"))
    if rowspan != 1:
        spans["rowspan"] = str(rowspan)
    colspan = parse_colspan(cell.get("colspan"))
    if colspan != 1:
        spans["colspan"] = str(colspan)
    return spans


def _normalize_once(html: str) -> str:
    """One pass of `normalize_html` over the tree lxml reads from `html`."""
    table = find_table(html)
    if table is None:
        return ""
    table.tail = None
    # Text is normalised before tags are removed (lxml refuses control characters in merged
    # text) and again after, since removing a tag can join two runs of whitespace.
    for element in table.iter():
        element.text = _normal_text(element.text)
        element.tail = _normal_text(element.tail)
    for math in list(table.iter("math")):
        alttext = _normal_text(math.get("alttext"))
        if alttext:
            _replace_with_text(math, f"${alttext}$")
    for colgroup in list(table.iter("colgroup")):
        _replace_with_text(colgroup, "")
    etree.strip_tags(table, "math", *_INLINE_TAGS, *_ROW_GROUPS)
    for element in table.iter():
        if element.tag == "th":
            element.tag = "td"
        spans = _normal_spans(element) if element.tag == "td" else {}
        element.attrib.clear()
        element.attrib.update(spans)
        element.text = _normal_text(element.text)
        element.tail = _normal_text(element.tail)
        if element.tag in _STRUCTURAL and element.text is not None and not element.text.strip():
            element.text = None
        parent = element.getparent()
        in_structure = parent is not None and parent.tag in _STRUCTURAL
        if in_structure and element.tail is not None and not element.tail.strip():
            element.tail = None
    document = lxml.html.Element("html")
    body = etree.SubElement(document, "body")
    body.append(table)
    return lxml.html.tostring(document, encoding="unicode")


def normalize_html(html: str) -> str:
    """Normalise the first table in `html` as OmniDocBench does before TEDS; ``""`` if none.

    Returns ``<html><body><table>…</table></body></html>`` (the document shape the TEDS scorer
    looks up), and is idempotent. Follows OmniDocBench's ``normalized_html_table`` in
    ``utils/data_preprocess.py`` (the preprocessing its ``metrics/table_metric.py`` TEDS is fed):

    * ``<th>`` becomes ``<td>``; ``<thead>`` and ``<tbody>`` are unwrapped (``<tfoot>`` too);
    * ``<math alttext="x">`` becomes the text ``$x$``; ``<colgroup>`` is removed;
    * ``<sup>``, ``<sub>``, ``<span>``, ``<div>``, ``<p>`` are removed keeping their text, and so
      (beyond OmniDocBench) are ``<b>``, ``<i>``, ``<strong>``, ``<em>``, ``<u>``;
    * entities are decoded, newlines deleted, text NFKC-normalised, whitespace runs collapsed to
      one space (and control characters that XML cannot hold deleted);
    * presentational attributes go (OmniDocBench removes style/height/width/align/class; here
      every attribute but ``rowspan``/``colspan`` goes, and those are rewritten as browsers read
      them: ``"2.0"`` is ``"2"``, an invalid or unit span is dropped).

    Left out: OmniDocBench works on the string with regular expressions, so it keeps everything
    from the first ``<table`` to the last ``</table>`` and unescapes before parsing (``&lt;b&gt;``
    becomes a tag); here lxml parses first, the first table is kept (the one TEDS scores) and
    text stays text. Its ``border="1"`` on the table is not added (TEDS ignores attributes other
    than spans). Whitespace-only text between rows and cells is removed (TEDS ignores it too).
    """
    once = _normalize_once(html)
    # Removing tags can leave a tree lxml would not build from its own text (a row inside a row,
    # once a stray <thead> between them is gone); reading the result again settles it.
    for _ in range(3):
        again = _normalize_once(once)
        if again == once:
            break
        once = again
    return once
