"""SIGTERM to `trivia train`: the run saves a checkpoint at the end of its step and exits cleanly.

The launcher side runs a real child process and real signals; the trainer side is ms-swift's
own callback machinery with transformers' TrainerControl.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from trivia.trainer.launch import plan_launch
from trivia.trainer.stop_request import STOP_CALLBACK, STOP_FILE_ENV

# Stands in for `swift rlhf`: says it is ready, then waits for the stop file as the stop
# callback does at each step end, "saves" and exits 0. With `ignore`, it never stops by itself.
CHILD = textwrap.dedent(
    """
    import os, sys, time
    stop = os.environ["TRIVIA_STOP_FILE"]
    print("ready", flush=True)
    while sys.argv[1] == "ignore" or not os.path.exists(stop):
        time.sleep(0.05)
    print("checkpoint saved", flush=True)
    """
)
# The launcher as `trivia train` runs it, in a process of its own that the test signals.
LAUNCHER = textwrap.dedent(
    """
    import os, sys
    from trivia.trainer.stop_request import run_stoppable
    sys.exit(-run_stoppable([sys.executable, "-c", sys.argv[1], sys.argv[2]], dict(os.environ)))
    """
)


def _launch(mode: str) -> subprocess.Popen[str]:
    launcher = subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, CHILD, mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert launcher.stdout is not None
    assert launcher.stdout.readline() == "ready\n"  # the child runs and has its stop file name
    return launcher


def test_sigterm_asks_the_run_to_save_and_stop_and_the_launcher_waits_for_it():
    launcher = _launch("stop")
    launcher.send_signal(signal.SIGTERM)
    out, err = launcher.communicate(timeout=60)
    assert out == "checkpoint saved\n"
    assert launcher.returncode == 0, err
    assert "SIGTERM: saving a checkpoint at the end of this step" in err


def test_a_second_signal_stops_the_run_at_once():
    launcher = _launch("ignore")
    launcher.send_signal(signal.SIGINT)
    assert launcher.stderr is not None
    assert "SIGINT: saving a checkpoint" in launcher.stderr.readline()
    launcher.send_signal(signal.SIGTERM)
    out, err = launcher.communicate(timeout=60)
    assert out == ""
    assert launcher.returncode == signal.SIGTERM  # the child was killed by SIGTERM
    assert "stopping at once" in err


def test_the_launch_plan_adds_the_stop_callback_after_the_configs():
    plan = plan_launch({"swift": {"callbacks": ["lisa"]}}, environ={})
    i = plan.swift_args.index("--callbacks")
    assert plan.swift_args[i + 1 : i + 3] == ["lisa", STOP_CALLBACK]
    plan = plan_launch({"swift": {}}, environ={})
    assert plan.swift_args.count(STOP_CALLBACK) == 1


def _step(callback, control, state, args) -> None:
    control.should_save = False
    callback.on_step_end(args, state, control)
    if control.should_save:
        callback.on_save(args, state, control)


@pytest.fixture
def callback_parts(tmp_path: Path):
    pytest.importorskip("swift", reason="needs the train extra (ms-swift)")
    from transformers import TrainerControl, TrainerState, TrainingArguments

    args = TrainingArguments(output_dir=str(tmp_path / "out"), report_to=[])
    return TrainerControl(), TrainerState(), args


def test_the_stop_callback_saves_then_stops_once_the_file_appears(
    tmp_path, monkeypatch, callback_parts, capsys
):
    from trivia.trainer import plugin
    from trivia.trainer.stop_callback import StopOnRequest

    assert plugin.callbacks_map[STOP_CALLBACK] is StopOnRequest
    stop_file = tmp_path / "stop"
    monkeypatch.setenv(STOP_FILE_ENV, str(stop_file))
    before = signal.getsignal(signal.SIGTERM)
    callback = StopOnRequest()
    assert signal.getsignal(signal.SIGTERM) is before  # signals stay the launcher's business
    control, state, args = callback_parts
    _step(callback, control, state, args)
    assert not control.should_save and not control.should_training_stop
    stop_file.touch()
    state.global_step = 3
    _step(callback, control, state, args)
    assert control.should_save and control.should_training_stop
    assert "checkpoint saved at step 3" in capsys.readouterr().err


def test_without_the_launcher_the_callback_does_nothing(tmp_path, monkeypatch, callback_parts):
    from trivia.trainer.stop_callback import StopOnRequest

    monkeypatch.delenv(STOP_FILE_ENV, raising=False)
    callback = StopOnRequest()
    control, state, args = callback_parts
    _step(callback, control, state, args)
    assert not control.should_save and not control.should_training_stop
