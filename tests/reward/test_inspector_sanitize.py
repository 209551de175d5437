"""The inspector's sanitiser: hostile completions come out as inert table markup."""

from __future__ import annotations

import re

import lxml.html
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trivia.reward.inspector.sanitize import ALLOWED_TAGS, sanitize_table_html
from trivia.tables import Cell, Table, html_to_table, table_to_html

HOSTILE = {
    "script": "<table><tr><td>a<script>alert(1)</script></td></tr></table>",
    "script in head": "<html><head><script>alert(1)</script></head><body><table><tr><td>a"
    "</td></tr></table></body></html>",
    "onerror": '<table><tr><td><img src=x onerror="alert(1)">a</td></tr></table>',
    "handler on a cell": '<table><tr><td onmouseover="alert(1)" ONCLICK=alert(2)>a</td></tr>'
    "</table>",
    "javascript url": '<table><tr><td><a href="javascript:alert(1)">a</a></td></tr></table>',
    "javascript url, encoded": '<table><tr><td><a href="jav&#x09;ascript:alert(1)">a</a>'
    "</td></tr></table>",
    "iframe": '<table><tr><td><iframe src="https://example.com/"></iframe>a</td></tr></table>',
    "srcdoc": '<table><tr><td><iframe srcdoc="<script>alert(1)</script>"></iframe>a</td></tr>'
    "</table>",
    "style element": "<table><style>td{background:url(https://example.com/x)}</style><tr><td>a"
    "</td></tr></table>",
    "style attribute": '<table><tr><td style="background:url(https://example.com/x)">a</td>'
    "</tr></table>",
    "svg onload": "<svg onload=alert(1)><rect/></svg><table><tr><td>a</td></tr></table>",
    "svg script": "<table><tr><td><svg><script>alert(1)</script></svg>a</td></tr></table>",
    "svg use": '<table><tr><td><svg><use href="https://example.com/x.svg#a"/></svg>a</td></tr>'
    "</table>",
    "math": '<table><tr><td><math><mi xlink:href="javascript:alert(1)">x</mi></math>a</td></tr>'
    "</table>",
    "noscript breakout": '<table><tr><td><noscript><p title="</noscript><img src=x '
    'onerror=alert(1)>"></noscript>a</td></tr></table>',
    "object and embed": '<table><tr><td>a<object data="x.swf"></object><embed src="x"></td>'
    "</tr></table>",
    "link and meta": '<link rel=stylesheet href="https://example.com/x.css"><meta http-equiv='
    '"refresh" content="0;url=https://example.com"><table><tr><td>a</td></tr></table>',
    "base": '<base href="https://example.com/"><table><tr><td>a</td></tr></table>',
    "form": '<table><tr><td><form action="https://example.com"><input name=x><button>go'
    "</button></form>a</td></tr></table>",
    "template": "<table><tr><td><template><script>alert(1)</script></template>a</td></tr></table>",
    "comment": "<table><tr><td><!--<script>alert(1)</script>-->a</td></tr></table>",
    "unclosed script": "<table><tr><td>a</td></tr></table><script>alert(1)",
    "textarea breakout": "<table><tr><td><textarea></textarea><script>alert(1)</script>a</td>"
    "</tr></table>",
}
_DANGER = re.compile(
    r"<\s*(script|iframe|style|svg|math|img|object|embed|link|meta|base|form|input|template)"
    r"|\bon[a-z]+\s*=|javascript:|\b(src|href|style|srcdoc|action|data)\s*=",
    re.IGNORECASE,
)


@pytest.mark.parametrize("html", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_markup_leaves_only_inert_table_markup(html):
    clean = sanitize_table_html(html)
    assert not _DANGER.search(clean), clean
    tree = lxml.html.fragment_fromstring(clean, create_parent="div")
    for element in tree.iterdescendants():
        assert element.tag in ALLOWED_TAGS, element.tag
        assert set(element.attrib) <= {"rowspan", "colspan"}, element.attrib
    table = html_to_table(clean)
    assert table is not None and [c.text for c in table.cells] == ["a"], clean


def test_cell_spans_are_kept_as_numbers_and_everything_else_goes():
    html = (
        '<table class="t" id="x"><tr><td rowspan="2" colspan="3x" title="t">a</td>'
        '<th colspan=" 2" data-x="1" align="left">b</th></tr><tr><td rowspan="0">c</td></tr>'
        "</table>"
    )
    assert sanitize_table_html(html) == (
        '<table><tr><td rowspan="2" colspan="3">a</td><th colspan="2">b</th></tr>'
        "<tr><td>c</td></tr></table>"
    )


def test_inline_formatting_is_kept_and_unknown_elements_are_unwrapped():
    html = "<table><tr><td><b>1</b><sup>2</sup><font color=red>3</font><a>4</a></td></tr></table>"
    assert sanitize_table_html(html) == ("<table><tr><td><b>1</b><sup>2</sup>34</td></tr></table>")


@pytest.mark.parametrize(
    ("broken", "texts"),
    [
        ("<table><tr><td>1<td>2<tr><td>3", ["1", "2", "3"]),
        ("<table><tr><td>1</td></tr>", ["1"]),
        ("<td>1</td></tr></table></table>", []),
        ("<table><tr><td>a < b & c > d</td></tr></table>", ["a < b & c > d"]),
        ("<table><tr><td>\x00x\ud800</td></tr></table>", ["x"]),
    ],
)
def test_broken_markup_is_repaired_not_refused(broken, texts):
    clean = sanitize_table_html(broken)
    table = html_to_table(clean)
    assert ([c.text for c in table.cells] if table else []) == texts


@pytest.mark.parametrize("empty", ["", "   ", "\x00", "<script>alert(1)</script>"])
def test_nothing_safe_left_is_the_empty_string(empty):
    assert sanitize_table_html(empty) == ""


def test_text_outside_elements_is_escaped():
    assert sanitize_table_html("1 < 2 &amp; <b>x</b>") == "1 &lt; 2 &amp; <b>x</b>"


_text = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=12)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(_text, min_size=1, max_size=4), min_size=1, max_size=4))
def test_any_cell_text_survives_unchanged(rows):
    width = max(len(row) for row in rows)
    cells = tuple(Cell(r, c, text=text) for r, row in enumerate(rows) for c, text in enumerate(row))
    table = Table(cells, n_rows=len(rows), n_cols=width)
    clean = html_to_table(sanitize_table_html(table_to_html(table)))
    assert clean is not None
    assert [c.text.strip() for c in clean.cells] == [c.text.strip() for c in cells]
