"""Make a model's table HTML safe to show in a browser: an allow-list, not a block-list (pure).

A completion is untrusted text: the policy can write `<script>`, event handlers, `javascript:`
links, SVG or remote images, and nothing stops it. The HTML is read with lxml (which repairs
broken markup the way the table readers do), then only table structure and inline text
formatting survive: every attribute but a numeric `rowspan`/`colspan` is dropped, elements
that carry code or load things are dropped with their content, and any other unknown element is
replaced by its content. What is written back is serialised by lxml, so text is escaped.
The pages' Content-Security-Policy forbids scripts anyway; this is the first of two locks.
"""

from __future__ import annotations

import lxml.html
from lxml import etree

from trivia.tables.parsing import parse_colspan, parse_rowspan, strip_unparsable

#: Elements kept (with no attributes, except spans on cells).
ALLOWED_TAGS = frozenset(
    {
        "table", "caption", "colgroup", "col", "thead", "tbody", "tfoot", "tr", "td", "th",
        "b", "strong", "i", "em", "u", "s", "sub", "sup", "small", "br", "span", "p", "div",
        "code",
    }
)  # fmt: skip
#: Elements dropped together with everything inside them: code, styles, embedded documents,
#: media and forms. Any element in neither set is unwrapped (its text kept).
_DROPPED_WITH_CONTENT = frozenset(
    {
        "script", "style", "iframe", "frame", "frameset", "object", "embed", "applet", "svg",
        "math", "template", "noscript", "noembed", "noframes", "title", "textarea", "select",
        "option", "head", "meta", "link", "base", "img", "picture", "source", "video", "audio",
        "track", "canvas", "input", "button", "form", "xmp", "plaintext", "portal", "slot",
    }
)  # fmt: skip
_CELLS = frozenset({"td", "th"})


def sanitize_table_html(html: str) -> str:
    """`html` cut down to safe table markup, serialised; `""` when nothing is left."""
    cleaned = strip_unparsable(html)
    if not cleaned.strip():
        return ""
    parser = lxml.html.HTMLParser(remove_comments=True, remove_pis=True, encoding="utf-8")
    try:
        document = lxml.html.document_fromstring(cleaned.encode("utf-8"), parser=parser)
    except (etree.ParserError, ValueError):
        return ""
    body = document.find("body")
    if body is None:
        return ""
    # Deepest first, so an unwrapped element's children have been cleaned already.
    for element in reversed(list(body.iterdescendants())):
        tag = element.tag if isinstance(element.tag, str) else ""
        tag = tag.lower()
        if tag in _DROPPED_WITH_CONTENT or not tag:
            element.drop_tree()  # keeps the tail text
        elif tag not in ALLOWED_TAGS:
            element.drop_tag()
        else:
            _keep_safe_attributes(element, tag)
    parts = [_escape_text(body.text or "")]
    parts.extend(lxml.html.tostring(child, encoding="unicode") for child in body)
    return "".join(parts).strip()


def _keep_safe_attributes(element: lxml.html.HtmlElement, tag: str) -> None:
    spans = {}
    if tag in _CELLS:
        rowspan, colspan = element.get("rowspan"), element.get("colspan")
        if rowspan is not None and parse_rowspan(rowspan) > 1:
            spans["rowspan"] = str(parse_rowspan(rowspan))
        if colspan is not None and parse_colspan(colspan) > 1:
            spans["colspan"] = str(parse_colspan(colspan))
    element.attrib.clear()
    for name, value in spans.items():
        element.set(name, value)


def _escape_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
