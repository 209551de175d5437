"""HTML → the ordered tree TEDS compares, built exactly as PubTabNet's reference builds it.

Parsing is lxml's `html.fromstring` with comments removed and UTF-8, then `body/table`; every
element under the table is a node in document order; a `td` is a leaf labelled with its tag and
spans and carrying its content tokens; any other element (`th` included) is an inner node labelled
by its tag alone. The tree is kept in the arrays Zhang and Shasha's algorithm walks — nodes in
postorder, each node's leftmost leaf, and the key roots — for both the left-to-right and the
mirrored (right-to-left) postorder: the edit distance of two trees equals that of their mirror
images, and one of the two orders can take much less work (see `Postorder.work`).
"""

from __future__ import annotations

import re
from collections.abc import Hashable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from lxml import etree, html

_LEADING_DIGITS = re.compile(r"[\t\n\f\r ]*\+?([0-9]+)")


class Marker(NamedTuple):
    """An inline-tag token such as `<b>` or `</b>`: one token, and never equal to text."""

    token: str


# Cell content: plain text when the cell has no inline markup (the common case), else the pieces
# in order: text, and a `Marker` for each inline tag.
Content = str | tuple[str | Marker, ...]


@dataclass(frozen=True, eq=False, slots=True)
class Postorder:
    """A tree's nodes in one postorder (the root last), as Zhang and Shasha's algorithm walks
    them; "leftmost" and "first" are in the order's own direction."""

    nodes: np.ndarray | None
    """Per position: the node's index in the left-to-right postorder (None: the same)."""
    leftmost: np.ndarray
    """Per position: the position of the node's leftmost leaf."""
    parent: np.ndarray
    """Per position: the position of the node's parent (-1 for the root)."""
    keyroots: np.ndarray
    """Ascending: the inner nodes that are the highest node with their leftmost leaf."""
    leaf_keyroots: np.ndarray
    """Ascending: the leaves that are key roots (every leaf but a first child)."""
    work: int
    """The subtree sizes of the inner key roots, summed: the forest programme of two trees
    takes the product of their `work`. A table's large section (tbody) comes last, so its
    mirror image usually takes about half the work."""


@dataclass(frozen=True, eq=False, slots=True)
class TableTree:
    """One table as TEDS sees it, nodes in left-to-right postorder (the root, `table`, last)."""

    size: int
    """The n of TEDS: every element below the table, inline tags inside cells included."""
    labels: list[Hashable]
    """Per node: `("td", colspan, rowspan)` for a cell, else the element's tag."""
    left_to_right: Postorder
    """The nodes in left-to-right postorder (the order of `labels` and `cells`)."""
    right_to_left: Postorder
    """The nodes in the mirror image's postorder (children right to left)."""
    cells: list[Content | None]
    """Per node: a cell's content tokens (empty when structure only), None for other nodes."""
    chars: int
    """Content tokens over all cells."""
    markers: frozenset[Marker]
    """The inline-tag markers the contents use."""
    alphabet: frozenset[str]
    """The characters the contents use (which markers must not use)."""

    def same_as(self, other: TableTree) -> bool:
        """True when both trees are identical, so that their edit distance is exactly 0."""
        return (
            self.labels == other.labels
            and self.cells == other.cells
            and np.array_equal(self.left_to_right.leftmost, other.left_to_right.leftmost)
        )


def find_table(markup: str) -> etree._Element | None:
    """The table element the reference scores, or None where it finds none.

    Where the reference raises while parsing (an empty document, an encoding declaration in a
    string) there is no table. A fragment holding a single `table` element is that table, as if
    wrapped in `<html><body>`; the reference's `body/table` lookup misses it.
    """
    if not markup:
        return None
    parser = html.HTMLParser(remove_comments=True, encoding="utf-8")
    try:
        root = html.fromstring(markup, parser=parser)
    except (etree.LxmlError, ValueError):
        return None
    if root.tag == "table":
        return root
    tables = root.xpath("body/table")
    return tables[0] if tables else None


def span(value: str) -> int | str:
    """A colspan or rowspan as the reference reads it (`int`), else as a browser reads it.

    The fallback (for values like "2.0" or "", on which the reference crashes) takes the leading
    ASCII digits after optional whitespace and "+", and 1 when there are none.
    """
    try:
        return int(value)
    except ValueError:
        match = _LEADING_DIGITS.match(value)
        if match is None:
            return 1
        digits = match.group(1).lstrip("0") or "0"
        try:
            return int(digits)
        except ValueError:  # beyond int()'s digit limit: only needs to equal itself
            return digits


def build_tree(table: etree._Element, *, structure_only: bool) -> TableTree:
    """The postorder arrays of `table`'s tree, with each cell's content tokens."""
    labels: list[Hashable] = []
    leftmost: list[int] = []
    parent: list[int] = []
    depth: list[int] = []
    cells: list[Content | None] = []
    texts: list[str] = []
    markers: set[Marker] = set()
    # Frames: [element, iterator over its child nodes, leftmost leaf of its first child or -1,
    # postorder indices of its children].
    frames: list[list] = [[table, iter(table), -1, []]]
    while frames:
        frame = frames[-1]
        child = next(frame[1], None)
        if child is not None:
            children = iter(()) if child.tag == "td" else iter(child)
            frames.append([child, children, -1, []])
            continue
        frames.pop()
        node, _, first_leftmost, child_indices = frame
        index = len(labels)
        own_leftmost = index if first_leftmost < 0 else first_leftmost
        if frames:
            if frames[-1][2] < 0:
                frames[-1][2] = own_leftmost
            frames[-1][3].append(index)
        for child_index in child_indices:
            parent[child_index] = index
        parent.append(-1)
        leftmost.append(own_leftmost)
        depth.append(len(frames))
        if node.tag == "td":
            attrib = node.attrib
            labels.append(
                ("td", span(attrib.get("colspan", "1")), span(attrib.get("rowspan", "1")))
            )
            cells.append("" if structure_only else _content(node, texts, markers))
        else:
            labels.append(node.tag)
            cells.append(None)
    left_to_right = _postorder(
        None, np.asarray(leftmost, dtype=np.int64), np.asarray(parent, dtype=np.int64)
    )
    return TableTree(
        size=len(table.xpath(".//*")),
        labels=labels,
        left_to_right=left_to_right,
        right_to_left=_mirrored(left_to_right, np.asarray(depth, dtype=np.int64)),
        cells=cells,
        chars=sum(map(len, texts)) + _count_markers(cells),
        markers=frozenset(markers),
        alphabet=frozenset("".join(texts)),
    )


def _postorder(nodes: np.ndarray | None, leftmost: np.ndarray, parent: np.ndarray) -> Postorder:
    """The key roots (per leaf, the highest node with that leftmost leaf: the root and every node
    but a first child) and the work."""
    keyroots = np.flatnonzero((parent < 0) | (leftmost[parent] != leftmost))
    inner = keyroots[leftmost[keyroots] != keyroots]
    return Postorder(
        nodes=nodes,
        leftmost=leftmost,
        parent=parent,
        keyroots=inner,
        leaf_keyroots=keyroots[leftmost[keyroots] == keyroots],
        work=int(np.sum(inner - leftmost[inner] + 1)),
    )


def _mirrored(order: Postorder, depth: np.ndarray) -> Postorder:
    """The postorder of the mirror image: the left-to-right preorder reversed. Before a node in
    preorder come its ancestors and the subtrees to its left, which are the nodes before its
    leftmost leaf in postorder; its leftmost leaf in the mirror image is its rightmost leaf, the
    last leaf up to it in postorder."""
    count = len(depth)
    position = count - 1 - (order.leftmost + depth)
    index = np.arange(count)
    rightmost = np.maximum.accumulate(np.where(order.leftmost == index, index, -1))
    nodes = np.empty(count, dtype=np.int64)
    nodes[position] = index
    parent = np.where(order.parent >= 0, position[order.parent], -1)
    return _postorder(nodes, position[rightmost][nodes], parent[nodes])


def _count_markers(cells: list[Content | None]) -> int:
    return sum(
        sum(1 for piece in cell if type(piece) is Marker) for cell in cells if type(cell) is tuple
    )


def _content(cell: etree._Element, texts: list[str], markers: set[Marker]) -> Content:
    """The reference's tokens of a cell, its own `<td>` and `</td>` excluded."""
    if len(cell) == 0:
        text = cell.text or ""
        texts.append(text)
        return text
    pieces: list[str | Marker] = []
    if cell.text:
        pieces.append(cell.text)
    for child in cell:
        _append_tokens(child, pieces)
    for piece in pieces:
        if type(piece) is Marker:
            markers.add(piece)
        else:
            texts.append(piece)
    return tuple(pieces)


def _append_tokens(node: etree._Element, pieces: list[str | Marker]) -> None:
    # The reference's quirks, kept: no closing marker for <unk>, no tail after a nested <td>.
    pieces.append(Marker(f"<{node.tag}>"))
    if node.text:
        pieces.append(node.text)
    for child in node:
        _append_tokens(child, pieces)
    if node.tag != "unk":
        pieces.append(Marker(f"</{node.tag}>"))
    if node.tag != "td" and node.tail:
        pieces.append(node.tail)
