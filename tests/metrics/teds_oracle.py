"""The reference TEDS, written as PubTabNet's `src/metric.py` computes it: the tests' oracle.

APTED over trees built the way the reference builds them, with its rename cost, and
`Levenshtein.distance` over token lists where the reference used `distance.levenshtein`. The one
change: the parser goes to `html.fromstring` by keyword (the reference passes it positionally,
as `base_url`, which the pinned lxml rejects). Slow; for tests and the benchmark baseline only.
"""

from __future__ import annotations

from apted import APTED, Config
from apted.helpers import Tree
from Levenshtein import distance as levenshtein
from lxml import html


class TableTree(Tree):
    """A node as the reference keeps it: tag, spans and content for a cell, children."""

    def __init__(self, tag, colspan=None, rowspan=None, content=None, *children):
        self.tag = tag
        self.colspan = colspan
        self.rowspan = rowspan
        self.content = content
        self.children = list(children)


class TableConfig(Config):
    """The reference's costs: insert and delete 1 (APTED's default), rename as below."""

    def rename(self, node1, node2):
        if (
            node1.tag != node2.tag
            or node1.colspan != node2.colspan
            or node1.rowspan != node2.rowspan
        ):
            return 1.0
        if node1.tag == "td" and (node1.content or node2.content):
            longest = max(len(node1.content), len(node2.content))
            return float(levenshtein(node1.content, node2.content)) / longest
        return 0.0


def _tokenize(node, tokens: list[str]) -> None:
    tokens.append(f"<{node.tag}>")
    if node.text is not None:
        tokens += list(node.text)
    for child in node.getchildren():
        _tokenize(child, tokens)
    if node.tag != "unk":
        tokens.append(f"</{node.tag}>")
    if node.tag != "td" and node.tail is not None:
        tokens += list(node.tail)


def _load_tree(node, structure_only: bool) -> TableTree:
    if node.tag == "td":
        tokens: list[str] = []
        if not structure_only:
            _tokenize(node, tokens)
        return TableTree(
            node.tag,
            int(node.attrib.get("colspan", "1")),
            int(node.attrib.get("rowspan", "1")),
            tokens[1:-1],
        )
    tree = TableTree(node.tag, None, None, None)
    tree.children = [_load_tree(child, structure_only) for child in node.getchildren()]
    return tree


def reference_teds(pred: str, true: str, structure_only: bool = False) -> float:
    """TEDS as the reference computes it (raising wherever the reference raises)."""
    if (not pred) or (not true):
        return 0.0
    parser = html.HTMLParser(remove_comments=True, encoding="utf-8")
    pred_root = html.fromstring(pred, parser=parser)
    true_root = html.fromstring(true, parser=parser)
    if not (pred_root.xpath("body/table") and true_root.xpath("body/table")):
        return 0.0
    pred_table = pred_root.xpath("body/table")[0]
    true_table = true_root.xpath("body/table")[0]
    n_nodes = max(len(pred_table.xpath(".//*")), len(true_table.xpath(".//*")))
    distance = APTED(
        _load_tree(pred_table, structure_only),
        _load_tree(true_table, structure_only),
        TableConfig(),
    ).compute_edit_distance()
    return 1.0 - float(distance) / n_nodes
