"""The local valkey-server: durable (AOF), no eviction, restartable with its data."""

from __future__ import annotations

import subprocess

from redis import Redis
from tests.support.valkey import RedisServer

from trivia.reward.redis_server import server_command


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
