"""`POST /v1/rewards`: plan, enqueue one job per unique table, await, assemble."""

from __future__ import annotations

import contextlib
import functools
import time
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Request, status
from fastapi.responses import Response
from redis.exceptions import RedisError
from starlette.concurrency import run_in_threadpool

from trivia.reward import metrics
from trivia.reward.api import ErrorDetail, RewardResponse
from trivia.reward.body_pool import ParserUnavailable
from trivia.reward.enqueue import QueueUnavailable, enqueue_jobs, job_payload
from trivia.reward.gateway_state import GatewayState, get_state
from trivia.reward.inspector.record import build_record, build_record_from_body
from trivia.reward.intake import Accepted, AcceptedRaw, Refused, Rendered
from trivia.reward.keys import request_results_key
from trivia.reward.planner import TableJob
from trivia.reward.results import await_results

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
    503: {
        "model": ErrorDetail,
        "description": "The queue (Redis) is unreachable, or a body parser process died.",
    },
}
# The route reads the body itself (`GatewayState.bodies`: a thread, or a child process for a
# large one) so that a 15 MB request does not hold the event loop, and /healthz with it; the
# schema is added to the OpenAPI document by `app._openapi`.
_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/RewardRequest"}}},
    }
}


async def _read(state: GatewayState, raw: bytes) -> Accepted | AcceptedRaw:
    try:
        intake = await state.bodies.read(raw)
    except ParserUnavailable as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from exc
    if isinstance(intake, Refused):
        raise HTTPException(intake.status_code, intake.detail)
    return intake


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
    missing = f"deadline: not scored within {settings.request_deadline_s:g} s"
    try:
        accepted = await _read(state, await request.body())
        metrics.STAGE_DURATION.labels("plan").observe(time.monotonic() - started)
        metrics.DEDUPE_SAVED_CALLS.inc(accepted.saved_calls)
        results = await _run_jobs(state, accepted.jobs, deadline) if accepted.jobs else {}
        assembled_at = time.monotonic()
        rendered = await _render(state, accepted, results, missing)
        await run_in_threadpool(_count, rendered)
        metrics.STAGE_DURATION.labels("assemble").observe(time.monotonic() - assembled_at)
    except HTTPException as exc:
        metrics.REQUESTS.labels(str(exc.status_code)).inc()
        raise
    metrics.REQUESTS.labels("200").inc()
    duration_s = time.monotonic() - started
    metrics.REQUEST_DURATION.observe(duration_s)
    about = {
        "request_id": uuid.uuid4().hex[:16],
        "time": started_at,
        "duration_s": duration_s,
        "step": x_trivia_step,
        "results": results,
    }
    if isinstance(accepted, AcceptedRaw):
        build = functools.partial(
            build_record_from_body,
            raw=accepted.raw,
            limits=state.bodies.limits,
            missing=missing,
            **about,
        )
    else:
        build = functools.partial(
            build_record,
            request=accepted.request,
            plan=accepted.plan,
            items=rendered.items,
            **about,
        )
    state.recorder.submit(build, large=isinstance(accepted, AcceptedRaw))
    return Response(rendered.content, media_type="application/json")


async def _render(
    state: GatewayState,
    accepted: Accepted | AcceptedRaw,
    results: dict[int, dict[str, Any]],
    missing: str,
) -> Rendered:
    try:
        return await state.bodies.render(accepted, results, missing)
    except ParserUnavailable as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from exc


def _count(rendered: Rendered) -> None:
    for outcome, count in rendered.outcomes.items():
        metrics.ITEMS.labels(outcome).inc(count)
    for reward in rendered.rewards:
        metrics.REWARD.observe(reward)


async def _run_jobs(
    state: GatewayState, jobs: list[TableJob], deadline: float
) -> dict[int, dict[str, Any]]:
    settings = state.settings
    request_id = uuid.uuid4().hex
    key = request_results_key(request_id)
    wall_deadline = time.time() + (deadline - time.monotonic())
    payloads = [
        job_payload(
            request_id, index, job, notify=key, ttl_s=settings.result_ttl_s, deadline=wall_deadline
        )
        for index, job in enumerate(jobs)
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
