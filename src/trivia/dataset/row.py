"""The training-row format (ms-swift JSONL) and the checks a row must pass without touching disk.

One row, one JSON object::

    {"messages": [{"role": "user", "content": "<image>Recognise this table."},
                  {"role": "assistant", "content": "<placeholder or ground-truth table>"}],
     "images": ["images/table_0001.png"],
     "qa_pairs": [{"question": "How many patients were male?", "answer": "42"},
                  {"question": "Unit of weight?", "answer": ["kg", "kilograms"]}],
     "solution": "<table>…</table>"}   # optional ground-truth HTML

Each ``<image>`` tag in the messages stands for the image at the same position in ``images``.
Other columns are allowed: ms-swift hands every column to the reward functions.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from trivia.tables import html_to_table

IMAGE_TAG = "<image>"


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


NonEmptyText = Annotated[str, Field(strict=True), AfterValidator(_not_blank)]


def _answer(value: Any) -> str | list[str]:
    if isinstance(value, str):
        return _not_blank(value)
    if not isinstance(value, list) or not all(isinstance(alias, str) for alias in value):
        raise ValueError("not a string or a list of strings")
    if not value:
        raise ValueError("must not be an empty list")
    for alias in value:
        _not_blank(alias)
    return value


class Message(BaseModel):
    """One chat turn."""

    model_config = ConfigDict(extra="allow")

    role: Literal["system", "user", "assistant", "tool"]
    content: Annotated[str, Field(strict=True)]


class QAPair(BaseModel):
    """A question about the table image and the answer read from the image."""

    model_config = ConfigDict(extra="allow")

    question: NonEmptyText
    # One known answer, or a list of accepted answers (scored by the best match).
    answer: Annotated[Any, AfterValidator(_answer)]


class TrainingRow(BaseModel):
    """One training or validation example."""

    model_config = ConfigDict(extra="allow")

    messages: Annotated[list[Message], Field(min_length=1)]
    images: Annotated[list[NonEmptyText], Field(min_length=1)]
    qa_pairs: Annotated[list[QAPair], Field(min_length=1)]
    solution: NonEmptyText | None = None


_FIELD_ERRORS = {
    "missing": "missing",
    "list_type": "not a list",
    "model_type": "not an object",
    "model_attributes_type": "not an object",
    "string_type": "not a string",
    "too_short": "empty",
}


def _location(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text


def _describe(error: Any) -> str:
    reason = _FIELD_ERRORS.get(error["type"])
    if reason is None:
        reason = error["msg"].removeprefix("Value error, ")
    return f"{_location(error['loc'])}: {reason}"


def _consistency_problems(row: TrainingRow) -> list[str]:
    problems = []
    user_tags = sum(m.content.count(IMAGE_TAG) for m in row.messages if m.role == "user")
    if user_tags == 0:
        problems.append(f"no {IMAGE_TAG} in a user turn")
    all_tags = sum(m.content.count(IMAGE_TAG) for m in row.messages)
    if all_tags != len(row.images):
        problems.append(f"{all_tags} {IMAGE_TAG} tags but {len(row.images)} images")
    if row.solution is not None and html_to_table(row.solution) is None:
        problems.append("solution: contains no table")
    return problems


def row_problems(data: object) -> list[str]:
    """Every reason why ``data`` (a decoded JSON value) is not a usable training row.

    An empty list means the row is good, as far as can be told without reading the images.
    """
    if not isinstance(data, dict):
        return ["row is not a JSON object"]
    try:
        row = TrainingRow.model_validate(data)
    except ValidationError as error:
        return [_describe(e) for e in error.errors(include_url=False)]
    return _consistency_problems(row)
