"""All configuration of the services, with every default in one place.

Each field can be set from the environment as ``TRIVIA_<FIELD>`` (for example
``TRIVIA_REDIS_URL``); command-line options override the environment. Build a ``Settings``
explicitly where a process configures itself, or read the cached ``get_settings()``. Code that
needs a default without the environment (a dataclass field, a command-line option) takes it
from ``DEFAULTS`` (``DEFAULTS.port``); the chat clients' defaults are ``CHAT``, the data
engine's (its VLM calls, long generations, outage handling) ``ENGINE``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Final

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

MIB = 1024 * 1024
#: How long a stopping trainer has before it is killed: on SIGTERM `trivia train` has the
#: trainer finish the step in progress and save a checkpoint (`trivia.trainer.stop_request`).
#: Compose's `stop_grace_period` and the trainer pods' `terminationGracePeriodSeconds` are this
#: figure (tests/deploy checks both). It covers the longest step of the paper's config (512
#: completions of up to 4,500 tokens, their rewards, a ZeRO-3 offload update; an evaluation when
#: the step is one of every `eval_steps`) plus saving the 3B model: an estimate, with room.
TRAINER_STOP_GRACE_S: Final = 20 * 60


def split_urls(values: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """URLs given repeated, comma-separated, or both, as one de-duplicated list in order."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    urls: list[str] = []
    for value in values:
        for part in value.split(","):
            url = part.strip().rstrip("/")
            if url and url not in urls:
                urls.append(url)
    return urls


@dataclass(frozen=True)
class ChatDefaults:
    """How a chat client spreads, times and retries calls unless told otherwise."""

    max_concurrency_per_endpoint: int = 64
    request_timeout_s: float = 60.0
    max_retries: int = 4
    backoff_base_s: float = 0.25
    backoff_max_s: float = 8.0
    # An endpoint failing this many times in a row is left alone for `eject_for_s`.
    eject_after_failures: int = 5
    eject_for_s: float = 30.0
    retry_after_max_s: float = 30.0


CHAT = ChatDefaults()


@dataclass(frozen=True)
class EngineDefaults:
    """How the data engine asks a VLM and rides out its outages unless told otherwise."""

    # A VLM generates a whole table or question list per call: fewer, longer calls than QA.
    vlm_concurrency_per_endpoint: int = 16
    vlm_request_timeout_s: float = 300.0
    # Longest output of a recognition or a question generation; a long table takes thousands.
    max_tokens: int = 4096
    # Failed items in a row before the run pauses to probe the server, and how long it probes.
    abort_after: int = 20
    probe_for_s: float = 300.0


ENGINE = EngineDefaults()


class Settings(BaseSettings):
    """Configuration of the reward gateway, its workers and the local stack."""

    model_config = SettingsConfigDict(env_prefix="TRIVIA_", extra="ignore")

    # --- gateway -----------------------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    # When set, every /v1/* call needs `Authorization: Bearer <token>`.
    api_token: SecretStr | None = None
    # A request body over this many bytes is refused with 413 before it is read in full.
    max_body_bytes: int = Field(16 * MIB, gt=0)
    # A request with more items than this is refused with 413.
    max_items: int = Field(4096, gt=0)
    # An item with more questions than this is refused with 422 (the paper asks about 30).
    max_questions_per_item: int = Field(256, gt=0)
    # A request with more questions over all its items than this is refused with 413.
    max_questions_per_request: int = Field(65_536, gt=0)
    # Items not scored this many seconds after a request arrived get `qa_f1: null` and an error.
    request_deadline_s: float = Field(120.0, gt=0)
    # On SIGTERM the gateway stops accepting connections and finishes the requests in flight for
    # up to this long; unset, `request_deadline_s` + 5 (no request is cut). Container and pod
    # grace periods (compose `stop_grace_period`, k8s `terminationGracePeriodSeconds`) exceed it.
    shutdown_grace_s: float | None = Field(None, gt=0)
    # How long the gateway keeps trying to reach Redis to enqueue before answering 503.
    enqueue_retry_s: float = Field(15.0, ge=0)
    # Bodies of at least this many bytes are parsed, checked and planned (and their inspector
    # records built) in child processes: pydantic holds the GIL while it validates, which in a
    # thread would stall the event loop and /healthz with it. Smaller bodies use a thread.
    body_parse_min_bytes: int = Field(1 * MIB, ge=0)
    # How many child processes read large bodies; 0 = none (every body in a thread).
    body_parse_processes: int = Field(2, ge=0)

    # --- inspector (`GET /inspect`) -----------------------------------------------------------
    # The last this many scored requests are kept in Redis for the inspector; 0 = none.
    inspect_keep: int = Field(200, ge=0)
    # A kept request expires this many seconds after it was scored.
    inspect_ttl_s: int = Field(24 * 3600, gt=0)
    # Compressed bytes kept per request; a larger one keeps full detail for its first groups
    # only. Redis holds at most about `inspect_keep` × this for the inspector.
    inspect_max_record_bytes: int = Field(2 * MIB, gt=1024)

    # --- queue -------------------------------------------------------------------------------
    redis_url: str = "redis://127.0.0.1:6379/0"
    # A file holding the Redis password (a Compose secret, a mounted Kubernetes Secret), read
    # when a connection is made; a password in `redis_url` takes precedence.
    redis_password_file: Path | None = None
    queue_name: str = "trivia-rewards"
    # Times an abandoned or failed job is re-queued (a killed worker's job runs again).
    job_retries: int = Field(3, ge=1)
    # Per-request result lists and job data expire after this many seconds.
    result_ttl_s: int = Field(600, gt=0)
    # Failed jobs stay inspectable for this long.
    failure_ttl_s: int = Field(3600, gt=0)
    # Answers are reused across requests for this long (GRPO groups repeat tables).
    answer_cache_ttl_s: int = Field(24 * 3600, ge=0)

    # --- workers -----------------------------------------------------------------------------
    # Seconds between a worker's heartbeats while it runs a job; a job whose heartbeat is
    # `job_monitoring_interval_s + 2` seconds old is treated as abandoned and re-queued.
    job_monitoring_interval_s: int = Field(1, ge=1)
    # Seconds between sweeps for abandoned jobs.
    maintenance_interval_s: int = Field(1, ge=1)
    # Worker metrics (and /healthz, /readyz) port; 0 = no metrics server.
    worker_metrics_port: int = Field(0, ge=0, le=65535)

    # --- answering (QA) service ----------------------------------------------------------------
    # One or more OpenAI-compatible base URLs (".../v1"), comma-separated in the environment.
    qa_urls: Annotated[list[str], NoDecode] = ["http://127.0.0.1:8001/v1"]
    # Model name; None = ask the endpoint's /v1/models.
    qa_model: str | None = None
    qa_api_key: SecretStr | None = None
    qa_max_concurrency_per_endpoint: int = Field(CHAT.max_concurrency_per_endpoint, gt=0)
    qa_request_timeout_s: float = Field(CHAT.request_timeout_s, gt=0)
    qa_max_retries: int = Field(CHAT.max_retries, ge=0)
    qa_backoff_base_s: float = Field(CHAT.backoff_base_s, ge=0)
    qa_eject_after_failures: int = Field(CHAT.eject_after_failures, ge=1)
    qa_eject_for_s: float = Field(CHAT.eject_for_s, ge=0)
    qa_max_tokens: int = Field(64, gt=0)
    # Ask one question of a table first, the rest after it (lets vLLM cache the prefix once).
    qa_prime_prefix: bool = False
    # The questions about one table go to one endpoint (its prefix cache holds the table).
    qa_table_affinity: bool = True
    # > 0: every address of each QA URL's host is an endpoint (a headless Service's pods,
    # compose's `--scale qa=N`), resolved again at most this often; 0: the URLs as given.
    qa_resolve_s: float = Field(0.0, ge=0)

    # --- local stack (`trivia stack up`) -------------------------------------------------------
    # Valkey's AOF and the children's logs.
    data_dir: Path = Path("runs/stack")
    workers: int = Field(2, ge=1)

    @field_validator(
        "qa_model",
        "api_token",
        "qa_api_key",
        "shutdown_grace_s",
        "redis_password_file",
        mode="before",
    )
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @property
    def drain_s(self) -> float:
        """How long a stopping gateway finishes requests in flight (see `shutdown_grace_s`)."""
        if self.shutdown_grace_s is not None:
            return self.shutdown_grace_s
        return self.request_deadline_s + 5.0

    @field_validator("qa_urls", mode="before")
    @classmethod
    def _split_urls(cls, value: object) -> object:
        if isinstance(value, str | list | tuple):
            return split_urls(value)
        return value


# Every field at its default, the environment not read.
DEFAULTS = Settings.model_construct()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings from the environment, built once."""
    return Settings()
