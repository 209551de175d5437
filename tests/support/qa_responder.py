"""The generator and verifier `trivia data qa` is tested (and the quick start run) against.

`QAResponder` plays both models from the PubTabNet ground truth of the shipped images:

- to a generation prompt it proposes questions read from the table in row order (the next ones
  not yet proposed), and in the first round also one bad item of every kind: a question that
  general knowledge answers, one with a wrong answer, rephrasings (one in the same words, one
  that only verification can tell apart), arithmetic, comparison and layout questions, a long
  answer, list answers and an item without an answer (in every reply to a prompt that lists no
  earlier questions, so a restarted image gets the same). Images named in `broken` get a reply
  that is not JSON on their first generation call;
- to a verification prompt with the image it answers with the lookup answerer on the table;
- to a blind prompt (no image) it answers only general-knowledge questions.
"""

from __future__ import annotations

import json
import random
import re
import threading
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from tests.support.vlm_stub import StubRequest, perturb

from trivia.dataset import pubtabnet_html
from trivia.dataset.qa_from_table import qa_from_table
from trivia.engine.images import image_key
from trivia.engine.prompts import OTSL_PROMPT
from trivia.engine.qa_prompts import question_in
from trivia.qa.lookup import answer_question
from trivia.qa.prompts import NOT_ANSWERABLE
from trivia.tables import html_to_table, table_to_otsl

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "pubtabnet"
GENERAL_KNOWLEDGE = {"What is the capital of France?": "Paris"}
# The first-round bad items and the drop reason each must end under.
BAD_ITEM_REASONS = {
    "blind": "blind_answerable",
    "wrong": "wrong",
    "same_words": "duplicate",
    "near_duplicate": "duplicate",
    "arithmetic": "arithmetic",
    "comparison": "comparison",
    "layout": "layout",
    "long_answer": "long_answer",
    "list_answer": "multi_value",
    "joined_answer": "multi_value",
    "no_answer": "malformed",
}
_ROW_COLUMN = re.compile(r"^What is the value in row (?P<row>.+), column (?P<col>.+)\?$")
_COUNT = re.compile(r"Propose (\d+) questions")


def table_pairs(html: str) -> list[dict[str, str]]:
    """Cell questions about a ground-truth table in "What is the <column> of <row>?" form.

    In row order; each is answered correctly by the lookup answerer on the table.
    """
    pairs = []
    for pair in qa_from_table(html, max_questions=10_000):
        match = _ROW_COLUMN.match(pair["question"])
        question = f"What is the {match['col']} of {match['row']}?" if match else pair["question"]
        if answer_question(html, question) == pair["answer"]:
            pairs.append({"question": question, "answer": pair["answer"]})
    return pairs


def load_examples(names: Collection[str]) -> dict[str, dict[str, Any]]:
    """For each named example: its image path, image key and ground-truth HTML."""
    found = {}
    for line in (EXAMPLES / "examples.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if record["filename"] in names:
            path = (EXAMPLES / "images" / record["filename"]).resolve()
            html = pubtabnet_html(record["html"])
            found[record["filename"]] = {"path": path, "key": image_key(path), "html": html}
    return found


def sample_record(example: Mapping[str, Any], *, k: int = 3) -> dict[str, Any]:
    """A `trivia data sample` record for an example: the true table and K-1 perturbed ones."""
    table = html_to_table(example["html"])
    assert table is not None
    rng = random.Random(example["key"])
    outputs = [table_to_otsl(table)] + [
        table_to_otsl(perturb(table, rng, kind))
        for kind in ("drop_row", "change_cell", "drop_row")[: k - 1]
    ]
    return {
        "key": f"sample-{example['key'][:12]}",
        "image": str(example["path"]),
        "image_key": example["key"],
        "format": "otsl",
        "prompt": OTSL_PROMPT,
        "outputs": [{"text": text, "finish_reason": "stop", "valid": True} for text in outputs],
        "consistency": 0.9,
    }


def _rephrase(question: str) -> str:
    return question.replace("What is the ", "What's the ", 1).replace(" of ", " for ", 1)


def bad_items(pairs: list[dict[str, str]]) -> dict[str, dict[str, Any]]:
    """One item of every bad kind (see `BAD_ITEM_REASONS`) for a table with these pairs."""
    items: dict[str, dict[str, Any]] = {
        "blind": {"question": "What is the capital of France?", "answer": "Paris"},
        "arithmetic": {"question": "What is the sum of all values in the table?", "answer": "42"},
        "comparison": {"question": "Which entry has the highest value?", "answer": "G1"},
        "layout": {"question": "What is written in the third row?", "answer": "0.716"},
        "long_answer": {
            "question": "What does the table describe?",
            "answer": "the outcome of every patient in the trial over the five years it ran",
        },
        "list_answer": {"question": "Which groups are listed?", "answer": ["G1", "G2"]},
        "joined_answer": {"question": "Which grades are listed?", "answer": "G1, G2 and G3"},
        "no_answer": {"question": "What is missing here?"},
    }
    if len(pairs) >= 3:
        first, last = pairs[0], pairs[-1]
        wrong = next((p["answer"] for p in pairs if p["answer"] != last["answer"]), "0")
        items["wrong"] = {"question": last["question"], "answer": wrong}
        items["same_words"] = {"question": _rephrase(first["question"]), "answer": first["answer"]}
        near = first["question"].rstrip("?") + " in this table?"
        items["near_duplicate"] = {"question": near, "answer": first["answer"]}
    return items


class QAResponder:
    """Generator and verifier in one responder (see the module docstring); thread-safe."""

    def __init__(
        self, tables: Mapping[str, str], *, broken: Collection[str] = (), with_bad_items=True
    ) -> None:
        """`with_bad_items=False`: propose only good questions (the quick start's generator)."""
        self.tables = dict(tables)
        self.with_bad_items = with_bad_items
        self.pairs = {key: table_pairs(html) for key, html in self.tables.items()}
        self.broken = set(broken)
        self._lock = threading.Lock()
        self.generation_calls: dict[str, int] = {}

    def __call__(self, request: StubRequest) -> str:
        question = question_in(request.prompt)
        if question is None:
            if len(request.image_keys) != 1 or not _COUNT.search(request.prompt):
                return ""
            return self._generate(request)
        if request.image_keys:
            table = self.tables.get(request.image_keys[0], "")
            return f"<answer>{answer_question(table, question)}</answer>"
        return f"<answer>{GENERAL_KNOWLEDGE.get(question, NOT_ANSWERABLE)}</answer>"

    def _generate(self, request: StubRequest) -> str:
        key = request.image_keys[0]
        with self._lock:
            self.generation_calls[key] = self.generation_calls.get(key, 0) + 1
            broken = key in self.broken
            self.broken.discard(key)
        if broken:
            return "I am sorry, here is a table of questions: | Q | A |"
        match = _COUNT.search(request.prompt)
        count = int(match.group(1)) if match else 10
        asked = {line[2:] for line in request.prompt.splitlines() if line.startswith("- ")}
        pairs = self.pairs.get(key, [])
        reserved = pairs[-1:] if len(pairs) >= 3 else []
        fresh = [p for p in pairs if p["question"] not in asked and p not in reserved][:count]
        items: list[dict[str, Any]] = list(fresh)
        if self.with_bad_items and "already proposed" not in request.prompt:
            items += bad_items(pairs).values()
        return "```json\n" + json.dumps(items, ensure_ascii=False) + "\n```"
