"""Free TCP ports on 127.0.0.1, for the local stack, the demo, tests and benchmarks.

The local stack takes a block of ports from a base P (gateway P, answerer P+1, Redis P+2, worker
metrics P+10+i), so callers ask for a whole free block. A random start keeps parallel runs on one
machine from racing for the same block.
"""

from __future__ import annotations

import random
import socket


def free_port() -> int:
    """One port the kernel reports free now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def free_port_block(size: int = 13, start: int = 20000, stop: int = 60000) -> int:
    """A base port P with P..P+size-1 all free on 127.0.0.1."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(start, stop - size, 20)
        try:
            for port in range(base, base + size):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError("no block of free ports found on 127.0.0.1")
