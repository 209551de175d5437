"""docker/qa/qwen3-nonthinking.jinja, rendered as vLLM renders chat templates (sandboxed Jinja)."""

from __future__ import annotations

import pytest

jinja2 = pytest.importorskip("jinja2", reason="jinja2 comes with the deploy extra")
from jinja2.sandbox import ImmutableSandboxedEnvironment  # noqa: E402

from trivia.qa.prompts import SYSTEM_PROMPT, build_messages  # noqa: E402

from .tools import REPO  # noqa: E402

TEMPLATE = REPO / "docker/qa/qwen3-nonthinking.jinja"
TABLE = "<fcel>Name<fcel>Weight<nl>\n<fcel>Ann<fcel>72 kg<nl>\n"


def render(messages: list[dict[str, object]], **kwargs: object) -> str:
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    return env.from_string(TEMPLATE.read_text(encoding="utf-8")).render(messages=messages, **kwargs)


def test_the_answering_prompt_renders_in_qwen3_format_with_thinking_off() -> None:
    prompt = render(build_messages(TABLE, "What is Ann's weight?"), add_generation_prompt=True)
    assert prompt == (
        f"<|im_start|>system\n{SYSTEM_PROMPT}<|im_end|>\n"
        f"<|im_start|>user\nTable:\n{TABLE}\n\nQuestion: What is Ann's weight?<|im_end|>\n"
        "<|im_start|>assistant\n<think>\n\n</think>\n\n"
    )


def test_a_client_cannot_switch_thinking_on() -> None:
    messages = build_messages(TABLE, "Who?")
    on = render(messages, add_generation_prompt=True, enable_thinking=True)
    assert on == render(messages, add_generation_prompt=True, enable_thinking=False)
    assert on.endswith("<think>\n\n</think>\n\n")


def test_questions_about_one_table_share_the_prompt_up_to_the_question() -> None:
    first = render(build_messages(TABLE, "Who?"), add_generation_prompt=True)
    second = render(build_messages(TABLE, "How heavy?"), add_generation_prompt=True)
    shared = len(first) - len(first.split("Question: ")[-1])
    assert first[:shared] == second[:shared]
    assert TABLE in first[:shared]


def test_content_given_as_text_parts_renders_like_a_string() -> None:
    parts = [
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}
    ]
    assert render(parts) == render([{"role": "user", "content": "ab"}])
    assert render([{"role": "assistant", "content": None}]) == "<|im_start|>assistant\n<|im_end|>\n"


def test_no_generation_prompt_without_the_flag() -> None:
    assert not render(build_messages(TABLE, "Who?")).endswith("<|im_start|>assistant\n")
