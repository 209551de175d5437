"""The plugin's own settings, read from ``TRIVIA_*`` environment variables.

ms-swift 4.x refuses command-line flags it does not know, so the options of this plugin (the
filter, the failure threshold, the reward service, the metrics port) travel as environment
variables that ``trivia train`` sets from the launch config: ``--rejection_sample true`` in a
config or after ``--`` becomes ``TRIVIA_REJECTION_SAMPLE=true``.
"""

from __future__ import annotations

import json
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from trivia.settings import DEFAULTS
from trivia.trainer.filtering import RejectionConfig, Strategy, decode_tail


class PluginOptions(BaseSettings):
    """Everything the trainer plugin reads, with its defaults."""

    model_config = SettingsConfigDict(env_prefix="TRIVIA_", extra="ignore")

    # --- filtering-based stabilisation ----------------------------------------------------------
    # On unless turned off explicitly (the paper's setting); logged at start either way.
    rejection_sample: bool = True
    rejection_strategy: Strategy = "tag_tail"
    # One or more tails: a plain string, or a JSON list such as ["</table>", "</html>"]; unset,
    # each prompt's table format picks it (OTSL "<nl>\n", HTML "</table>" / "</html>").
    rejection_tag_tail: Annotated[tuple[str, ...] | None, NoDecode] = None
    rejection_min_logprob: float | None = None
    rejection_oversample: float = Field(1.0, ge=1.0)

    # --- reward failures ------------------------------------------------------------------------
    failure_threshold: float = Field(0.05, ge=0.0, le=1.0)
    failure_patience: int = Field(3, ge=1)
    # A training set where more than this share of rows has no questions is refused at start.
    max_no_question_share: float = Field(0.05, ge=0.0, le=1.0)

    # --- reward service -------------------------------------------------------------------------
    reward_url: str = f"http://127.0.0.1:{DEFAULTS.port}"
    # The reward service's bearer token (the gateway's `TRIVIA_API_TOKEN`); None = no auth.
    api_token: SecretStr | None = None
    # Seconds a reward call may take before its items count as failed (None rewards).
    reward_timeout_s: float = Field(180.0, gt=0)

    # --- trainer metrics ------------------------------------------------------------------------
    # Port of rank 0's Prometheus endpoint; 0 = none.
    train_metrics_port: int = Field(0, ge=0, le=65535)
    train_metrics_host: str = "127.0.0.1"

    @field_validator("api_token", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("rejection_tag_tail", mode="before")
    @classmethod
    def _tails(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            value = json.loads(text) if text.startswith("[") else [value]
        if isinstance(value, list | tuple):
            if not value:
                raise ValueError("give at least one tail, or leave it unset to follow the prompt")
            return tuple(decode_tail(str(v)) for v in value)
        return value

    @property
    def rejection(self) -> RejectionConfig:
        """The filter these options describe."""
        return RejectionConfig(
            enabled=self.rejection_sample,
            strategy=self.rejection_strategy,
            tag_tails=self.rejection_tag_tail,
            min_logprob=self.rejection_min_logprob,
            oversample=self.rejection_oversample,
        )


# Launch-config keys (and `--flag`s after `--`) that belong to the plugin, not to ms-swift.
PLUGIN_FLAGS: frozenset[str] = frozenset(PluginOptions.model_fields)
