"""What the inspector keeps of one scored request: a small summary and the full detail (pure).

The detail holds, per item, the completion, which table HTML the QA model saw (each unique
table once), every question with its known answer, the QA model's raw reply, the extracted
answer, the F1, whether the reply was fresh or cached, failures, TEDS, and why an invalid
completion was refused. Items are grouped as the trainer grouped them: the completions of one
GRPO group are samples for the same image, so they carry the same questions (and solution).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from trivia.reward.api import RewardItem, RewardRequest
from trivia.reward.assemble import assemble
from trivia.reward.intake import Limits, reread
from trivia.reward.planner import Plan
from trivia.tables import detect_format, html_to_table, is_complete, otsl_to_table, to_html


def invalid_reason(completion: str) -> str:
    """Why the planner refused `completion` (called for refused ones only: it parses again)."""
    if not completion.strip():
        return "empty completion"
    if not is_complete(completion):
        ending = "</table>" if detect_format(completion) == "html" else "<nl>"
        return f"truncated: does not end with {ending}"
    try:
        if detect_format(completion) == "otsl":
            table = otsl_to_table(completion)
        else:
            table = html_to_table(to_html(completion))
    except (ValueError, TypeError, RecursionError) as exc:
        return f"unparseable: {type(exc).__name__}"
    if table is None or not table.cells:
        return "no table cells"
    return "unparseable"


def _group_key(item: RewardItem) -> str:
    data = [[p.question, p.answer] for p in item.qa_pairs], item.solution
    return hashlib.sha1(json.dumps(data).encode("utf-8", "surrogatepass")).hexdigest()


def build_record(
    *,
    request_id: str,
    time: float,
    duration_s: float,
    step: int | None,
    request: RewardRequest,
    plan: Plan,
    results: dict[int, dict[str, Any]],
    items: Sequence[dict[str, Any]],
) -> dict[str, Any]:
    """The detail record of one request (`items` are the assembled results, in request order)."""
    group_of: dict[str, int] = {}
    groups: list[list[int]] = []
    recorded: list[dict[str, Any]] = []
    for index, (item, item_plan, result) in enumerate(
        zip(request.items, plan.items, items, strict=True)
    ):
        group = group_of.setdefault(_group_key(item), len(groups))
        if group == len(groups):
            groups.append([])
        groups[group].append(index)
        job_result = results.get(item_plan.job) if item_plan.job is not None else None
        answers = []
        for detail, gold in _answer_golds(result["answers"], item_plan.golds):
            raw = cached = None
            if job_result is not None and gold is not None and "replies" in job_result:
                question = plan.jobs[item_plan.job].golds[gold][0]  # type: ignore[index]
                raw = job_result["replies"][question]
                cached = None if raw is None else not job_result["fresh"][question]
            answers.append(
                [
                    detail["question"],
                    detail["answer"],
                    raw,
                    detail["prediction"],
                    detail["f1"],
                    cached,
                    detail["error"],
                ]
            )
        recorded.append(
            {
                "id": item.id,
                "group": group,
                "completion": item.completion,
                "valid": item_plan.valid,
                "reason": None if item_plan.valid else invalid_reason(item.completion),
                "table": item_plan.job,
                "qa_f1": result["qa_f1"],
                "teds": result["teds"],
                "teds_norm": result.get("teds_norm"),
                "error": result["error"],
                "answers": answers,
            }
        )
    return {
        "id": request_id,
        "time": time,
        "duration_s": duration_s,
        "step": step,
        "metrics": list(request.metrics),
        "tables": [job.table for job in plan.jobs],
        "groups": groups,
        "items": recorded,
    }


def build_record_from_body(
    *,
    raw: bytes,
    limits: Limits,
    results: dict[int, dict[str, Any]],
    missing: str,
    request_id: str,
    time: float,
    duration_s: float,
    step: int | None,
) -> dict[str, Any]:
    """`build_record` of a request kept as bytes (read again here, in a child process)."""
    accepted = reread(raw, limits)
    items = assemble(accepted.request, accepted.plan, results, missing)
    return build_record(
        request_id=request_id,
        time=time,
        duration_s=duration_s,
        step=step,
        request=accepted.request,
        plan=accepted.plan,
        results=results,
        items=items,
    )


def _answer_golds(
    answers: list[dict[str, Any]], golds: tuple[int, ...]
) -> list[tuple[dict[str, Any], int | None]]:
    # An item whose job failed has answers but may have no golds to read replies from.
    if len(golds) == len(answers):
        return list(zip(answers, golds, strict=True))
    return [(answer, None) for answer in answers]


def summarise(record: dict[str, Any]) -> dict[str, Any]:
    """The line of the request list: counts and the mean QA-F1 of the scored items."""
    items = record["items"]
    scored = [i["qa_f1"] for i in items if i["valid"] and i["qa_f1"] is not None and not i["error"]]
    return {
        "id": record["id"],
        "time": record["time"],
        "step": record["step"],
        "duration_s": record["duration_s"],
        "items": len(items),
        "groups": len(record["groups"]),
        "mean_f1": sum(scored) / len(scored) if scored else None,
        "failed": sum(1 for i in items if i["valid"] and i["error"]),
        "no_signal": sum(1 for i in items if i["valid"] and not i["error"] and i["qa_f1"] is None),
        "invalid": sum(1 for i in items if not i["valid"]),
        "trimmed": record.get("trimmed", 0),
    }
