"""The VLM client: an image and a prompt in, text out, on the shared chat client.

Images travel as base64 data URLs sized as in training (`trivia.engine.images`); balancing,
retries, ejection and timeouts are `ChatClient`'s, with defaults for long generations (a table
can take thousands of tokens): 16 concurrent calls per endpoint, 300 s per attempt. Works with
vLLM and any other server speaking OpenAI's chat API with `image_url` content parts.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from trivia.engine.images import (
    DEFAULT_MAX_PIXELS,
    DEFAULT_MIN_PIXELS,
    image_data_url,
    image_key,
)
from trivia.engine.prompts import content_parts
from trivia.llm.client import ChatClient, ChatReply

__all__ = ["ChatReply", "VLMClient", "image_data_url", "image_key"]


class VLMClient(ChatClient):
    """Asks a vision-language model about one image at a time (or about nothing: text only)."""

    def __init__(
        self,
        endpoints: str | Sequence[str],
        *,
        model: str | None = None,
        api_key: str | None = None,
        max_concurrency_per_endpoint: int = 16,
        request_timeout_s: float = 300.0,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        min_pixels: int = DEFAULT_MIN_PIXELS,
        **chat_kwargs: Any,
    ) -> None:
        """`max_pixels`/`min_pixels`: the training limits (ms-swift's `MAX_PIXELS`/`MIN_PIXELS`).

        `chat_kwargs` go to `ChatClient` (retries, backoff, ejection, `extra_body`, transport).
        """
        if min_pixels > max_pixels:
            raise ValueError("min_pixels must not exceed max_pixels")
        chat_kwargs.setdefault("name", "VLM")
        super().__init__(
            endpoints,
            model=model,
            api_key=api_key,
            max_concurrency_per_endpoint=max_concurrency_per_endpoint,
            request_timeout_s=request_timeout_s,
            **chat_kwargs,
        )
        self.max_pixels = max_pixels
        self.min_pixels = min_pixels

    def encode(self, image: Path | bytes) -> str:
        """The data URL this client sends for `image` (resized to its pixel limits)."""
        return image_data_url(image, max_pixels=self.max_pixels, min_pixels=self.min_pixels)

    async def complete(
        self,
        prompt: str,
        image: Path | bytes | None = None,
        *,
        temperature: float = 0.0,
        max_tokens: int = 4096,
        deadline: float | None = None,
        image_url: str | None = None,
    ) -> ChatReply:
        """The model's reply to `prompt` about `image` (placed at the prompt's `<image>` tag).

        `image=None`: the prompt alone (the blind check of a question). `image_url`: an already
        encoded image (`encode`), so K samples of one image encode it once. Raises `LLMError`;
        an unreadable image raises ValueError before any call.
        """
        if image_url is None and image is not None:
            image_url = self.encode(image)
        messages = [{"role": "user", "content": content_parts(prompt, image_url)}]
        return await self.chat(
            messages, temperature=temperature, max_tokens=max_tokens, deadline=deadline
        )
