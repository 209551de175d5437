from __future__ import annotations

import json
from pathlib import Path

import pytest

from trivia.dataset import pubtabnet_html
from trivia.dataset.qa_from_table import qa_from_table
from trivia.engine.qa_candidate import Location
from trivia.engine.qa_grounding import consensus_index, ground, locate_answer
from trivia.metrics import teds
from trivia.tables import html_to_otsl, otsl_to_html, to_html

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "pubtabnet" / "examples.jsonl"
RECORDS = {r["filename"]: r for r in map(json.loads, EXAMPLES.open())}


def _html(name: str) -> str:
    return pubtabnet_html(RECORDS[name]["html"])


SMALL = _html("PMC4776821_005_00.png")  # 5 × 5 counts, a "Total" row and column
HAZARDS = _html("PMC4840965_004_00.png")  # 28 × 4, "1.000" in nine rows
SPANNING = _html("PMC2759935_007_01.png")  # a header cell spanning five columns


def _means(outputs: list[str]) -> list[float]:
    html = [to_html(o) for o in outputs]
    return [
        sum(teds(a, b) for j, b in enumerate(html) if j != i) / (len(html) - 1)
        for i, a in enumerate(html)
    ]


CHANGED = SMALL.replace(">17<", ">71<")
RELABELLED = SMALL.replace(">High<", ">Hihg<")
OTHER = "<table><tr><td>x</td><td>y</td></tr></table>"


def test_the_consensus_is_the_output_closest_to_the_others() -> None:
    plain = otsl_to_html(html_to_otsl(SMALL))  # no <b>, no thead: the same as its OTSL
    outputs = [plain.replace(">17<", ">71<"), html_to_otsl(plain), plain, OTHER]
    means = _means(outputs)
    assert means[1] == means[2] == max(means) > means[0] > means[3]
    assert consensus_index(outputs) == 1  # ties go to the earliest


def test_only_valid_outputs_compete() -> None:
    outputs = [SMALL, SMALL, CHANGED, RELABELLED]
    assert consensus_index(outputs) == 0
    assert consensus_index(outputs, [False, True, True, True]) == 1
    assert consensus_index(outputs, [False, False, True, True]) == 2
    assert consensus_index(outputs, [False, False, False, False]) == 0


def test_no_table_no_consensus_and_two_tables_tie() -> None:
    assert consensus_index([]) is None
    assert consensus_index(["no table here", "<table></table>", ""]) is None
    assert consensus_index(["nothing", CHANGED, SMALL]) == 1


def test_an_answer_is_located_in_its_cell_in_either_format() -> None:
    for recognition in (SMALL, html_to_otsl(SMALL)):
        grounding = ground(recognition)
        assert grounding is not None
        assert (grounding.n_rows, grounding.n_cols) == (5, 5)
        assert locate_answer(grounding, "17", "What is the Total of Medium-High/Medium?") == (
            Location(2, 4)
        )
    assert ground("no table") is None
    assert ground("<table></table>") is None


def test_the_question_picks_among_cells_with_the_same_text() -> None:
    grounding = ground(HAZARDS)
    assert grounding is not None
    assert locate_answer(grounding, "1.000", "What is the hazard ratio of Male?") == Location(5, 1)
    assert locate_answer(grounding, "1.000", "What is the hazard ratio of G1?") == Location(15, 1)
    # Without a question the topmost cell wins.
    assert locate_answer(grounding, "1.000") == Location(2, 1)


def test_near_matches_and_misses() -> None:
    grounding = ground(SMALL)
    assert grounding is not None
    assert locate_answer(grounding, "medium-high / medium") == Location(2, 0)
    assert locate_answer(grounding, "1234") is None
    assert locate_answer(grounding, "...") is None


def test_a_spanning_cell_reports_its_spans() -> None:
    grounding = ground(SPANNING)
    assert grounding is not None
    location = locate_answer(grounding, "Multiple equilibria ruled out?")
    assert location == Location(0, 4, 1, 5)
    assert list(location.cols) == [4, 5, 6, 7, 8]


@pytest.mark.parametrize("name", sorted(RECORDS))
def test_every_generated_answer_is_located_in_the_cell_it_was_read_from(name: str) -> None:
    html = _html(name)
    grounding = ground(html)
    assert grounding is not None
    for pair in qa_from_table(html, max_questions=999):
        location = locate_answer(grounding, pair["answer"], pair["question"])
        assert location is not None, pair
        assert grounding.grid[location.row][location.col].strip() == pair["answer"]
        labels = [grounding.grid[r][0].strip() for r in location.rows]
        assert any(label and label in pair["question"] for label in labels), pair
