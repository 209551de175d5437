"""One settings class: `TRIVIA_*` environment, defaults in one place, cached accessor."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from trivia.settings import Settings, get_settings, split_urls


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
    assert settings.qa_url_list == ["http://a:1/v1", "http://b:2/v1"]


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
