"""One settings class: `TRIVIA_*` environment, defaults in one place, cached accessor."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from trivia.settings import CHAT, DEFAULTS, Settings, get_settings, split_urls


def test_defaults_match_the_documented_contract(monkeypatch):
    for name in ("TRIVIA_API_TOKEN", "TRIVIA_REQUEST_DEADLINE_S", "TRIVIA_MAX_BODY_BYTES"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert settings.request_deadline_s == 120
    assert settings.max_body_bytes == 16 * 1024 * 1024
    assert settings.api_token is None


def test_environment_sets_fields_and_secrets_stay_secret(monkeypatch):
    monkeypatch.setenv("TRIVIA_API_TOKEN", "s3cret")
    monkeypatch.setenv("TRIVIA_REQUEST_DEADLINE_S", "7.5")
    monkeypatch.setenv("TRIVIA_QA_URLS", "http://a:1/v1, http://b:2/v1,http://a:1/v1")
    settings = Settings()
    assert settings.api_token is not None
    assert settings.api_token.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings)
    assert settings.request_deadline_s == 7.5
    assert settings.qa_urls == ["http://a:1/v1", "http://b:2/v1"]  # parsed once, here


def test_an_empty_token_means_no_auth(monkeypatch):
    monkeypatch.setenv("TRIVIA_API_TOKEN", "")
    assert Settings().api_token is None


def test_invalid_values_are_refused(monkeypatch):
    monkeypatch.setenv("TRIVIA_REQUEST_DEADLINE_S", "0")
    with pytest.raises(ValidationError):
        Settings()


def test_get_settings_is_built_once():
    get_settings.cache_clear()
    assert get_settings() is get_settings()
    get_settings.cache_clear()


def test_split_urls_accepts_repeats_and_commas():
    assert split_urls(["http://a/v1/", "http://b/v1,http://c/v1"]) == [
        "http://a/v1",
        "http://b/v1",
        "http://c/v1",
    ]
    assert split_urls(None) == []


def test_defaults_have_one_definition_used_everywhere(monkeypatch):
    from trivia.llm.client import ChatClient
    from trivia.reward.stack import StackConfig
    from trivia.trainer.options import PluginOptions

    monkeypatch.setenv("TRIVIA_PORT", "9100")  # the environment does not move the defaults
    assert DEFAULTS.port == 8000 and Settings().port == 9100
    stack = StackConfig()
    assert (stack.port, stack.workers, stack.data_dir) == (
        DEFAULTS.port, DEFAULTS.workers, DEFAULTS.data_dir)  # fmt: skip
    assert PluginOptions().reward_url == "http://127.0.0.1:8000"
    client = ChatClient("http://127.0.0.1:9")
    assert client.stats()[0].url == "http://127.0.0.1:9"
    settings = Settings()
    assert settings.qa_max_retries == CHAT.max_retries
    assert settings.qa_request_timeout_s == CHAT.request_timeout_s


def test_the_plugin_reads_the_api_token_from_its_own_options(monkeypatch):
    from trivia.trainer.options import PluginOptions

    monkeypatch.setenv("TRIVIA_API_TOKEN", "t0k")
    token = PluginOptions().api_token
    assert token is not None and token.get_secret_value() == "t0k"
    assert "t0k" not in repr(PluginOptions())
    monkeypatch.setenv("TRIVIA_API_TOKEN", "")
    assert PluginOptions().api_token is None
