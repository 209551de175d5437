"""The versioned JSON contract of `POST /v1/rewards`: request and response models.

Models are strict (a boolean is not a number, a number is not a string) and refuse unknown
fields, so the OpenAPI schema FastAPI derives from them says exactly what the gateway accepts.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

Metric = Literal["qa_f1", "teds"]


def _encodable(text: str) -> str:
    # JSON can carry lone surrogates; no table parser, hash or HTTP client downstream can.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("text must be valid Unicode (no lone surrogates)") from exc
    return text


Text = Annotated[str, AfterValidator(_encodable)]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


_Aliases = Annotated[list[Text], Field(min_length=1)]


class QAPair(_Strict):
    """A question about the table image and its known answer (or accepted answers)."""

    question: Text
    answer: Text | _Aliases = Field(
        description="The known answer, or a list of accepted answers scored by the best F1."
    )


class RewardItem(_Strict):
    """One recognised table to score."""

    id: Text = Field(description="Echoed back in the result.")
    completion: Text = Field(description="The policy's output: OTSL or HTML.")
    qa_pairs: list[QAPair] = Field(default_factory=list)
    solution: Text | None = Field(
        default=None, description="Ground-truth HTML; needed for `teds` (validation rows)."
    )


class RewardRequest(_Strict):
    """A batch of completions, scored independently; results come back in the same order."""

    items: list[RewardItem]
    metrics: list[Metric] = Field(default_factory=lambda: ["qa_f1"])


class AnswerDetail(_Strict):
    """How one question was answered from the recognised table."""

    question: str
    answer: str | list[str] = Field(description="The known answer or its accepted aliases.")
    prediction: str | None = Field(description="The answer extracted from the QA model's reply.")
    f1: float | None = Field(
        description="QA-F1 of prediction against answer (best over aliases); null on failure."
    )
    error: str | None = None


class RewardResult(_Strict):
    """The scores of one item.

    `valid: false` means the completion is truncated, unparseable or (with an `error` saying so)
    a table whose spans expand past the grid bound: the policy's fault, scored
    0.0. `qa_f1: null` means no signal: no questions, or an infrastructure failure that `error`
    names. A failure is never reported as a score of 0.
    """

    id: str
    valid: bool
    qa_f1: float | None
    teds: float | None = Field(None, description="TEDS against `solution`, raw (PubTabNet).")
    teds_norm: float | None = Field(
        None, description="TEDS with both tables normalised first (header cells, whitespace…)."
    )
    error: str | None = None
    answers: list[AnswerDetail] = Field(default_factory=list)


class RewardResponse(_Strict):
    """One result per request item, in request order."""

    results: list[RewardResult]


class ErrorDetail(BaseModel):
    """The body of every 4xx/5xx answer."""

    detail: str | list[dict[str, object]]
