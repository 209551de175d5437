from __future__ import annotations

import socket

from trivia.ports import free_port, free_port_block


def test_free_port_block_is_free() -> None:
    base = free_port_block(size=3)
    for port in range(base, base + 3):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", port))


def test_free_port_can_be_bound() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", free_port()))
