"""The reward functions ms-swift calls: ``QA_F1_score`` and ``TEDS``, scored by the reward service.

Each call sends the whole batch of completions in one ``POST /v1/rewards`` and returns one
reward per completion, in order. A completion whose reward could not be computed (the service
answered ``qa_f1: null`` with an error, or could not be reached before the deadline) gets
``None``, never 0, so the trainer can leave it out instead of punishing the policy for an
infrastructure failure. A row without the data a metric needs (no ``qa_pairs`` for QA-F1, no
``solution`` for TEDS) is not sent and gets ``None`` too.

The classes here are plain async callables with ms-swift's ``Class(args=args)`` constructor;
``plugin.py`` registers them under the names the launch configs use.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import httpx
import stamina

from trivia.reward.api import Metric
from trivia.trainer.options import PluginOptions

log = logging.getLogger(__name__)

# A gateway restarting, draining or overloaded: the same request is sent again. It is
# idempotent (jobs are keyed by table, answers come from the cache), so a retry costs little.
_RETRY_STATUSES = frozenset({429, 502, 503, 504})


class RewardServiceError(RuntimeError):
    """The reward service could not be reached or refused the request."""


class _Unavailable(Exception):
    """A response worth retrying (see `_RETRY_STATUSES`)."""


def _completion_text(completion: Any) -> str:
    # ms-swift hands decoded strings; multi-turn rollouts may hand message lists.
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion and isinstance(completion[-1], Mapping):
        return str(completion[-1].get("content", ""))
    return str(completion)


def _answer(value: Any) -> str | list[str]:
    return [str(v) for v in value] if isinstance(value, list | tuple) else str(value)


def _qa_pairs(value: Any) -> list[dict[str, Any]]:
    if not value:
        return []
    return [{"question": str(p["question"]), "answer": _answer(p["answer"])} for p in value]


async def fetch_rewards(
    url: str,
    items: list[dict[str, Any]],
    metrics: Sequence[Metric],
    *,
    token: str | None = None,
    timeout_s: float = 180.0,
    step: int | None = None,
) -> list[dict[str, Any]]:
    """One ``POST /v1/rewards`` for ``items``, sent again unchanged on connection errors and
    429/502/503/504 until ``timeout_s`` has passed; then raises ``RewardServiceError``. ``step``
    is sent as ``X-Trivia-Step``, so the gateway's ``/inspect`` can show the batches of one step."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if step is not None:
        headers["X-Trivia-Step"] = str(step)
    body = {"items": items, "metrics": list(metrics)}
    deadline = time.monotonic() + timeout_s
    problem = "no attempt"
    async with httpx.AsyncClient(
        base_url=url.rstrip("/"), headers=headers, timeout=timeout_s
    ) as client:
        try:
            async for attempt in stamina.retry_context(
                on=(httpx.TransportError, _Unavailable),
                attempts=None,
                timeout=timeout_s,
                wait_initial=0.5,
                wait_max=10.0,
            ):
                with attempt:
                    if attempt.num > 1:
                        log.warning("reward service at %s: %s; retry %d", url, problem, attempt.num)
                    left = deadline - time.monotonic()
                    try:
                        response = await client.post(
                            "/v1/rewards", json=body, timeout=max(left, 0.1)
                        )
                    except httpx.TransportError as error:
                        problem = f"{type(error).__name__}: {error}"
                        raise
                    if response.status_code in _RETRY_STATUSES:
                        problem = f"HTTP {response.status_code}"
                        raise _Unavailable(problem)
        except (httpx.TransportError, _Unavailable) as error:
            raise RewardServiceError(f"reward service at {url} unavailable: {problem}") from error
    if response.status_code != 200:
        raise RewardServiceError(
            f"reward service at {url} answered HTTP {response.status_code}: {response.text[:500]}"
        )
    results = response.json().get("results")
    if not isinstance(results, list) or len(results) != len(items):
        raise RewardServiceError(f"reward service at {url} returned a malformed response")
    return results


class ServiceReward:
    """A reward scored by the reward service; subclasses name the metric and the column."""

    metric: ClassVar[Metric]
    # The dataset column without which a row is not sent.
    needs: ClassVar[str]

    def __init__(self, args: Any = None, *, options: PluginOptions | None = None, **_: Any):
        self.args = args
        self.options = options or PluginOptions()

    def _token(self) -> str | None:
        token = self.options.api_token
        return token.get_secret_value() if token is not None else None

    def _item(self, index: int, completion: str, qa_pairs: Any, solution: Any) -> dict[str, Any]:
        item: dict[str, Any] = {"id": str(index), "completion": completion}
        if qa_pairs:
            item["qa_pairs"] = _qa_pairs(qa_pairs)
        if solution:
            item["solution"] = str(solution)
        return item

    def _score(self, result: Mapping[str, Any]) -> float | None:
        value = result.get(self.metric)
        return float(value) if value is not None else None

    async def __call__(
        self,
        completions: Sequence[Any],
        qa_pairs: Sequence[Any] | None = None,
        solution: Sequence[Any] | None = None,
        trainer_state: Any = None,
        **_: Any,
    ) -> list[float | None]:
        """One reward per completion; ``None`` where it could not be computed."""
        # The step these completions are trained in, as the trainer logs it.
        step = trainer_state.global_step + 1 if trainer_state is not None else None
        n = len(completions)
        pairs = list(qa_pairs) if qa_pairs is not None else [None] * n
        solutions = list(solution) if solution is not None else [None] * n
        needed = pairs if self.needs == "qa_pairs" else solutions
        items = [
            self._item(i, _completion_text(completions[i]), pairs[i], solutions[i])
            for i in range(n)
            if needed[i]
        ]
        rewards: list[float | None] = [None] * n
        if not items:
            return rewards
        try:
            results = await fetch_rewards(
                self.options.reward_url,
                items,
                [self.metric],
                token=self._token(),
                timeout_s=self.options.reward_timeout_s,
                step=step,
            )
        except RewardServiceError as error:
            log.error("%s: %d completions unscored: %s", type(self).__name__, len(items), error)
            return rewards
        for item, result in zip(items, results, strict=True):
            if result.get("error"):
                log.warning("%s: item %s: %s", type(self).__name__, item["id"], result["error"])
            rewards[int(item["id"])] = self._score(result)
        where = f"?step={step}" if step is not None else ""
        log.info(
            "%s: %d completions scored; inspect them at %s/inspect%s",
            type(self).__name__, len(items), self.options.reward_url.rstrip("/"), where,
        )  # fmt: skip
        return rewards


class QAF1Reward(ServiceReward):
    """Mean QA-F1 of the answers an LLM gives from the recognised table (the training reward)."""

    metric = "qa_f1"
    needs = "qa_pairs"


class TEDSReward(ServiceReward):
    """TEDS of the recognised table against the ground-truth ``solution`` (validation rows)."""

    metric = "teds"
    needs = "solution"
