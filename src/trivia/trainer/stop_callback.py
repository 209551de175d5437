"""Stopping a training run without losing it: the trainer's side.

ms-swift's graceful-exit callback, watching the stop file that `trivia train` creates on
SIGTERM (`trivia.trainer.stop_request`) instead of installing signal handlers: at the end of
each step every rank says whether it saw the file, the ranks agree (all-reduce), the trainer
saves a checkpoint, then stops. Without ``TRIVIA_STOP_FILE`` (swift run by hand, the demo) it
does nothing.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from swift.callbacks.deepspeed_elastic import GracefulExitCallback
from swift.utils.shutdown_manager import ShutdownManager

from trivia.trainer.stop_request import STOP_FILE_ENV


class StopOnRequest(GracefulExitCallback):
    """Save and stop at the end of the step in which the stop file appeared."""

    def __init__(self, args: Any = None, trainer: Any = None) -> None:
        super().__init__(args, trainer)
        # The parent registered SIGTERM/SIGINT handlers; the launcher handles signals instead.
        self.shutdown_manager.unregister()
        stop_file = os.environ.get(STOP_FILE_ENV)
        self.active = bool(stop_file)
        if stop_file:
            self.shutdown_manager = ShutdownManager(signals=[], stop_file=stop_file)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        if not self.active:
            return control
        return super().on_step_end(args, state, control, **kwargs)

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        stopping = self._pending_stop
        control = super().on_save(args, state, control, **kwargs)
        if stopping and state.is_world_process_zero:
            print(
                f"trivia: stop requested: checkpoint saved at step {state.global_step} "
                f"in {args.output_dir}; stopping",
                file=sys.stderr,
                flush=True,
            )
        return control
