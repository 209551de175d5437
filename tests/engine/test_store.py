"""The resumable JSONL store: keys survive reopening, torn writes are dropped, one writer."""

from __future__ import annotations

import json

import pytest

from trivia.engine.store import ResultStore, StoreLocked, work_key


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_records_survive_reopening_and_written_keys_are_skipped(tmp_path):
    path = tmp_path / "out" / "results.jsonl"
    with ResultStore(path) as store:
        store.write({"key": "a", "value": 1})
        store.write({"key": "b", "value": 2})
        store.write({"key": "a", "value": 99})  # already written: ignored
        assert store.done("a") and not store.done("c") and len(store) == 2
    with ResultStore(path) as store:
        assert store.done("a") and store.done("b") and not store.dropped_torn_line
        store.write({"key": "c", "value": 3})
        assert [r["value"] for r in store.records()] == [1, 2, 3]
    assert [r["key"] for r in _lines(path)] == ["a", "b", "c"]


def test_a_torn_last_line_is_dropped_and_truncated(tmp_path):
    path = tmp_path / "results.jsonl"
    path.write_text('{"key": "a"}\n{"key": "b"}\n{"key": "c", "val')
    with ResultStore(path) as store:
        assert store.dropped_torn_line
        assert store.done("b") and not store.done("c")
        store.write({"key": "c", "value": 3})
    assert path.read_text() == '{"key": "a"}\n{"key": "b"}\n{"key":"c","value":3}\n'


def test_a_whole_last_record_without_its_newline_is_kept(tmp_path):
    path = tmp_path / "results.jsonl"
    path.write_text('{"key": "a"}\n{"key": "b"}')
    with ResultStore(path) as store:
        assert store.done("b") and not store.dropped_torn_line
        store.write({"key": "c"})
    assert [r["key"] for r in _lines(path)] == ["a", "b", "c"]


def test_damage_before_the_last_line_is_an_error_not_data_loss(tmp_path):
    path = tmp_path / "results.jsonl"
    original = '{"key": "a"}\nnot json\n{"key": "c"}\n'
    path.write_text(original)
    with pytest.raises(ValueError, match=":2:"):
        ResultStore(path)
    assert path.read_text() == original


def test_records_need_keys_and_one_writer_at_a_time(tmp_path):
    path = tmp_path / "results.jsonl"
    with ResultStore(path) as store:
        with pytest.raises(ValueError):
            store.write({"value": 1})
        with pytest.raises(StoreLocked):
            ResultStore(path)
    with ResultStore(path) as again:  # released on close
        assert len(again) == 0


def test_work_keys_depend_on_every_part_and_its_boundaries():
    base = work_key("img", "model", 4, 1.0)
    assert base == work_key("img", "model", 4, 1.0)
    assert len(base) == 64
    others = {
        work_key("img", "model", 4, 0.7),
        work_key("img", "model", 8, 1.0),
        work_key("img", "other", 4, 1.0),
        work_key("im", "gmodel", 4, 1.0),
    }
    assert base not in others and len(others) == 4


def test_records_are_read_back_by_key_from_an_index_after_reopening(tmp_path):
    path = tmp_path / "s.jsonl"
    with ResultStore(path) as store:
        for i in range(50):
            store.write({"key": f"k{i}", "value": i, "pad": "x" * i})
        assert store.get("k7") == {"key": "k7", "value": 7, "pad": "x" * 7}
    with ResultStore(path) as store:
        assert store.get("k49")["value"] == 49 and store.get("missing") is None
        store.write({"key": "new", "value": -1})
        assert store.get("new")["value"] == -1 and store.get("k0")["value"] == 0
