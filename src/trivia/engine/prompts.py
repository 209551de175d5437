"""The recognition prompts: the one place their text lives (training rows use it too).

The prompt is the authors' (their demo's rows ask for OTSL); the HTML variant differs only in
the format it names. `<image>` marks where the image goes, as in the training rows; a chat
request puts the image part there (`content_parts`). Changing a prompt's text changes every
result made with it, so the text's hash is part of the resume keys and `PROMPT_VERSION` is
recorded with each result; bump it when the text changes.
"""

from __future__ import annotations

import hashlib
from typing import Any

from trivia.dataset.row import IMAGE_TAG
from trivia.tables import TableFormat

PROMPT_VERSION = 1

_HEAD = (
    "You are an AI specialized in recognizing and extracting table from the image. Your mission "
    "is to analyze the table in the image and generate the result in "
)
OTSL_PROMPT = _HEAD + "OTSL format using specified tags.\n" + IMAGE_TAG
HTML_PROMPT = _HEAD + "HTML format.\n" + IMAGE_TAG

_PROMPTS: dict[TableFormat, str] = {"otsl": OTSL_PROMPT, "html": HTML_PROMPT}


def recognition_prompt(fmt: TableFormat) -> str:
    """The prompt (with its `<image>` tag) asking for the table in `fmt`."""
    try:
        return _PROMPTS[fmt]
    except KeyError:
        raise ValueError(f"unknown table format {fmt!r}; use 'otsl' or 'html'") from None


def prompt_id(fmt: TableFormat) -> str:
    """`v<version>-<hash of the text>`: what a resume key needs to know about the prompt."""
    digest = hashlib.sha256(recognition_prompt(fmt).encode()).hexdigest()[:12]
    return f"v{PROMPT_VERSION}-{digest}"


def recognition_format(text: str) -> TableFormat | None:
    """Which recognition prompt `text` is (image tag and surrounding whitespace aside), or None."""
    plain = text.replace(IMAGE_TAG, "").strip()
    for fmt, prompt in _PROMPTS.items():
        if plain == prompt.replace(IMAGE_TAG, "").strip():
            return fmt
    return None


def content_parts(prompt: str, image_url: str | None) -> list[dict[str, Any]]:
    """OpenAI chat content for `prompt`: the image where its `<image>` tag is (first without one).

    With no image the tag is dropped. Empty text parts are left out.
    """
    before, tag, after = prompt.partition(IMAGE_TAG)
    if not tag:
        before, after = "", prompt
    parts: list[dict[str, Any]] = []
    if before:
        parts.append({"type": "text", "text": before})
    if image_url is not None:
        parts.append({"type": "image_url", "image_url": {"url": image_url}})
    rest = after.replace(IMAGE_TAG, "")
    if rest:
        parts.append({"type": "text", "text": rest})
    return parts
