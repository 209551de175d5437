"""Stopping a training run without losing it: the launcher's side.

`trivia train` runs ``swift rlhf`` as a child in a session of its own and stays in front of it
(in a container it is PID 1, which the kernel sends no signal it does not handle). The first
SIGTERM or SIGINT creates the stop file named by ``TRIVIA_STOP_FILE`` in the child's
environment: every rank's stop callback (`trivia.trainer.stop_callback`) sees it at the end of
the step in progress, all ranks agree, the trainer saves a checkpoint and stops, and the run
exits normally. A second signal stops the run at once. Signalling the processes themselves
would not do: ``swift`` and ``torchrun`` exit or kill their workers within seconds of a SIGTERM.

No torch here: this runs in the launcher.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType

STOP_FILE_ENV = "TRIVIA_STOP_FILE"
# The callback's name in ms-swift's `--callbacks` (registered by the plugin).
STOP_CALLBACK = "trivia_stop"
_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _say(message: str) -> None:
    print(f"trivia train: {message}", file=sys.stderr, flush=True)


def run_stoppable(
    argv: Sequence[str], env: Mapping[str, str], *, say: Callable[[str], None] = _say
) -> int:
    """Run `argv` until it exits; return its exit status (negative: killed by that signal)."""
    with tempfile.TemporaryDirectory(prefix="trivia-train-") as folder:
        stop_file = Path(folder) / "stop"
        process = subprocess.Popen(
            list(argv), env={**env, STOP_FILE_ENV: str(stop_file)}, start_new_session=True
        )
        received = 0

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            nonlocal received
            received += 1
            name = signal.Signals(signum).name
            if received == 1:
                stop_file.touch()
                say(
                    f"{name}: saving a checkpoint at the end of this step, then stopping "
                    "(signal again to stop at once)"
                )
            elif process.poll() is None:
                say(f"{name} again: stopping at once, without a checkpoint")
                os.killpg(process.pid, signal.SIGTERM)

        previous = {number: signal.signal(number, on_signal) for number in _SIGNALS}
        try:
            return process.wait()
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
