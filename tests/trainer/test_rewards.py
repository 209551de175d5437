"""The QA_F1_score and TEDS reward functions against a live local reward stack."""

from __future__ import annotations

import asyncio
import logging
import time
import types

import httpx
import pytest

from trivia.ports import free_port_block
from trivia.trainer.options import PluginOptions
from trivia.trainer.rewards import QAF1Reward, RewardServiceError, TEDSReward, fetch_rewards

TABLE = (
    "<table><tr><td>Group</td><td>Weight</td><td>Height</td></tr>"
    "<tr><td>Control</td><td>72</td><td>170</td></tr>"
    "<tr><td>Treated</td><td>68</td><td>165</td></tr></table>"
)
RIGHT = "<fcel>Group<fcel>Weight<fcel>Height<nl>\n<fcel>Control<fcel>72<fcel>170<nl>\n" + (
    "<fcel>Treated<fcel>68<fcel>165<nl>\n"
)
ONE_WRONG = RIGHT.replace("<fcel>68", "<fcel>86")
TRUNCATED = RIGHT[:40]
QA = [
    {"question": "What is the Weight of Control?", "answer": "72"},
    {"question": "What is the Weight of Treated?", "answer": "68"},
]


def _options(stack) -> PluginOptions:
    return PluginOptions(reward_url=stack.gateway_url, reward_timeout_s=30)


def test_qa_f1_scores_each_completion_in_one_batch(live_stack, token):
    reward = QAF1Reward(options=_options(live_stack))
    completions = [RIGHT, ONE_WRONG, TRUNCATED, RIGHT]
    scores = asyncio.run(reward(completions, qa_pairs=[QA, QA, QA, None]))
    assert scores[0] == pytest.approx(1.0)
    assert scores[1] == pytest.approx(0.5)
    assert scores[2] == 0.0  # the policy's fault: truncated output scores 0
    assert scores[3] is None  # no questions: no signal, not 0


def test_the_step_reaches_the_inspector_and_the_log_links_to_it(live_stack, token, caplog):
    reward = QAF1Reward(options=_options(live_stack))
    state = types.SimpleNamespace(global_step=41)
    with caplog.at_level(logging.INFO, logger="trivia.trainer.rewards"):
        asyncio.run(reward([RIGHT, ONE_WRONG], qa_pairs=[QA, QA], trainer_state=state))
    link = f"{live_stack.gateway_url}/inspect?step=42"
    assert link in caplog.text
    auth = {"Authorization": f"Bearer {token}"}
    deadline = time.monotonic() + 60  # recorded in the background, just after the response
    page = ""
    while "/inspect/requests/" not in page and time.monotonic() < deadline:
        page = httpx.get(link, headers=auth).text
    assert page.count("/inspect/requests/") == 1


def test_answer_aliases_reach_the_service_and_the_best_one_counts(live_stack, token):
    reward = QAF1Reward(options=_options(live_stack))
    aliases = [{"question": "What is the Weight of Control?", "answer": ["72 kg", "72"]}]
    assert asyncio.run(reward([RIGHT, ONE_WRONG], qa_pairs=[aliases, aliases])) == [1.0, 1.0]


def test_teds_only_for_rows_with_a_solution(live_stack, token):
    reward = TEDSReward(options=_options(live_stack))
    scores = asyncio.run(reward([RIGHT, ONE_WRONG, RIGHT], solution=[TABLE, TABLE, None]))
    assert scores[0] == pytest.approx(1.0)
    assert 0.5 < scores[1] < 1.0
    assert scores[2] is None


def test_nothing_to_score_sends_nothing():
    reward = QAF1Reward(options=PluginOptions(reward_url="http://127.0.0.1:9", reward_timeout_s=1))
    assert asyncio.run(reward(["a", "b"])) == [None, None]


def test_a_refused_token_gives_none_not_zero(live_stack, monkeypatch):
    monkeypatch.setenv("TRIVIA_API_TOKEN", "wrong")
    from trivia.settings import get_settings

    get_settings.cache_clear()
    try:
        scores = asyncio.run(QAF1Reward(options=_options(live_stack))([RIGHT], qa_pairs=[QA]))
    finally:
        get_settings.cache_clear()
    assert scores == [None]


def test_service_down_past_the_deadline_gives_none():
    url = f"http://127.0.0.1:{free_port_block(size=1)}"
    reward = QAF1Reward(options=PluginOptions(reward_url=url, reward_timeout_s=1.5))
    assert asyncio.run(reward([RIGHT, RIGHT], qa_pairs=[QA, QA])) == [None, None]


def test_fetch_rewards_raises_when_unreachable():
    url = f"http://127.0.0.1:{free_port_block(size=1)}"
    with pytest.raises(RewardServiceError, match="unavailable"):
        asyncio.run(fetch_rewards(url, [{"id": "0", "completion": "x"}], ["qa_f1"], timeout_s=1))
