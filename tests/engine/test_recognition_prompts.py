"""The recognition prompts (`trivia.engine.prompts`): one definition, placed into chat content
as training places it."""

from __future__ import annotations

import pytest

from trivia.engine.prompts import (
    HTML_PROMPT,
    OTSL_PROMPT,
    content_parts,
    prompt_id,
    recognition_format,
    recognition_prompt,
)
from trivia.trainer.demo_data import OTSL_PROMPT as DEMO_PROMPT


def test_the_training_rows_use_the_same_prompt():
    assert DEMO_PROMPT is OTSL_PROMPT
    assert OTSL_PROMPT.endswith("OTSL format using specified tags.\n<image>")
    assert recognition_prompt("html") == HTML_PROMPT and "HTML format" in HTML_PROMPT
    with pytest.raises(ValueError):
        recognition_prompt("latex")  # type: ignore[arg-type]


def test_the_image_goes_where_the_tag_is():
    url = "data:image/png;base64,AAAA"
    assert content_parts(OTSL_PROMPT, url) == [
        {"type": "text", "text": OTSL_PROMPT.removesuffix("<image>")},
        {"type": "image_url", "image_url": {"url": url}},
    ]
    assert content_parts("<image>Describe it.", url) == [
        {"type": "image_url", "image_url": {"url": url}},
        {"type": "text", "text": "Describe it."},
    ]
    assert content_parts("No tag here.", url)[0]["type"] == "image_url"
    assert content_parts("A <image> B", None) == [
        {"type": "text", "text": "A "},
        {"type": "text", "text": " B"},
    ]


def test_recognition_prompts_are_recognised_and_others_not():
    assert recognition_format(OTSL_PROMPT) == "otsl"
    assert recognition_format(OTSL_PROMPT.replace("<image>", "")) == "otsl"
    assert recognition_format("  " + HTML_PROMPT.replace("<image>", "") + "\n") == "html"
    assert recognition_format("What is the total in 2020?") is None


def test_prompt_ids_differ_by_format_and_name_the_version():
    assert prompt_id("otsl") != prompt_id("html")
    assert prompt_id("otsl").startswith("v1-")
