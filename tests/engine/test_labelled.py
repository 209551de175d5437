"""Reading labelled sets: PubTabNet JSONL, dataset rows, and PubTabNet's evaluation JSON."""

from __future__ import annotations

import json

import pytest

from trivia.dataset import pubtabnet_html
from trivia.engine.labelled import load_labelled


def test_pubtabnet_jsonl_finds_images_beside_it(pubtabnet_dir):
    tables = load_labelled(pubtabnet_dir / "examples.jsonl")
    assert len(tables) == 20
    first = json.loads((pubtabnet_dir / "examples.jsonl").read_text().splitlines()[0])
    assert tables[0].name == first["filename"]
    assert tables[0].image == (pubtabnet_dir / "images" / first["filename"]).resolve()
    assert tables[0].html == pubtabnet_html(first["html"])
    assert all(t.image is not None and t.image.is_file() for t in tables)


def test_dataset_rows_take_the_solution_or_the_assistant_turn(tmp_path, image_paths):
    rows = [
        {"messages": [{"role": "user", "content": "<image>"}], "images": [str(image_paths[0])],
         "qa_pairs": [], "solution": "<table><tr><td>a</td></tr></table>"},
        {"messages": [{"role": "user", "content": "<image>"},
                      {"role": "assistant", "content": "<fcel>x<fcel>y<nl>\n"}],
         "images": ["images/b.png"]},
        {"messages": [{"role": "user", "content": "<image>"},
                      {"role": "assistant", "content": "<table></table>"}],
         "images": ["c.png"]},  # a placeholder turn: no ground truth, skipped
        {"messages": [], "images": [str(image_paths[0])],
         "solution": "<table><tr><td>b</td></tr></table>"},
    ]  # fmt: skip
    path = tmp_path / "val.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tables = load_labelled(path)
    assert [t.name for t in tables] == [image_paths[0].name, "b.png", f"{image_paths[0].name}#2"]
    assert tables[0].html == rows[0]["solution"] and tables[0].image == image_paths[0]
    assert tables[1].html == "<table><tr><td>x</td><td>y</td></tr></table>"
    assert tables[1].image == (tmp_path / "images" / "b.png").resolve()
    other = load_labelled(path, images_dir=tmp_path / "elsewhere")
    assert other[1].image == (tmp_path / "elsewhere" / "images" / "b.png").resolve()


def test_the_evaluation_map_has_no_images(pubtabnet_dir):
    tables = load_labelled(pubtabnet_dir / "sample_gt.json")
    gt = json.loads((pubtabnet_dir / "sample_gt.json").read_text())
    assert [t.name for t in tables] == list(gt)
    assert all(t.image is None for t in tables)
    assert tables[0].html == gt[tables[0].name]["html"]


def test_other_records_are_refused(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"question": "what?"}\n')
    with pytest.raises(ValueError, match=r"x\.jsonl:1"):
        load_labelled(path)
