"""The gateway and workers authenticate to Redis with the password in TRIVIA_REDIS_PASSWORD_FILE."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from redis.exceptions import AuthenticationError

from trivia.ports import free_port
from trivia.reward.app import create_app
from trivia.reward.redis_client import RedisPasswordError, connect, redis_password
from trivia.reward.redis_server import ensure_password, redis_url, server_command, wait_for_redis
from trivia.reward.worker import serve_worker_metrics
from trivia.settings import Settings

PLAIN_URL = "redis://127.0.0.1:{port}/0"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    """A valkey-server that requires a password, and the file holding it."""
    data = tmp_path_factory.mktemp("valkey-auth")
    password = ensure_password(data)
    port = free_port()
    argv = server_command(port, data, password=password)
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_redis(redis_url(port, password), time.monotonic() + 30)
        secret = data / "secret"
        secret.write_text(password + "\n", encoding="utf-8")  # as `echo ... > file` writes it
        yield port, secret
    finally:
        process.kill()
        process.wait()


def test_a_client_with_the_password_file_is_let_in(server: tuple[int, Path]) -> None:
    port, secret = server
    settings = Settings(redis_url=PLAIN_URL.format(port=port), redis_password_file=secret)
    assert connect(settings).ping()
    with pytest.raises(AuthenticationError):
        connect(Settings(redis_url=PLAIN_URL.format(port=port))).ping()


def test_the_gateway_reaches_redis_with_the_password_file(server: tuple[int, Path]) -> None:
    port, secret = server
    with_file = Settings(redis_url=PLAIN_URL.format(port=port), redis_password_file=secret)
    without = Settings(redis_url=PLAIN_URL.format(port=port))
    with TestClient(create_app(with_file)) as client:
        # Redis answered; only the (absent) workers keep it from being ready.
        assert client.get("/readyz").json()["reason"] == "no worker alive"
    with TestClient(create_app(without)) as client:
        assert client.get("/readyz").json()["reason"] == "redis: AuthenticationError"


def test_the_worker_health_probe_uses_the_password_file(server: tuple[int, Path]) -> None:
    port, secret = server
    settings = Settings(redis_url=PLAIN_URL.format(port=port), redis_password_file=secret)
    metrics_port = free_port()
    http = serve_worker_metrics("127.0.0.1", metrics_port, connect(settings))
    try:
        assert httpx.get(f"http://127.0.0.1:{metrics_port}/readyz").status_code == 200
    finally:
        http.shutdown()


def test_a_missing_or_empty_password_file_is_named_in_the_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-secret"
    with pytest.raises(RedisPasswordError, match="no-such-secret"):
        redis_password(Settings(redis_password_file=missing))
    empty = tmp_path / "empty-secret"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(RedisPasswordError, match=r"empty-secret.*is empty"):
        connect(Settings(redis_password_file=empty))
    assert redis_password(Settings()) is None


def test_the_password_file_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secret = tmp_path / "redis_password"
    secret.write_text("from-the-file\n", encoding="utf-8")
    monkeypatch.setenv("TRIVIA_REDIS_PASSWORD_FILE", str(secret))
    assert redis_password(Settings()) == "from-the-file"
    monkeypatch.setenv("TRIVIA_REDIS_PASSWORD_FILE", "")
    assert Settings().redis_password_file is None


def test_a_password_in_the_url_takes_precedence(server: tuple[int, Path], tmp_path: Path) -> None:
    port, secret = server
    wrong = tmp_path / "wrong"
    wrong.write_text("not-it\n", encoding="utf-8")
    password = secret.read_text(encoding="utf-8").strip()
    settings = Settings(redis_url=redis_url(port, password), redis_password_file=wrong)
    assert connect(settings).ping()
