"""Launch configs: the command built from each config, checked with ms-swift's own parser."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from trivia.trainer.launch import (
    PLUGIN_FILE,
    ConfigError,
    load_config,
    plan_launch,
    torchrun_argv,
)

requires_train = pytest.mark.skipif(
    importlib.util.find_spec("swift") is None, reason="needs the train extra (ms-swift)"
)
CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))


def _value(args: list[str], flag: str) -> list[str]:
    start = args.index(flag) + 1
    end = next((i for i in range(start, len(args)) if args[i].startswith("--")), len(args))
    return args[start:end]


def test_every_config_opens_with_the_command_that_runs_it():
    assert {c.name for c in CONFIGS} >= {"trivia-3b.yaml", "smoke-1gpu.yaml", "demo-cpu.yaml"}
    for config in CONFIGS:
        first = config.read_text(encoding="utf-8").splitlines()[:6]
        assert any("trivia" in line and line.startswith("#") for line in first), config


def test_paper_config_carries_the_published_settings_with_the_filter_on():
    plan = plan_launch(load_config(CONFIGS[[c.name for c in CONFIGS].index("trivia-3b.yaml")]))
    args = plan.swift_args
    assert plan.argv[:2] == ["swift", "rlhf"]
    expected = {
        "--rlhf_type": ["grpo"],
        "--tuner_type": ["full"],
        "--num_generations": ["8"],
        "--temperature": ["1.2"],
        "--loss_type": ["bnpo"],
        "--learning_rate": ["1e-06"],
        "--aligner_lr": ["1e-06"],
        "--vit_lr": ["2e-07"],
        "--max_completion_length": ["4500"],
        "--vllm_mode": ["colocate"],
        "--vllm_gpu_memory_utilization": ["0.2"],
        "--deepspeed": ["zero3_offload"],
        "--reward_funcs": ["QA_F1_score", "TEDS"],
        "--reward_weights": ["1", "0"],
        "--external_plugins": [str(PLUGIN_FILE)],
    }
    for flag, value in expected.items():
        assert _value(args, flag) == value, flag
    assert plan.env["TRIVIA_REJECTION_SAMPLE"] == "true"
    assert plan.env["TRIVIA_REJECTION_TAG_TAIL"] == "<nl>\\n"
    assert plan.env["MAX_PIXELS"] == str(1280 * 28 * 28)


def test_environment_beats_config_and_flags_after_dashes_beat_both():
    config = {
        "env": {"MAX_PIXELS": 100, "NNODES": 1},
        "plugin": {"rejection_sample": True, "rejection_strategy": "tag_tail"},
        "swift": {"rlhf_type": "grpo", "dataset": "${DATA}/train.jsonl", "use_vllm": False},
    }
    environ = {"NNODES": "4", "TRIVIA_REJECTION_SAMPLE": "false", "DATA": "/d"}
    environ |= {"MASTER_ADDR": "node-0", "MASTER_PORT": "29500"}
    extra = ["--rejection_strategy", "prob", "--rejection_min_logprob=-1.5", "--seed", "7"]
    plan = plan_launch(config, extra, environ=environ)
    assert plan.env["MAX_PIXELS"] == "100"
    assert plan.env["NNODES"] == "4"
    assert plan.env["TRIVIA_REJECTION_SAMPLE"] == "false"
    assert plan.env["TRIVIA_REJECTION_STRATEGY"] == "prob"
    assert plan.env["TRIVIA_REJECTION_MIN_LOGPROB"] == "-1.5"
    assert _value(plan.swift_args, "--dataset") == ["/d/train.jsonl"]
    assert _value(plan.swift_args, "--use_vllm") == ["false"]
    assert plan.swift_args[-2:] == ["--seed", "7"]


def test_several_tails_after_dashes_become_a_json_list():
    plan = plan_launch({"swift": {}}, ["--rejection_tag_tail", "</table>", "</html>"], environ={})
    assert plan.env["TRIVIA_REJECTION_TAG_TAIL"] == '["</table>", "</html>"]'


def test_shell_form_quotes_and_lists_one_flag_per_line():
    plan = plan_launch({"env": {"A": "x y"}, "swift": {"reward_funcs": ["a", "b"]}}, environ={})
    lines = plan.shell().split(" \\\n  ")
    assert lines[0] == "A='x y'"
    assert lines[1] == "swift rlhf"
    assert "--reward_funcs a b" in lines


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("plugin: {}\n", "swift"),
        ("swift: {}\nextra: {}\n", "unknown sections"),
        ("swift: {}\nplugin: {rejection_samples: true}\n", "unknown plugin options"),
        ("swift: [1]\n", "mapping"),
        ("swift: {a: [\n", "cannot read"),
    ],
)
def test_bad_configs_are_refused(tmp_path, text, message):
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_external_plugins_in_a_config_is_refused():
    with pytest.raises(ConfigError, match="external_plugins"):
        plan_launch({"swift": {"external_plugins": "x.py"}}, environ={})


@requires_train
@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.name)
def test_ms_swift_parser_accepts_each_config(config):
    from swift.arguments import RLHFArguments
    from swift.utils.utils import _patch_get_type_hints
    from transformers import HfArgumentParser

    with _patch_get_type_hints():
        parser = HfArgumentParser([RLHFArguments])
    plan = plan_launch(load_config(config), ["--max_steps", "2"], environ={})
    namespace, remaining = parser.parse_known_args(plan.swift_args)
    assert remaining == []
    assert namespace.rlhf_type == "grpo"
    assert namespace.reward_funcs == ["QA_F1_score", "TEDS"]
    assert namespace.external_plugins == [str(PLUGIN_FILE)]
    assert namespace.max_steps == 2
    assert namespace.tuner_type == "full"


RANK_1_OF_2 = {
    "NNODES": "2",
    "NODE_RANK": "1",
    "MASTER_ADDR": "trainer-0.trainer",
    "MASTER_PORT": "29500",
}


def test_a_multi_node_rank_gets_torchruns_node_flags_from_its_environment():
    config = load_config(CONFIGS[0].with_name("trivia-3b.yaml"))
    plan = plan_launch(config, environ=RANK_1_OF_2)
    argv = torchrun_argv(plan, RANK_1_OF_2, python="python3", script="rlhf.py")
    assert argv is not None
    assert argv[:3] == ["python3", "-m", "torch.distributed.run"]
    head = argv[3 : argv.index("rlhf.py")]
    assert dict(zip(head[::2], head[1::2], strict=True)) == {
        "--nproc_per_node": "8",  # from the config's env section
        "--master_port": "29500",
        "--nnodes": "2",
        "--node_rank": "1",
        "--master_addr": "trainer-0.trainer",
    }
    assert argv[argv.index("rlhf.py") + 1 :] == plan.swift_args


def test_without_nproc_or_nnodes_ms_swift_runs_no_torchrun():
    plan = plan_launch({"swift": {"rlhf_type": "grpo"}}, environ={})
    assert torchrun_argv(plan, {}, python="python3", script="rlhf.py") is None


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({**RANK_1_OF_2, "NODE_RANK": "2"}, "NODE_RANK 2 is not a rank of NNODES 2"),
        ({**RANK_1_OF_2, "NNODES": "two"}, "must be integers"),
        ({"NNODES": "2", "NODE_RANK": "0"}, "set MASTER_ADDR and MASTER_PORT"),
    ],
)
def test_a_rank_that_cannot_join_its_run_is_refused(environ, message):
    with pytest.raises(ConfigError, match=message):
        plan_launch({"swift": {"rlhf_type": "grpo"}}, environ=environ)


@requires_train
def test_the_torchrun_command_is_the_one_ms_swift_builds(monkeypatch):
    from swift.cli.main import get_torchrun_args

    config = load_config(CONFIGS[0].with_name("trivia-3b.yaml"))
    plan = plan_launch(config, environ=RANK_1_OF_2)
    # ms-swift reads the environment `trivia train` starts it in.
    for name, value in {**RANK_1_OF_2, **plan.env}.items():
        monkeypatch.setenv(name, value)
    argv = torchrun_argv(plan, RANK_1_OF_2, python="python3", script="rlhf.py")
    expected = get_torchrun_args()
    assert expected is not None
    prefix = ["python3", "-m", "torch.distributed.run", *expected, "rlhf.py"]
    assert argv == [*prefix, *plan.swift_args]
