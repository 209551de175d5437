"""The local valkey-server: durable (AOF), no eviction, restartable with its data."""

from __future__ import annotations

import stat
import subprocess
import time

import pytest
from redis import Redis
from redis.exceptions import AuthenticationError
from tests.support.valkey import RedisServer

from trivia.reward.redis_server import (
    CONFIG_FILE,
    PASSWORD_FILE,
    ensure_password,
    redis_url,
    server_command,
    wait_for_redis,
)


def test_command_turns_on_aof_and_refuses_eviction(tmp_path):
    argv = server_command(6390, tmp_path, binary="valkey-server")
    flags = dict(zip(argv[1::2], argv[2::2], strict=False))
    assert flags["--appendonly"] == "yes"
    assert flags["--maxmemory-policy"] == "noeviction"
    assert flags["--bind"] == "127.0.0.1"
    assert flags["--dir"] == str(tmp_path)


def test_queued_data_survives_a_sigkill_and_restart(tmp_path, free_ports):
    server = RedisServer(free_ports(1), tmp_path)
    server.start(stdout=subprocess.DEVNULL)
    try:
        server.wait_ready()
        client = Redis(port=server.port)
        client.rpush("jobs", *[f"job-{i}" for i in range(100)])
        assert server.process is not None
        server.process.kill()  # no shutdown, no final fsync
        server.process.wait()
        server.start(stdout=subprocess.DEVNULL)
        server.wait_ready()
        assert client.llen("jobs") == 100
        assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
        client.close()
    finally:
        server.stop()
    assert server.process is None


def test_the_password_is_generated_private_and_reused(tmp_path):
    password = ensure_password(tmp_path / "valkey")
    path = tmp_path / "valkey" / PASSWORD_FILE
    assert len(password) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ensure_password(tmp_path / "valkey") == password


def test_a_server_with_a_password_refuses_clients_without_it(tmp_path, free_ports):
    password = ensure_password(tmp_path)
    port = free_ports(1)
    argv = server_command(port, tmp_path, password=password)
    assert not any(password in arg for arg in argv)  # never on a command line
    config = tmp_path / CONFIG_FILE
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_redis(redis_url(port, password), time.monotonic() + 30)
        with pytest.raises(AuthenticationError):
            Redis(port=port).ping()
        with pytest.raises(AuthenticationError):
            Redis(port=port, password="guess").ping()
        assert Redis.from_url(redis_url(port, password)).ping()
    finally:
        process.kill()
        process.wait()
