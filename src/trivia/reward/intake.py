"""From a request body's bytes to the jobs it asks for, and from their results to the answer (pure).

`read_request` parses and validates a body, applies the per-request caps and plans the jobs, or
says why the request is refused; `render` assembles and encodes the response. The gateway runs
them in a worker thread for small bodies and in a child process for large ones (`body_pool`);
both give the same answer because both run these functions.

A large request never becomes Python objects in the gateway process: the child returns only its
jobs (`AcceptedRaw`), and reads the kept bytes again to render the response. A full garbage
collection walks every object while it holds the GIL; with four 15 MB requests parsed into
models in the gateway, such collections took 0.2–0.7 s, during which nothing else ran.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from trivia.reward.api import RewardRequest
from trivia.reward.assemble import assemble
from trivia.reward.planner import Plan, TableJob, plan
from trivia.settings import Settings


@dataclass(frozen=True)
class Limits:
    """The caps a request must stay within (from `Settings`; picklable for a child process)."""

    max_items: int
    max_questions_per_item: int
    max_questions_per_request: int

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(
            max_items=settings.max_items,
            max_questions_per_item=settings.max_questions_per_item,
            max_questions_per_request=settings.max_questions_per_request,
        )


@dataclass(frozen=True)
class Accepted:
    """A valid request within the caps, parsed in this process, and the jobs that score it."""

    request: RewardRequest
    plan: Plan

    @property
    def jobs(self) -> list[TableJob]:
        return self.plan.jobs

    @property
    def saved_calls(self) -> int:
        """QA calls saved by asking each (table, question) once."""
        return self.plan.qa_calls_naive - self.plan.qa_calls_planned


@dataclass(frozen=True)
class AcceptedRaw:
    """A valid request read in a child process: its jobs, and its body kept as bytes."""

    raw: bytes
    jobs: list[TableJob]
    saved_calls: int


@dataclass(frozen=True)
class Refused:
    """Why the request is refused: the HTTP status and the `detail` the client reads."""

    status_code: int
    detail: str | list[dict[str, Any]]


@dataclass(frozen=True)
class Rendered:
    """The response body, what the gateway's metrics count, and (when asked) the result dicts."""

    content: bytes
    outcomes: dict[str, int]
    rewards: list[float]
    items: list[dict[str, Any]] = field(default_factory=list)


def validation_refusal(errors: Iterable[Mapping[str, Any]]) -> Refused:
    """Malformed JSON is a 400 with the parser's reason; anything else a 422 per field."""
    errors = list(errors)
    for error in errors:
        if error.get("type") == "json_invalid":
            reason = (error.get("ctx") or {}).get("error", "JSON decode error")
            return Refused(400, f"malformed JSON: {reason}")
    fields = [
        {"type": e.get("type"), "loc": list(e.get("loc", ())), "msg": e.get("msg")} for e in errors
    ]
    return Refused(422, fields)


def over_limits(request: RewardRequest, limits: Limits) -> Refused | None:
    """The first cap the request breaks, named, or None."""
    if len(request.items) > limits.max_items:
        return Refused(
            413, f"{len(request.items)} items; at most {limits.max_items} per request (max_items)"
        )
    total = 0
    for index, item in enumerate(request.items):
        count = len(item.qa_pairs)
        if count > limits.max_questions_per_item:
            return Refused(
                422,
                f"item {index} ({item.id!r}) has {count} questions; at most "
                f"{limits.max_questions_per_item} per item (max_questions_per_item)",
            )
        total += count
    if total > limits.max_questions_per_request:
        return Refused(
            413,
            f"{total} questions; at most {limits.max_questions_per_request} per request "
            "(max_questions_per_request)",
        )
    return None


def read_request(raw: bytes, limits: Limits) -> Accepted | Refused:
    """Parse, validate, cap and plan one `POST /v1/rewards` body."""
    try:
        request = RewardRequest.model_validate_json(raw)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        return validation_refusal(errors)
    refused = over_limits(request, limits)
    if refused is not None:
        return refused
    return Accepted(request, plan(request))


def read_request_raw(raw: bytes, limits: Limits) -> AcceptedRaw | Refused:
    """`read_request` returning only the jobs (run in a child process; the body stays bytes)."""
    read = read_request(raw, limits)
    if isinstance(read, Refused):
        return read
    return AcceptedRaw(b"", read.jobs, read.saved_calls)


def reread(raw: bytes, limits: Limits) -> Accepted:
    """A body `read_request` accepted before, read again (the same jobs, in the same order)."""
    read = read_request(raw, limits)
    if isinstance(read, Refused):
        raise RuntimeError(f"a request accepted before is refused now: {read.detail}")
    return read


def render(
    source: Accepted | bytes,
    limits: Limits,
    results: dict[int, dict[str, Any]],
    missing: str,
    *,
    keep_items: bool = True,
) -> Rendered:
    """The response of an accepted request (given parsed, or as the bytes to read again)."""
    accepted = source if isinstance(source, Accepted) else reread(source, limits)
    items = assemble(accepted.request, accepted.plan, results, missing)
    outcomes: Counter[str] = Counter()
    rewards: list[float] = []
    for item in items:
        if not item["valid"]:
            outcomes["invalid"] += 1
        elif item["error"] is not None:
            outcomes["failed"] += 1
        elif item["qa_f1"] is None:
            outcomes["no_signal"] += 1
        else:
            outcomes["valid"] += 1
            rewards.append(item["qa_f1"])
    content = json.dumps({"results": items}, separators=(",", ":")).encode()
    return Rendered(content, dict(outcomes), rewards, items if keep_items else [])
