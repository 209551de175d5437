"""The VLM client: an image and a prompt in, text out, on the shared chat client.

Images travel as base64 data URLs sized as in training (`trivia.engine.images`); balancing,
retries, ejection and timeouts are those of the `ChatClient` it holds, with defaults for long
generations (a table can take thousands of tokens): fewer concurrent calls per endpoint and a
longer timeout per attempt (`trivia.settings.ENGINE`). Works with vLLM and any other server
speaking OpenAI's chat API with `image_url` parts.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from trivia.engine.images import (
    DEFAULT_MAX_PIXELS,
    DEFAULT_MIN_PIXELS,
    image_data_url,
)
from trivia.engine.prompts import content_parts
from trivia.engine.sampling_params import GREEDY, SamplingParams
from trivia.llm.client import ChatClient, ChatClientHolder, ChatReply
from trivia.llm.endpoints import parse_endpoints
from trivia.llm.errors import LLMError
from trivia.settings import ENGINE


class VLMClient(ChatClientHolder):
    """Asks a vision-language model about one image at a time (or about nothing: text only)."""

    def __init__(
        self,
        endpoints: str | Sequence[str],
        *,
        model: str | None = None,
        api_key: str | None = None,
        max_concurrency_per_endpoint: int = ENGINE.vlm_concurrency_per_endpoint,
        request_timeout_s: float = ENGINE.vlm_request_timeout_s,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        min_pixels: int = DEFAULT_MIN_PIXELS,
        **chat_kwargs: Any,
    ) -> None:
        """`max_pixels`/`min_pixels`: the training limits (ms-swift's `MAX_PIXELS`/`MIN_PIXELS`).

        `chat_kwargs` go to `ChatClient` (retries, backoff, ejection, `extra_body`).
        """
        if min_pixels > max_pixels:
            raise ValueError("min_pixels must not exceed max_pixels")
        chat_kwargs.setdefault("name", "VLM")
        self.client = ChatClient(
            endpoints,
            model=model,
            api_key=api_key,
            max_concurrency_per_endpoint=max_concurrency_per_endpoint,
            request_timeout_s=request_timeout_s,
            **chat_kwargs,
        )
        self.max_pixels = max_pixels
        self.min_pixels = min_pixels
        self._urls = parse_endpoints(endpoints)
        self._api_key = api_key

    async def chat(self, messages: list[dict[str, Any]], **options: Any) -> ChatReply:
        """A chat call as it is (`ChatClient.chat`), for prompts `complete` does not build."""
        return await self.client.chat(messages, **options)

    async def model_name(self) -> str:
        """The model answering (asked of `/v1/models` once unless given); raises `LLMError`."""
        return await self.client.model_name()

    def encode(self, image: Path | bytes) -> str:
        """The data URL this client sends for `image` (resized to its pixel limits)."""
        return image_data_url(image, max_pixels=self.max_pixels, min_pixels=self.min_pixels)

    async def complete(
        self,
        prompt: str,
        image: Path | bytes | None = None,
        *,
        sampling: SamplingParams = GREEDY,
        seed_parts: tuple[object, ...] = (),
        deadline: float | None = None,
        image_url: str | None = None,
    ) -> ChatReply:
        """The model's reply to `prompt` about `image` (placed at the prompt's `<image>` tag).

        Every sampling field is sent (`SamplingParams.request_fields`; the seed, if any, derived
        from `seed_parts`), so the server's model defaults never apply. `image=None`: the prompt
        alone (the blind check of a question). `image_url`: an already encoded image (`encode`),
        so K samples of one image encode it once. Raises `LLMError`; an unreadable image raises
        ValueError before any call.
        """
        if image_url is None and image is not None:
            image_url = self.encode(image)
        messages = [{"role": "user", "content": content_parts(prompt, image_url)}]
        fields = sampling.request_fields(*seed_parts)
        return await self.chat(
            messages,
            temperature=fields.pop("temperature"),
            max_tokens=fields.pop("max_tokens"),
            deadline=deadline,
            **fields,
        )

    async def probe(self) -> bool:
        """Whether any endpoint answers `/v1/models` now (the runner's check after an outage)."""
        import httpx

        headers = {"authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        async with httpx.AsyncClient(headers=headers, timeout=10.0) as http:
            for url in self._urls:
                try:
                    if (await http.get(f"{url}/v1/models")).status_code == 200:
                        return True
                except httpx.HTTPError:
                    continue
        return False

    async def model_fingerprint(self, revision: str | None = None) -> dict[str, Any]:
        """What names the weights behind the served name: `/v1/models`'s card of the model on
        every endpoint (id, `root`: the checkpoint path vLLM loaded, `parent`, `max_model_len`),
        plus a `revision` the user gives. Part of every resume key, so a new checkpoint served
        under the same name does not reuse old results. Raises `LLMError`."""
        import httpx

        model = await self.model_name()
        headers = {"authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        cards = set()
        async with httpx.AsyncClient(headers=headers, timeout=30.0) as http:
            for url in self._urls:
                try:
                    response = await http.get(f"{url}/v1/models")
                    response.raise_for_status()
                    listed = response.json()["data"]
                except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
                    raise LLMError(f"cannot read {url}/v1/models: {exc}") from None
                card = next((c for c in listed if c.get("id") == model), None)
                if card is None:
                    raise LLMError(f"{url} does not serve {model!r}")
                fields = ("id", "root", "parent", "max_model_len")
                cards.add(tuple((name, str(card.get(name))) for name in fields))
        return {
            "model": model,
            "cards": [dict(card) for card in sorted(cards)],
            "revision": revision,
        }
