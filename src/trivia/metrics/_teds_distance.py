"""The tree edit distance of TEDS: Zhang and Shasha's dynamic programme, compiled with numba.

Any exact ordered-tree edit distance algorithm gives the distance the reference's APTED gives;
Zhang–Shasha takes time O(n·m·k₁·k₂) where k is a tree's depth or leaf count, whichever is
smaller, and table trees are shallow (table → thead/tbody → tr → td), so it is O(n·m) here.
Insert and delete cost 1; rename costs 1 when the labels (tag and spans) differ, the cell's
normalised Levenshtein distance when both nodes are cells, else 0. All sums are float64, added
along left paths of the trees as given (`teds` passes mirror images where that sums in the
reference's order).

One exact shortcut: the distance between a single node `i` and a subtree `T_j` is
`|T_j| − 1 + min over v in T_j of rename(i, v)`: map `i` to its cheapest partner and insert the
rest (leaving `i` unmapped costs `|T_j| + 1`, more, since a rename costs at most 1). So each
leaf key root — about a third of a table's key roots, one per cell but the first of its row —
takes one pass over the other tree instead of a forest-distance programme per key root of it.
"""

from __future__ import annotations

from collections.abc import Callable

from numba import njit


def _compiled(function: Callable) -> Callable:
    """Compile with the on-disk cache (a first call costs a cache load, not a compilation); where
    no cache directory is writable (a read-only install without NUMBA_CACHE_DIR), compile once
    per process instead of failing."""
    try:
        return njit(cache=True, nogil=True)(function)
    except RuntimeError:
        return njit(nogil=True)(function)


@_compiled
def _rename(i, j, labels1, labels2, ids1, ids2, costs):
    if labels1[i] != labels2[j]:
        return 1.0
    row = ids1[i]
    column = ids2[j]
    if row < 0 or column < 0:
        return 0.0
    return costs[row, column]


@_compiled
def _propagate_minima(values, parent):
    """Replace each node's value by the least over its subtree (children precede parents)."""
    for v in range(values.shape[0] - 1):
        p = parent[v]
        if values[v] < values[p]:
            values[p] = values[v]


@_compiled
def tree_edit_distance(
    leftmost1,
    parent1,
    keyroots1,
    leaf_keyroots1,
    labels1,
    ids1,
    leftmost2,
    parent2,
    keyroots2,
    leaf_keyroots2,
    labels2,
    ids2,
    costs,
    trees,
    forest,
    scratch,
):
    """Edit distance between two trees given in postorder (see `_teds_tree.Postorder`).

    `labels` are interned label ids; `ids` map nodes to rows (tree 1) or columns (tree 2) of
    `costs`, the rename costs between distinct cell contents (-1 for nodes that are not cells,
    and for every node when structure only). `trees` (n1 × n2), `forest` ((n1 + 1) × (n2 + 1))
    and `scratch` (n2) are float64 work arrays; `trees` ends up holding every subtree-to-subtree
    distance. Nothing is allocated here, which keeps compilation short.
    """
    n1 = leftmost1.shape[0]
    n2 = leftmost2.shape[0]
    # Leaf key roots against every subtree of the other tree, in closed form: a leaf key root
    # of tree 1 at a time (a row of `trees`), then all leaf key roots of tree 2 together (their
    # columns, filled row by row).
    for i in leaf_keyroots1:
        for j in range(n2):
            scratch[j] = _rename(i, j, labels1, labels2, ids1, ids2, costs)
        _propagate_minima(scratch, parent2)
        for j in range(n2):
            trees[i, j] = (j - leftmost2[j]) + scratch[j]
    for i in range(n1):
        for j in leaf_keyroots2:
            trees[i, j] = _rename(i, j, labels1, labels2, ids1, ids2, costs)
    for i in range(n1 - 1):
        p = parent1[i]
        for j in leaf_keyroots2:
            if trees[i, j] < trees[p, j]:
                trees[p, j] = trees[i, j]
    for i in range(n1):
        below = i - leftmost1[i]
        for j in leaf_keyroots2:
            trees[i, j] = below + trees[i, j]
    # Forest distances for every pair of inner key roots, in increasing postorder.
    for k1 in keyroots1:
        l1 = leftmost1[k1]
        for k2 in keyroots2:
            l2 = leftmost2[k2]
            forest[0, 0] = 0.0
            for j in range(l2, k2 + 1):
                forest[0, j - l2 + 1] = forest[0, j - l2] + 1.0
            for i in range(l1, k1 + 1):
                x = i - l1 + 1
                li = leftmost1[i]
                base = li - l1
                left = forest[x - 1, 0] + 1.0
                forest[x, 0] = left
                if li == l1:
                    for j in range(l2, k2 + 1):
                        y = j - l2 + 1
                        lj = leftmost2[j]
                        if lj == l2:
                            cost = _rename(i, j, labels1, labels2, ids1, ids2, costs)
                            best = min(forest[x - 1, y] + 1.0, forest[x - 1, y - 1] + cost)
                            left = min(best, left + 1.0)
                            trees[i, j] = left
                        else:
                            best = min(forest[x - 1, y] + 1.0, forest[base, lj - l2] + trees[i, j])
                            left = min(best, left + 1.0)
                        forest[x, y] = left
                else:
                    # Off the left path (most rows): no branch, and only `left` carries from one
                    # cell to the next, so it is combined last.
                    for j in range(l2, k2 + 1):
                        y = j - l2 + 1
                        best = min(
                            forest[x - 1, y] + 1.0, forest[base, leftmost2[j] - l2] + trees[i, j]
                        )
                        left = min(best, left + 1.0)
                        forest[x, y] = left
    return trees[n1 - 1, n2 - 1]
