"""Fan job results back out to the request's items, in request order (pure).

A job result is the JSON a worker pushed for one table (see `jobs.score_table`): per question the
extracted prediction or an error, per (question, answer) pair its F1, per solution its TEDS or an
error. A missing result (deadline) or any failed question makes the item's `qa_f1` null with an
`error` naming the failure: an infrastructure failure is never a score of 0.
"""

from __future__ import annotations

from typing import Any

from trivia.reward.api import RewardRequest
from trivia.reward.planner import Plan


def assemble(
    request: RewardRequest, plan: Plan, results: dict[int, dict[str, Any]], missing_error: str
) -> list[dict[str, Any]]:
    """One result dict (the `RewardResult` shape) per request item.

    `missing_error` is the error given to items whose job has no result (the deadline passed).
    """
    out: list[dict[str, Any]] = []
    for item, item_plan in zip(request.items, plan.items, strict=True):
        result: dict[str, Any] = {
            "id": item.id,
            "valid": item_plan.valid,
            "qa_f1": None,
            "teds": None,
            "teds_norm": None,
            "error": None,
            "answers": [],
        }
        out.append(result)
        if not item_plan.valid:
            result["error"] = item_plan.error
            if plan.want_qa:
                result["qa_f1"] = 0.0
            if plan.want_teds and item.solution is not None:
                result["teds"] = result["teds_norm"] = 0.0
            continue
        if item_plan.job is None:
            continue
        job = plan.jobs[item_plan.job]
        job_result = results.get(item_plan.job)
        job_error = missing_error if job_result is None else job_result.get("error")
        errors: list[str] = []
        if job_error is not None or job_result is None:
            errors.append(str(job_error))
            result["answers"] = [
                _detail(pair.question, pair.answer, None, None, str(job_error))
                for pair in (item.qa_pairs if plan.want_qa else [])
            ]
        else:
            _fill_answers(
                result,
                item.qa_pairs if plan.want_qa else [],
                item_plan.golds,
                job,
                job_result,
                errors,
            )
            if item_plan.solution is not None:
                score, score_norm, teds_error = job_result["teds"][item_plan.solution]
                result["teds"], result["teds_norm"] = score, score_norm
                if teds_error is not None:
                    errors.append(f"teds: {teds_error}")
        if errors:
            result["error"] = "; ".join(errors)
    return out


def _fill_answers(
    result: dict[str, Any],
    pairs: list[Any],
    golds: tuple[int, ...],
    job: Any,
    job_result: dict[str, Any],
    errors: list[str],
) -> None:
    answers = job_result["answers"]
    f1s = job_result["f1"]
    scores: list[float] = []
    failed: list[str] = []
    for pair, gold in zip(pairs, golds, strict=True):
        question_index = job.golds[gold][0]
        prediction, error = answers[question_index]
        f1 = f1s[gold]
        result["answers"].append(_detail(pair.question, pair.answer, prediction, f1, error))
        if f1 is None:
            failed.append(error or "no answer")
        else:
            scores.append(f1)
    if not pairs:
        return
    if failed:
        errors.append(f"qa: {len(failed)} of {len(pairs)} questions failed: {failed[0]}")
    else:
        result["qa_f1"] = sum(scores) / len(scores)


def _detail(
    question: str,
    answer: str | list[str],
    prediction: str | None,
    f1: float | None,
    error: str | None,
) -> dict[str, Any]:
    return {
        "question": question,
        "answer": answer,
        "prediction": prediction,
        "f1": f1,
        "error": error,
    }
