"""`trivia.metrics._teds_tree`: the mirror image's postorder, against the tree of the mirrored
markup."""

from __future__ import annotations

import random

import numpy as np
from lxml import html
from teds_tables import realistic_table, recognise, render, small_table

from trivia.metrics._teds_tree import build_tree, find_table


def _mirrored_markup(markup: str) -> str:
    """The same table with every node's children in reverse order (cells' contents kept)."""
    table = find_table(markup)
    assert table is not None
    nodes = [
        element
        for element in table.iter()
        if element.tag != "td" and not any(a.tag == "td" for a in element.iterancestors())
    ]
    for element in nodes:
        children = list(element)
        for child in children:
            element.remove(child)
        element.extend(reversed(children))
    return f"<html><body>{html.tostring(table, encoding='unicode')}</body></html>"


def test_the_right_to_left_postorder_is_the_mirrored_tables_postorder() -> None:
    rng = random.Random(5)
    tables = [render(small_table(rng)) for _ in range(30)]
    tables += [render(recognise(rng, realistic_table(rng, 6, 4), errors=3)) for _ in range(10)]
    for markup in tables:
        for structure_only in (False, True):
            tree = build_tree(find_table(markup), structure_only=structure_only)
            mirrored = build_tree(
                find_table(_mirrored_markup(markup)), structure_only=structure_only
            )
            order, expected = tree.right_to_left, mirrored.left_to_right
            for field in ("leftmost", "parent", "keyroots", "leaf_keyroots"):
                assert np.array_equal(getattr(order, field), getattr(expected, field)), field
            assert order.work == expected.work
            assert [tree.labels[k] for k in order.nodes] == mirrored.labels
            assert [tree.cells[k] for k in order.nodes] == mirrored.cells
    assert tree.left_to_right.nodes is None


def test_a_long_body_after_a_short_head_takes_less_work_mirrored() -> None:
    rng = random.Random(1)
    tree = build_tree(find_table(render(realistic_table(rng, 30, 6))), structure_only=False)
    assert tree.right_to_left.work < tree.left_to_right.work
