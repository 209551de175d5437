"""`trivia.metrics.teds`: PubTabNet's definition (against an APTED oracle), its documented
differences, `pairwise_teds`, the size limits and the cost of the first call."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from lxml import etree
from teds_oracle import reference_teds
from teds_tables import (
    INLINE_TAGS,
    Cell,
    Table,
    realistic_table,
    recognise,
    render,
    small_table,
    truncate,
)

import trivia.metrics
from trivia.metrics import TableTooLarge, pairwise_teds, teds

SAMPLES = Path(__file__).resolve().parents[2] / "examples" / "pubtabnet"
TOLERANCE = 1e-15


def doc(rows: str) -> str:
    return f"<html><body><table>{rows}</table></body></html>"


# --- the official samples ------------------------------------------------------------------------


def test_reproduces_the_published_sample_scores() -> None:
    preds = json.loads((SAMPLES / "sample_pred.json").read_text())
    truths = json.loads((SAMPLES / "sample_gt.json").read_text())
    expected = json.loads((SAMPLES / "sample_expected_teds.json").read_text())
    assert len(expected) == 20
    scores = {name: teds(preds.get(name, ""), truths[name]["html"]) for name in expected}
    # To the last bit: PMC4219599_004_00 (0.6029978075326913) needs the distance summed in
    # APTED's order, PMC4297392_007_00 (0.8070175438596492) the reference's two roundings.
    assert scores == expected


# --- the definition, against the oracle ----------------------------------------------------------


def _generated_pair(rng: random.Random) -> tuple[str, str]:
    """Small pairs of every kind the definition has a rule for."""
    kind = rng.choice(("recognised", "recognised", "independent", "truncated", "deep", "no table"))
    truth = small_table(rng)
    if kind == "independent":
        pred = small_table(rng)
    elif kind == "deep":
        truth, pred = _deep_markup(rng), _deep_markup(rng)
    else:
        pred = recognise(rng, truth, errors=rng.randint(0, 3))
    gt, prediction = render(truth), render(pred)
    if kind == "truncated":
        prediction = truncate(rng, prediction)
        gt = truncate(rng, gt) if rng.random() < 0.3 else gt
    if kind == "no table":
        prediction = rng.choice(("<html><body><p>no table</p></body></html>", "plain text", ""))
    return prediction, gt


def _deep_markup(rng: random.Random) -> Table:
    def nested(depth: int) -> str:
        tags = [rng.choice(INLINE_TAGS) for _ in range(depth)]
        opening = "".join(f"<{t}>{rng.choice(('', 'a', 'b '))}" for t in tags)
        return opening + "x" + "".join(f"</{t}>{rng.choice(('', '1'))}" for t in reversed(tags))

    head = [Cell(nested(rng.randint(1, 12)), tag="th") for _ in range(rng.randint(1, 3))]
    body = [Cell(nested(rng.randint(0, 12))) for _ in range(rng.randint(1, 3))]
    return Table(head=[head], body=[body])


def test_matches_the_reference_on_3000_generated_pairs() -> None:
    rng = random.Random(20240601)
    compared = 0
    for _ in range(3000):
        pred, gt = _generated_pair(rng)
        for structure_only in (False, True):
            try:
                # Below 0 the reference is unclamped: tested apart.
                expected = max(0.0, reference_teds(pred, gt, structure_only))
            except ZeroDivisionError:  # two tables without descendants: tested apart
                continue
            got = teds(pred, gt, structure_only=structure_only)
            assert abs(got - expected) <= TOLERANCE, (pred, gt, structure_only, got, expected)
            compared += 1
    assert compared >= 5900


def test_realistic_recognitions_match_the_reference_to_the_last_bit() -> None:
    """Results tables of PubTabNet's sizes, with and without a header section, both ways round:
    the float64 sums come out in APTED's order, so the scores are equal, not merely close."""
    rng = random.Random(7)
    for case in range(12):
        truth = realistic_table(rng, rng.randint(5, 16), rng.randint(3, 8))
        if case % 3 == 0:
            truth = Table(head=[], body=truth.head + truth.body)
        pred, gt = render(recognise(rng, truth, errors=rng.randint(1, 6))), render(truth)
        for first, second in ((pred, gt), (gt, pred)):
            for structure_only in (False, True):
                expected = reference_teds(first, second, structure_only)
                got = teds(first, second, structure_only=structure_only)
                assert got == expected, (case, structure_only, got, expected)


@pytest.mark.parametrize(
    ("pred", "gt", "score"),
    [
        # th is an inner node, not a cell: its text is ignored.
        (doc("<tr><th>abc</th></tr>"), doc("<tr><th>xyz</th></tr>"), 1.0),
        # Inline tags are content tokens and count in n: tokens <b> a </b> against a gives 2/3,
        # n = max(tr, td, b; tr, td) = 3.
        (doc("<tr><td><b>a</b></td></tr>"), doc("<tr><td>a</td></tr>"), 1 - (2 / 3) / 3),
        # No token in common: the rename costs 1.
        (doc("<tr><td><b>a</b></td></tr>"), doc("<tr><td>b</td></tr>"), 1 - 1 / 3),
        # "<b>" as text is three tokens, none of them the tag's one token: 4 edits over 4.
        (doc("<tr><td>&lt;b&gt;a</td></tr>"), doc("<tr><td><b>a</b></td></tr>"), 1 - 1 / 3),
        # ...and text that reads like a marker never equals the marker.
        (
            doc("<tr><td><i></i>&lt;unk&gt;</td></tr>"),
            doc("<tr><td><i></i><unk></unk></td></tr>"),
            1 - (5 / 7) / 4,
        ),
        # <unk> has no closing token: <unk> a against a is 1 edit over 2.
        (doc("<tr><td><unk>a</unk></td></tr>"), doc("<tr><td>a</td></tr>"), 1 - (1 / 2) / 3),
        # Different spans: rename costs 1.
        (doc('<tr><td colspan="2">a</td></tr>'), doc("<tr><td>a</td></tr>"), 0.5),
        # An explicit span of 1 is the default.
        (doc('<tr><td colspan="1">a</td></tr>'), doc("<tr><td>a</td></tr>"), 1.0),
        # No whitespace normalisation.
        (doc("<tr><td>a </td></tr>"), doc("<tr><td>a</td></tr>"), 1 - 0.5 / 2),
    ],
)
def test_definition_examples(pred: str, gt: str, score: float) -> None:
    assert teds(pred, gt) == pytest.approx(score, abs=TOLERANCE)
    assert reference_teds(pred, gt) == pytest.approx(score, abs=TOLERANCE)


def test_structure_only_ignores_contents_but_counts_inline_tags() -> None:
    pred, gt = doc("<tr><td><b>a</b></td></tr>"), doc("<tr><td>b</td></tr>")
    assert teds(pred, gt, structure_only=True) == 1.0
    pred, gt = doc("<tr><td><b>a</b></td><td>c</td></tr>"), doc("<tr><td>b</td></tr>")
    assert teds(pred, gt, structure_only=True) == pytest.approx(1 - 1 / 4)


@pytest.mark.parametrize("text", ["\ue000", "\ue001a", "\U000f0000", "\U0010fffd"])
def test_content_characters_never_collide_with_markup_tokens(text: str) -> None:
    pred = doc(f"<tr><td>{text}</td><td><b>{text}</b></td></tr>")
    gt = doc(f"<tr><td><i>{text}</i></td><td>{text}<sup>x</sup></td></tr>")
    for structure_only in (False, True):
        expected = reference_teds(pred, gt, structure_only)
        assert teds(pred, gt, structure_only=structure_only) == pytest.approx(expected, abs=1e-15)


def test_spans_that_int_accepts_are_read_as_int_reads_them() -> None:
    for value in (" 2 ", "+2", "02", "2_0", "\u0662", "0", "-1"):
        pred = doc(f'<tr><td colspan="{value}">a</td></tr>')
        gt = doc(f'<tr><td colspan="{int(value)}">a</td></tr>')
        assert teds(pred, gt) == reference_teds(pred, gt) == 1.0


# --- deliberate differences from the reference ---------------------------------------------------


def test_a_bare_table_fragment_is_scored_as_if_wrapped_in_html_body() -> None:
    rng = random.Random(3)
    for _ in range(50):
        truth = small_table(rng)
        fragment = render(recognise(rng, truth, errors=2), document=False)
        gt = render(truth)
        wrapped = f"<html><body>{fragment}</body></html>"
        assert reference_teds(fragment, gt) == 0.0
        assert teds(f"\n {fragment}\n", gt) == teds(wrapped, gt)
        assert teds(fragment, gt) == pytest.approx(reference_teds(wrapped, gt), abs=TOLERANCE)
        assert teds(gt, fragment) == pytest.approx(reference_teds(gt, wrapped), abs=TOLERANCE)


@pytest.mark.parametrize("structure_only", [False, True])
def test_a_score_below_zero_is_zero(structure_only: bool) -> None:
    """Nodes that nest differently cannot be matched, so the distance can exceed the larger
    size: a chain of inline tags in a header cell against a row of cells."""
    chain = doc("<tr><th><b><b><b><b>x</b></b></b></b></th></tr>")
    row = doc("<tr>" + "<td></td>" * 6 + "</tr>")
    deep = doc("<tr><th>" + "<span>" * 30 + "x" + "</span>" * 30 + "</th></tr>")
    wide = doc("<tr>" + "<td>y</td>" * 31 + "</tr>")
    for first, second, reference in ((chain, row, 1 - 10 / 7), (deep, wide, 1 - 61 / 32)):
        assert reference_teds(first, second, structure_only) == pytest.approx(reference)
        assert reference_teds(second, first, structure_only) == pytest.approx(reference)
        assert teds(first, second, structure_only=structure_only) == 0.0
        assert teds(second, first, structure_only=structure_only) == 0.0
        matrix = pairwise_teds([first, second], structure_only=structure_only)
        assert matrix == [[1.0, 0.0], [0.0, 1.0]]


@pytest.mark.parametrize(
    "fragment",
    [
        "<table><tr><td>a</td></tr></table><table><tr><td>b</td></tr></table>",
        "text <table><tr><td>a</td></tr></table>",
        "<table><tr><td>a</td></tr></table> tail",
        "<div><table><tr><td>a</td></tr></table></div>",
        "<html><body><div><table><tr><td>a</td></tr></table></div></body></html>",
    ],
)
def test_other_inputs_without_body_table_score_zero_as_in_the_reference(fragment: str) -> None:
    gt = doc("<tr><td>a</td></tr>")
    assert teds(fragment, gt) == reference_teds(fragment, gt) == 0.0


@pytest.mark.parametrize("text", ["   ", "\n\t", "<!-- only a comment -->"])
def test_input_lxml_refuses_holds_no_table(text: str) -> None:
    gt = doc("<tr><td>a</td></tr>")
    with pytest.raises(etree.ParserError):
        reference_teds(text, gt)
    assert teds(text, gt) == teds(gt, text) == 0.0
    assert pairwise_teds([text, gt]) == [[0.0, 0.0], [0.0, 1.0]]


def test_an_encoding_declaration_in_a_string_holds_no_table() -> None:
    declared = '<?xml version="1.0" encoding="utf-8"?>' + doc("<tr><td>a</td></tr>")
    with pytest.raises(ValueError, match="encoding declaration"):
        reference_teds(declared, doc("<tr><td>a</td></tr>"))
    assert teds(declared, doc("<tr><td>a</td></tr>")) == 0.0


def test_two_tables_without_descendants_are_identical() -> None:
    with pytest.raises(ZeroDivisionError):
        reference_teds(doc(""), doc(""))
    assert teds(doc(""), doc("")) == 1.0
    assert teds(doc("text"), doc(""), structure_only=True) == 1.0
    assert teds(doc(""), doc("<tr></tr>")) == 0.0


@pytest.mark.parametrize(
    ("value", "read_as"),
    [("2.0", 2), ("3px", 3), (" +4.5", 4), ("", 1), ("abc", 1), ("-2.0", 1), ("1" * 5000, None)],
)
def test_spans_int_rejects_are_read_as_a_browser_reads_them(
    value: str, read_as: int | None
) -> None:
    pred = doc(f'<tr><td rowspan="{value}">a</td><td>b</td></tr>')
    with pytest.raises(ValueError):
        reference_teds(pred, doc("<tr><td>a</td></tr>"))
    if read_as is None:  # too long for int(): equal only to itself
        assert teds(pred, pred.replace("b<", "c<")) == pytest.approx(1 - 1 / 3)
        assert teds(pred, doc("<tr><td>a</td><td>b</td></tr>")) == pytest.approx(1 - 1 / 3)
        return
    same = doc(f'<tr><td rowspan="{read_as}">a</td><td>b</td></tr>')
    assert teds(pred, same) == 1.0
    other = doc(f'<tr><td rowspan="{read_as + 1}">a</td><td>b</td></tr>')
    assert teds(pred, other) == pytest.approx(1 - 1 / 3)


# --- pairwise_teds -------------------------------------------------------------------------------


def _recognitions(seed: int, count: int, *, distinct: bool) -> list[str]:
    rng = random.Random(seed)
    truth = realistic_table(rng, 8, 5)
    if distinct:  # unrelated tables: one cost matrix per pair
        return [render(realistic_table(rng, 8, 5)) for _ in range(count)]
    return [render(recognise(rng, truth, errors=rng.randint(0, 3))) for _ in range(count)]


@pytest.mark.parametrize("distinct", [False, True])
@pytest.mark.parametrize("structure_only", [False, True])
def test_pairwise_equals_teds_of_every_pair(distinct: bool, structure_only: bool) -> None:
    tables = _recognitions(11, 6, distinct=distinct)
    tables[2] = tables[4]  # a repeated recognition
    tables.insert(3, "not a table")
    matrix = pairwise_teds(tables, structure_only=structure_only)
    assert len(matrix) == len(tables) and all(len(row) == len(tables) for row in matrix)
    for i, first in enumerate(tables):
        for j, second in enumerate(tables):
            if i < j:
                assert matrix[i][j] == teds(first, second, structure_only=structure_only)
            assert matrix[i][j] == matrix[j][i]
    assert [matrix[i][i] for i in range(len(tables))] == [1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0]
    assert matrix[2][5] == 1.0
    assert pairwise_teds([]) == []


def test_pairwise_matches_the_reference() -> None:
    tables = _recognitions(5, 4, distinct=False)
    matrix = pairwise_teds(tables)
    for i in range(4):
        for j in range(i + 1, 4):
            assert abs(matrix[i][j] - reference_teds(tables[i], tables[j])) <= TOLERANCE


# --- size limits ---------------------------------------------------------------------------------


def _large_table(cells: int, chars_per_cell: int) -> str:
    rows = "".join(
        "<tr>" + "".join(f"<td>{'x' * chars_per_cell}</td>" for _ in range(20)) + "</tr>"
        for _ in range(cells // 20)
    )
    return doc(rows)


def test_default_limits_admit_2000_cells_and_50000_characters() -> None:
    big = _large_table(2000, 25)
    assert teds(big, big) == 1.0
    assert pairwise_teds([big, big]) == [[1.0, 1.0], [1.0, 1.0]]


def test_too_large_tables_raise_with_their_sizes_and_the_limits() -> None:
    table = doc("<tr><td>abc</td><td>de</td></tr>")
    with pytest.raises(TableTooLarge) as raised:
        teds(table, table, max_nodes=3)
    error = raised.value
    assert isinstance(error, ValueError)
    assert (error.nodes, error.chars, error.max_nodes, error.max_chars) == (4, 5, 3, 200_000)
    assert "4 tree nodes (limit 3)" in str(error)
    with pytest.raises(TableTooLarge) as raised:
        pairwise_teds([table, doc("<tr><td>a</td></tr>")], max_chars=4)
    assert (raised.value.chars, raised.value.max_chars) == (5, 4)
    # Contents do not count when they are ignored.
    assert teds(table, table, structure_only=True, max_chars=4) == 1.0


# --- public surface and first-call cost ----------------------------------------------------------


def test_public_names() -> None:
    assert {"TableTooLarge", "pairwise_teds", "teds"} <= set(trivia.metrics.__all__)


def test_a_fresh_process_compiles_into_the_cache_once_then_loads_it(tmp_path: Path) -> None:
    """An empty numba cache directory forces compilation; the time it takes is the TEDS
    benchmark's "first call" figure, not a unit test's."""
    script = (
        "from trivia.metrics import teds\n"
        "t = '<html><body><table><tr><td>{}</td></tr></table></body></html>'\n"
        "assert teds(t.format('a'), t.format('ab')) == 0.75\n"
    )
    environment = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    cached = []
    for _ in range(2):  # compiling into the empty cache, then loading from it
        result = subprocess.run(
            [sys.executable, "-c", script], env=environment, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr
        cached.append({p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.nb*")})
    assert any(p.suffix == ".nbi" for p in cached[0])
    assert cached[1] == cached[0]  # the second process wrote nothing: it loaded
