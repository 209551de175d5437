"""The local reward stack (`trivia stack up`'s) with one worker, asking a stub answering server."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tests.support.openai_stub import StubServer, openai_stub

from trivia.ports import free_port_block
from trivia.reward.stack import Stack, StackConfig


@contextlib.contextmanager
def stack_on_stub(
    data_dir: Path,
    *,
    env: dict[str, str],
    say: Callable[[str], None] = lambda line: None,
    **stub: Any,
) -> Iterator[tuple[StubServer, Stack]]:
    """The stub (`openai_stub(**stub)`, in this process) and a stack with one worker asking it;
    `env` configures the stack's processes, `say` gets the lines `trivia stack up` prints."""
    with (
        openai_stub(**stub) as qa,
        Stack(
            StackConfig(
                port=free_port_block(),
                workers=1,
                qa_urls=[f"{qa.url}/v1"],
                data_dir=data_dir,
                env=env,
            ),
            say=say,
        ) as stack,
    ):
        yield qa, stack
