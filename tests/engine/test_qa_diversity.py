from __future__ import annotations

import json
from pathlib import Path

import pytest

from trivia.dataset import pubtabnet_html
from trivia.dataset.qa_from_table import qa_from_table
from trivia.engine.qa_candidate import Location
from trivia.engine.qa_diversity import coverage, select_diverse
from trivia.engine.qa_grounding import ground, locate_answer

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "pubtabnet" / "examples.jsonl"
RECORDS = {r["filename"]: r for r in map(json.loads, EXAMPLES.open())}


def test_each_pick_covers_a_new_row_and_column_while_it_can() -> None:
    # Row-major candidates of a 3 × 3 grid: the first three share row 0.
    locations = [Location(r, c) for r in range(3) for c in range(3)]
    picked = select_diverse(locations, 3)
    assert [(locations[i].row, locations[i].col) for i in picked] == [(0, 0), (1, 1), (2, 2)]
    naive = coverage(locations[:3], 3, 3)
    diverse = coverage([locations[i] for i in picked], 3, 3)
    assert (naive.rows, naive.cols) == (1, 3)
    assert (diverse.rows, diverse.cols) == (3, 3)


def test_after_full_coverage_the_least_asked_regions_come_next() -> None:
    locations = [Location(0, 0), Location(0, 0), Location(1, 1), Location(0, 1), Location(1, 0)]
    picked = select_diverse(locations, 5)
    assert picked[:2] == [0, 2]
    assert sorted(picked[2:4]) == [3, 4]  # each reuses one row and one column once
    assert picked[4] == 1  # the same cell again comes last
    assert len(set(picked)) == 5


def test_a_spanning_answer_covers_every_row_and_column_it_spans() -> None:
    locations = [Location(1, 0), Location(0, 0, 1, 3), Location(1, 1)]
    assert select_diverse(locations, 1) == [1]
    assert coverage([locations[1]], 2, 3).cols == 3


def test_unlocated_answers_share_one_region() -> None:
    locations = [None, None, Location(0, 0), None, Location(1, 1)]
    picked = select_diverse(locations, 5)
    assert set(picked[:3]) == {0, 2, 4}
    assert picked[3:] == [1, 3]
    assert coverage(locations, 2, 2) == coverage([Location(0, 0), Location(1, 1)], 2, 2)


def test_limits() -> None:
    locations = [Location(0, c) for c in range(4)]
    assert select_diverse(locations, 0) == []
    assert sorted(select_diverse(locations, 10)) == [0, 1, 2, 3]
    assert select_diverse([], 3) == []
    assert coverage([], 0, 0).row_share == 0.0


@pytest.mark.parametrize(
    "name", ["PMC3826085_003_00.png", "PMC4682394_003_00.png", "PMC5134617_013_00.png"]
)
def test_on_real_tables_the_diverse_subset_reaches_more_of_the_table(name: str) -> None:
    """Measured against taking the generator's first N questions, which follow row order."""
    html = pubtabnet_html(RECORDS[name]["html"])
    grounding = ground(html)
    assert grounding is not None
    pairs = qa_from_table(html, max_questions=999)
    locations = [locate_answer(grounding, p["answer"], p["question"]) for p in pairs]
    limit = 10
    assert len(pairs) > 3 * limit
    picked = select_diverse(locations, limit)
    diverse = coverage([locations[i] for i in picked], grounding.n_rows, grounding.n_cols)
    naive = coverage(locations[:limit], grounding.n_rows, grounding.n_cols)
    answered_rows = len({r for loc in locations if loc for r in loc.rows})
    answered_cols = len({c for loc in locations if loc for c in loc.cols})
    # Every row and column that any candidate answers from is reached, up to the limit.
    assert diverse.rows == min(answered_rows, limit)
    assert diverse.cols == answered_cols
    assert diverse.row_share >= 2 * naive.row_share
    assert diverse.cols >= naive.cols
