"""Generated HTML tables and recognitions of them, for the TEDS tests and benchmarks.

A table is a small model (rows of cells with a tag, spans and inner HTML) so that recognition
errors — dropped, extra and merged rows and columns, merged cells, typos, lost markup,
truncation — are edits of the model; `render` turns a model into HTML. Everything is driven by a
`random.Random`, so a seed names a case.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace

INLINE_TAGS = ("b", "i", "sup", "sub", "u", "span", "unk")
_SMALL_ALPHABET = ("a", "b", "1", " ", "&amp;", "&lt;b&gt;", "é", "\u00a0", "\U000f0000")
WORDS = ("Age", "Week", "Dose", "Total", "n", "Mean", "SD", "p", "95% CI", "–", "NA", "Male")


@dataclass(frozen=True)
class Cell:
    """One cell: `inner` is its HTML content."""

    inner: str
    tag: str = "td"
    colspan: int = 1
    rowspan: int = 1
    explicit_spans: bool = False


@dataclass(frozen=True)
class Table:
    """Header rows and body rows of cells."""

    head: list[list[Cell]] = field(default_factory=list)
    body: list[list[Cell]] = field(default_factory=list)


def render(table: Table, *, document: bool = True) -> str:
    """The table as HTML, inside `<html><body>` unless `document` is false."""
    parts = ["<table>"]
    for section, rows in (("thead", table.head), ("tbody", table.body)):
        if not rows:
            continue
        parts.append(f"<{section}>")
        for row in rows:
            parts.append("<tr>")
            parts.extend(_render_cell(cell) for cell in row)
            parts.append("</tr>")
        parts.append(f"</{section}>")
    parts.append("</table>")
    markup = "".join(parts)
    return f"<html><body>{markup}</body></html>" if document else markup


def _render_cell(cell: Cell) -> str:
    attrs = ""
    if cell.colspan != 1 or cell.explicit_spans:
        attrs += f' colspan="{cell.colspan}"'
    if cell.rowspan != 1 or cell.explicit_spans:
        attrs += f' rowspan="{cell.rowspan}"'
    return f"<{cell.tag}{attrs}>{cell.inner}</{cell.tag}>"


def realistic_table(rng: random.Random, rows: int, cols: int) -> Table:
    """A results table: a bold header row, a label column, numbers, a few spans and empty cells."""
    head = [[Cell(f"<b>{_word(rng)}</b>" if c else "") for c in range(cols)]]
    if rng.random() < 0.5 and cols > 2:
        span = rng.randint(2, cols - 1)
        head.insert(0, [Cell(""), Cell(f"<b>{_word(rng)}</b>", colspan=span)])
    body = []
    for _ in range(rows - len(head)):
        row = [Cell(_word(rng) if rng.random() < 0.8 else f"<i>{_word(rng)}</i>")]
        row += [Cell(_number(rng) if rng.random() < 0.93 else "") for _ in range(cols - 1)]
        if rng.random() < 0.05 and cols > 3:
            row[1:3] = [Cell(_number(rng), colspan=2)]
        body.append(row)
    return Table(head=head, body=body)


def small_table(rng: random.Random) -> Table:
    """A tiny table with every oddity the TEDS definition cares about, at random."""
    rows, cols = rng.randint(1, 4), rng.randint(1, 4)
    if rng.random() < 0.05:  # everything merged into one cell
        return Table(body=[[Cell(_small_text(rng), colspan=cols, rowspan=rows)]])
    header_tag = "th" if rng.random() < 0.4 else "td"
    grid = [
        [_small_cell(rng, header_tag if r == 0 else "td") for _ in range(cols)] for r in range(rows)
    ]
    if rows > 1 and rng.random() < 0.5:
        return Table(head=grid[:1], body=grid[1:])
    return Table(body=grid)


def recognise(rng: random.Random, table: Table, *, errors: int) -> Table:
    """A recognition of `table` with `errors` typical mistakes."""
    for _ in range(errors):
        table = rng.choice(_MISTAKES)(rng, table)
    return table


def truncate(rng: random.Random, markup: str) -> str:
    """The markup cut at a random point, as a generation that hit its token limit."""
    return markup[: rng.randint(len(markup) // 3, len(markup))]


# --- cell contents -------------------------------------------------------------------------------


def _word(rng: random.Random) -> str:
    return rng.choice(WORDS) + (f" {rng.randint(1, 99)}" if rng.random() < 0.3 else "")


def _number(rng: random.Random) -> str:
    value = f"{rng.uniform(0, 500):.{rng.randint(0, 2)}f}"
    return value if rng.random() < 0.7 else f"{value} ± {rng.uniform(0, 20):.2f}"


def _small_text(rng: random.Random) -> str:
    # A small alphabet, so that contents often share tokens and partial matches are common.
    return "".join(rng.choice(_SMALL_ALPHABET) for _ in range(rng.randint(0, 4)))


def _small_inner(rng: random.Random, depth: int = 0) -> str:
    roll = rng.random()
    if roll < 0.15:
        return ""
    if roll < 0.45 or depth > 3:
        return _small_text(rng)
    tag = rng.choice(INLINE_TAGS)
    inner = _small_inner(rng, depth + 1)
    return f"{_small_text(rng)}<{tag}>{inner}</{tag}>{_small_text(rng)}"


def _small_cell(rng: random.Random, tag: str) -> Cell:
    colspan = rng.choice((1, 1, 1, 2, 3))
    rowspan = rng.choice((1, 1, 1, 2))
    return Cell(
        _small_inner(rng),
        tag=tag,
        colspan=colspan,
        rowspan=rowspan,
        explicit_spans=rng.random() < 0.1,
    )


# --- recognition mistakes ------------------------------------------------------------------------


def _rows(table: Table) -> list[list[Cell]]:
    return table.head + table.body


def _with_rows(table: Table, rows: list[list[Cell]]) -> Table:
    cut = min(len(table.head), len(rows))
    return Table(head=rows[:cut], body=rows[cut:])


def _drop_row(rng: random.Random, table: Table) -> Table:
    rows = _rows(table)
    if len(rows) > 1:
        del rows[rng.randrange(len(rows))]
    return _with_rows(table, rows)


def _extra_row(rng: random.Random, table: Table) -> Table:
    rows = _rows(table)
    at = rng.randrange(len(rows) + 1)
    source = rows[rng.randrange(len(rows))] if rows else [Cell("x")]
    rows.insert(at, [replace(cell, inner=_typo(rng, cell.inner)) for cell in source])
    return _with_rows(table, rows)


def _merge_rows(rng: random.Random, table: Table) -> Table:
    rows = _rows(table)
    if len(rows) > 1:
        at = rng.randrange(len(rows) - 1)
        upper, lower = rows[at], rows.pop(at + 1)
        rows[at] = [
            replace(a, inner=f"{a.inner} {b.inner}") for a, b in zip(upper, lower, strict=False)
        ] + upper[len(lower) :]
    return _with_rows(table, rows)


def _drop_column(rng: random.Random, table: Table) -> Table:
    column = rng.randrange(max(len(row) for row in _rows(table)) or 1)
    return _with_rows(table, [row[:column] + row[column + 1 :] for row in _rows(table)])


def _extra_column(rng: random.Random, table: Table) -> Table:
    column = rng.randrange(max(len(row) for row in _rows(table)) + 1)
    return _with_rows(
        table, [[*row[:column], Cell(_number(rng)), *row[column:]] for row in _rows(table)]
    )


def _merge_cells(rng: random.Random, table: Table) -> Table:
    rows = _rows(table)
    r = rng.randrange(len(rows))
    row = rows[r]
    if len(row) > 1:
        c = rng.randrange(len(row) - 1)
        left, right = row[c], row[c + 1]
        merged = replace(left, inner=left.inner + right.inner, colspan=left.colspan + right.colspan)
        rows[r] = [*row[:c], merged, *row[c + 2 :]]
    return _with_rows(table, rows)


def _split_cell(rng: random.Random, table: Table) -> Table:
    rows = _rows(table)
    r = rng.randrange(len(rows))
    row = rows[r]
    spanning = [c for c, cell in enumerate(row) if cell.colspan > 1 or cell.rowspan > 1]
    if spanning:
        c = rng.choice(spanning)
        extra = [Cell("") for _ in range(row[c].colspan - 1)]
        rows[r] = [*row[:c], replace(row[c], colspan=1, rowspan=1), *extra, *row[c + 1 :]]
    return _with_rows(table, rows)


def _typo(rng: random.Random, inner: str) -> str:
    text = [i for i, ch in enumerate(inner) if ch.isalnum()]
    if not text:
        return inner + rng.choice("0123456789")
    at = rng.choice(text)
    return inner[:at] + rng.choice(("", rng.choice("0123456789abcdefl1O"))) + inner[at + 1 :]


def _typos(rng: random.Random, table: Table) -> Table:
    rows = _rows(table)
    for _ in range(rng.randint(1, 5)):
        r = rng.randrange(len(rows))
        if rows[r]:
            c = rng.randrange(len(rows[r]))
            rows[r] = [*rows[r][:c], replace(rows[r][c], inner=_typo(rng, rows[r][c].inner)),
                       *rows[r][c + 1 :]]  # fmt: skip
    return _with_rows(table, rows)


def _lose_markup(rng: random.Random, table: Table) -> Table:
    rows = [
        [replace(cell, inner=cell.inner.replace("<b>", "").replace("</b>", "")) for cell in row]
        for row in _rows(table)
    ]
    return _with_rows(table, rows)


def _header_as_body(rng: random.Random, table: Table) -> Table:
    return Table(body=[[replace(cell, tag="td") for cell in row] for row in _rows(table)])


_MISTAKES = (
    _drop_row,
    _extra_row,
    _merge_rows,
    _drop_column,
    _extra_column,
    _merge_cells,
    _split_cell,
    _typos,
    _typos,
    _lose_markup,
    _header_as_body,
)
