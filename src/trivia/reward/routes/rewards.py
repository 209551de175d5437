"""`POST /v1/rewards`: plan, enqueue one job per unique table, await, assemble."""

from __future__ import annotations

import contextlib
import functools
import json
import time
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import ValidationError
from redis.exceptions import RedisError
from starlette.concurrency import run_in_threadpool

from trivia.reward import metrics
from trivia.reward.api import ErrorDetail, RewardRequest, RewardResponse
from trivia.reward.assemble import assemble
from trivia.reward.enqueue import QueueUnavailable, enqueue_jobs, job_payload
from trivia.reward.gateway_state import GatewayState, get_state
from trivia.reward.inspector.record import build_record
from trivia.reward.keys import request_results_key
from trivia.reward.planner import Plan, plan
from trivia.reward.results import await_results
from trivia.settings import Settings

router = APIRouter(prefix="/v1", tags=["rewards"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorDetail, "description": "Malformed JSON."},
    401: {"model": ErrorDetail, "description": "Missing or wrong bearer token."},
    413: {
        "model": ErrorDetail,
        "description": "Body, item count or questions per request over the limit (named).",
    },
    422: {
        "model": ErrorDetail,
        "description": "A field is invalid, or an item has more questions than the limit (named).",
    },
    503: {"model": ErrorDetail, "description": "The queue (Redis) is unreachable."},
}
# The body is parsed here, in a worker thread, so that a 15 MB request does not hold the event
# loop (and /healthz with it); the schema is added to the OpenAPI document by `app._openapi`.
_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/RewardRequest"}}},
    }
}


def _parse(raw: bytes) -> RewardRequest:
    try:
        return RewardRequest.model_validate_json(raw)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from None


def _check_limits(body: RewardRequest, settings: Settings) -> None:
    if len(body.items) > settings.max_items:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"{len(body.items)} items; at most {settings.max_items} per request (max_items)",
        )
    total = 0
    for index, item in enumerate(body.items):
        count = len(item.qa_pairs)
        if count > settings.max_questions_per_item:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                f"item {index} ({item.id!r}) has {count} questions; at most "
                f"{settings.max_questions_per_item} per item (max_questions_per_item)",
            )
        total += count
    if total > settings.max_questions_per_request:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"{total} questions; at most {settings.max_questions_per_request} per request "
            "(max_questions_per_request)",
        )


@router.post(
    "/rewards",
    response_model=RewardResponse,
    responses=_ERRORS,
    summary="Score recognised tables",
    openapi_extra=_BODY,
)
async def create_rewards(
    request: Request,
    state: Annotated[GatewayState, Depends(get_state)],
    # `int`, not `int | None`: an absent header is None, but "null" is no step.
    x_trivia_step: Annotated[
        int,  # noqa: RUF013
        Header(ge=0, description="The training step the batch belongs to (for `/inspect`)."),
    ] = None,  # type: ignore[assignment]
) -> Response:
    """Score each item: validity, QA-F1 from answers given from the recognised table, TEDS.

    Invalid (truncated, unparseable) completions score 0.0 without a QA call. Items with no
    questions, and items whose questions failed for reasons outside the table (QA service
    errors, the deadline), get `qa_f1: null`, the latter with an `error`. Results come back in
    request order. Redis unreachable for longer than the enqueue allowance answers 503. The
    request is kept for `/inspect` (after the response), with the trainer's step if it sent one.
    """
    started = time.monotonic()
    started_at = time.time()
    settings = state.settings
    deadline = started + settings.request_deadline_s
    try:
        body = await run_in_threadpool(_parse, await request.body())
        _check_limits(body, settings)
        work = await run_in_threadpool(plan, body)
        metrics.STAGE_DURATION.labels("plan").observe(time.monotonic() - started)
        metrics.DEDUPE_SAVED_CALLS.inc(work.qa_calls_naive - work.qa_calls_planned)
        results = await _run_jobs(state, work, deadline) if work.jobs else {}
        assembled_at = time.monotonic()
        missing = f"deadline: not scored within {settings.request_deadline_s:g} s"
        items, out = await run_in_threadpool(_respond, body, work, results, missing)
        metrics.STAGE_DURATION.labels("assemble").observe(time.monotonic() - assembled_at)
    except HTTPException as exc:
        metrics.REQUESTS.labels(str(exc.status_code)).inc()
        raise
    metrics.REQUESTS.labels("200").inc()
    duration_s = time.monotonic() - started
    metrics.REQUEST_DURATION.observe(duration_s)
    state.recorder.submit(
        functools.partial(
            build_record,
            request_id=uuid.uuid4().hex[:16],
            time=started_at,
            duration_s=duration_s,
            step=x_trivia_step,
            request=body,
            plan=work,
            results=results,
            items=items,
        )
    )
    return Response(out, media_type="application/json")


async def _run_jobs(state: GatewayState, work: Plan, deadline: float) -> dict[int, dict[str, Any]]:
    settings = state.settings
    request_id = uuid.uuid4().hex
    key = request_results_key(request_id)
    wall_deadline = time.time() + (deadline - time.monotonic())
    payloads = [
        job_payload(
            request_id, index, job, notify=key, ttl_s=settings.result_ttl_s, deadline=wall_deadline
        )
        for index, job in enumerate(work.jobs)
    ]
    enqueue_started = time.monotonic()
    try:
        await run_in_threadpool(
            enqueue_jobs,
            state.queue,
            request_id,
            payloads,
            job_timeout_s=int(settings.request_deadline_s) + 60,
            ttl_s=int(settings.request_deadline_s) + 1,
            retries=settings.job_retries,
            failure_ttl_s=settings.failure_ttl_s,
            give_up_at=min(deadline, enqueue_started + settings.enqueue_retry_s),
        )
    except QueueUnavailable as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from exc
    waiting_from = time.monotonic()
    metrics.STAGE_DURATION.labels("enqueue").observe(waiting_from - enqueue_started)
    results = await await_results(state.redis, key, range(len(payloads)), deadline)
    metrics.STAGE_DURATION.labels("wait").observe(time.monotonic() - waiting_from)
    with contextlib.suppress(RedisError, OSError):  # else the list expires on its own
        await state.redis.delete(key)
    return results


def _respond(
    body: RewardRequest, work: Plan, results: dict[int, dict[str, Any]], missing: str
) -> tuple[list[dict[str, Any]], bytes]:
    items = assemble(body, work, results, missing)
    for item in items:
        if not item["valid"]:
            metrics.ITEMS.labels("invalid").inc()
        elif item["error"] is not None:
            metrics.ITEMS.labels("failed").inc()
        elif item["qa_f1"] is None:
            metrics.ITEMS.labels("no_signal").inc()
        else:
            metrics.ITEMS.labels("valid").inc()
            metrics.REWARD.observe(item["qa_f1"])
    return items, json.dumps({"results": items}, separators=(",", ":")).encode()
